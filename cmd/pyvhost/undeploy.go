package main

import (
	"fmt"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/urfave/cli/v2"
)

func undeployCommand() *cli.Command {
	return &cli.Command{
		Name:      "undeploy",
		Usage:     "take a site (or one --mount of it) out of nginx and stop its app; keeps the app dir and venv unless --purge",
		ArgsUsage: "DOMAIN",
		Description: "The site's file goes the same safe way a deploy writes it: nginx -t, reload, and the old\n" +
			"bytes put back if anything fails. Its releases stay, so `pyvhost rollback DOMAIN` brings\n" +
			"it back.\n\n" +
			"Examples:\n" +
			"   pyvhost undeploy app1.example.com\n" +
			"   pyvhost undeploy example.com --mount /blog --yes\n" +
			"   pyvhost undeploy old.example.com --purge    # also removes its app dir and venv",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "mount", Usage: "remove only the app at `/PREFIX`"},
			&cli.BoolFlag{Name: "purge", Usage: "also remove the app dir and venv (kept when another site uses them)"},
		}, changeFlags()...),
		Action: runUndeploy,
	}
}

func runUndeploy(c *cli.Context) error {
	domain, err := domainArg(c)
	if err != nil {
		return err
	}
	env, err := changeEnv(c)
	if err != nil {
		return err
	}
	lock, err := beginChange(c, env)
	if err != nil {
		return err
	}
	defer lock.Release()
	cc, err := deployer.PrepareUndeploy(c.Context, env, domain, c.String("mount"), c.Bool("purge"))
	if err != nil {
		showTraceback(c, err) // a hand edit's diff
		return err
	}
	out := newUI(c.App.Writer, c.Bool("no-color"))
	if err := showPlan(c, out, cc.Site, cc.Steps); err != nil {
		return err
	}
	for _, k := range cc.Kept {
		fmt.Fprintf(c.App.Writer, "kept %s\n", k)
	}
	if err := confirmAndApply(c, out, "Undeploy "+cc.Site.Spec.Domain+"?", cc.Steps, cc.Apply); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s %s\n", out.ok.Render("undeployed:"), cc.Site.Spec.Domain)
	return nil
}
