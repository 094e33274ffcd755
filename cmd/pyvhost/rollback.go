package main

import (
	"fmt"
	"strings"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/urfave/cli/v2"
)

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "put back an earlier release of a site's nginx config (default: the one before the current)",
		ArgsUsage: "DOMAIN",
		Description: "pyvhost records the site's config at each deploy (the last 10). rollback writes one back\n" +
			"exactly, the same safe way a deploy writes: nginx -t, reload, smoke test, and the current\n" +
			"bytes restored if anything fails. --list shows the releases.\n\n" +
			"Examples:\n" +
			"   pyvhost rollback app1.example.com\n" +
			"   pyvhost rollback app1.example.com --list\n" +
			"   pyvhost rollback app1.example.com --to 3 --yes",
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "to", Usage: "release `N` (see --list)"},
			&cli.BoolFlag{Name: "list", Usage: "list the site's releases and change nothing"},
			wideFlag(),
		}, changeFlags()...),
		Action: runRollback,
	}
}

func runRollback(c *cli.Context) error {
	domain, err := domainArg(c)
	if err != nil {
		return err
	}
	env, err := changeEnv(c)
	if err != nil {
		return err
	}
	out := newUI(c.App.Writer, c.Bool("no-color"))
	if c.Bool("list") {
		warnPendingJournal(c)
		all, err := deployer.Releases(env.StateDir, strings.ToLower(domain))
		if err != nil {
			return err
		}
		fmt.Fprintln(c.App.Writer, releasesTable(out, all, tableWidth(c)))
		return nil
	}
	lock, err := beginChange(c, env)
	if err != nil {
		return err
	}
	defer lock.Release()
	cc, rel, err := deployer.PrepareRollback(c.Context, env, domain, c.Int("to"))
	if err != nil {
		showTraceback(c, err) // a hand edit's diff
		return err
	}
	fmt.Fprintf(c.App.Writer, "rolling %s back to release %d of %s\n", cc.Site.Spec.Domain, rel.N, rel.Time.Local().Format("2006-01-02 15:04:05"))
	if err := showPlan(c, out, cc.Site, cc.Steps); err != nil {
		return err
	}
	if err := confirmAndApply(c, out, "Roll back "+cc.Site.Spec.Domain+"?", cc.Steps, cc.Apply); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s %s is at release %d\n", out.ok.Render("rolled back:"), cc.Site.Spec.Domain, rel.N)
	return nil
}

// releasesTable is rollback --list's table, fitting width (0: any): a
// long list of apps is shortened in the middle.
func releasesTable(u *ui, all []deployer.Release, width int) string {
	var rows [][]string
	for _, r := range all {
		var apps []string
		for _, a := range r.Spec.Apps {
			apps = append(apps, a.Mount+"→"+a.Module)
		}
		rows = append(rows, []string{fmt.Sprint(r.N), r.Time.Local().Format("2006-01-02 15:04:05"), strings.Join(apps, " ")})
	}
	return fitTable(u, []col{{name: "RELEASE"}, {name: "TIME"}, {name: "APPS", path: true}}, rows, width)
}
