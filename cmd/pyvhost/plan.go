package main

import (
	"context"
	"fmt"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/urfave/cli/v2"
)

// showPlan prints what a change will do: its warnings, its steps, and the
// diff of nginx's files.
func showPlan(c *cli.Context, out *ui, sc *nginxconf.SiteChanges, steps []deployer.Step) error {
	errUI := newUI(c.App.ErrWriter, c.Bool("no-color"))
	for _, w := range sc.Warnings {
		fmt.Fprintln(c.App.ErrWriter, errUI.warn.Render("warning: "+w))
	}
	fmt.Fprintln(c.App.Writer, out.title.Render("Plan for "+sc.Spec.Domain+":"))
	fmt.Fprint(c.App.Writer, deployer.FormatPlan(steps))
	if len(sc.Changes) == 0 {
		fmt.Fprintln(c.App.Writer, out.dim.Render("nginx config: no changes"))
		return nil
	}
	text, err := sc.Diff()
	if err != nil {
		return err
	}
	fmt.Fprint(c.App.Writer, out.colorDiff(text))
	return nil
}

// confirmAndApply asks (unless --yes), then runs a change's steps with a
// progress display.
func confirmAndApply(c *cli.Context, out *ui, question string, steps []deployer.Step, apply func(context.Context, deployer.Progress) error) error {
	if err := confirm(c, question); err != nil {
		return err
	}
	return apply(c.Context, newProgress(c.App.Writer, out, len(steps)))
}

// domainArg is the one DOMAIN undeploy and rollback take, checked before
// anything is touched.
func domainArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", usagef("%s needs exactly one DOMAIN, e.g. pyvhost %s app.example.com", c.Command.Name, c.Command.Name)
	}
	if err := nginxconf.ValidateDomain("domain", c.Args().First()); err != nil {
		return "", &nginxconf.InvalidError{Err: err}
	}
	return c.Args().First(), nil
}
