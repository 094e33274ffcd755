package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "print what deploying a site would change in nginx's configuration; changes nothing",
		ArgsUsage: "DOMAIN",
		Description: "Shows the files a deploy would create or modify as a unified diff: a new site's file\n" +
			"(and its sites-enabled symlink), or the changes to pyvhost's own file for a domain it\n" +
			"already manages, e.g. a new --mount or --static.\n\n" +
			"Example:\n" +
			"   pyvhost diff example.com --app-dir /srv/blog --module blog.wsgi --mount /blog",
		Flags:  append(append(siteFlags(), nginxConfFlag()), deployLineFlags()...),
		Action: runDiff,
	}
}

func runDiff(c *cli.Context) error {
	spec, err := specFromFlags(c)
	if err != nil {
		return err
	}
	warnPendingJournal(c)
	tree, err := loadTree(c)
	if err != nil {
		return err
	}
	sc, err := tree.PlanSite(spec)
	if err != nil {
		return err
	}
	errUI := newUI(c.App.ErrWriter, c.Bool("no-color"))
	for _, w := range sc.Warnings {
		fmt.Fprintln(c.App.ErrWriter, errUI.warn.Render("warning: "+w))
	}
	if len(sc.Changes) == 0 {
		fmt.Fprintf(c.App.Writer, "no changes: %s is already deployed as specified in %s\n", sc.Spec.Domain, sc.SitePath)
		return nil
	}
	text, err := sc.Diff()
	if err != nil {
		return err
	}
	out := newUI(c.App.Writer, c.Bool("no-color"))
	fmt.Fprint(c.App.Writer, out.colorDiff(text))
	return nil
}

// colorDiff colours a unified diff line by line; without colour it returns
// the text unchanged.
func (u *ui) colorDiff(text string) string {
	if !u.color {
		return text
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		body := strings.TrimSuffix(line, "\n")
		nl := line[len(body):]
		switch {
		case strings.HasPrefix(body, "# "), strings.HasPrefix(body, "--- "), strings.HasPrefix(body, "+++ "):
			body = u.file.Render(body)
		case strings.HasPrefix(body, "@@"):
			body = u.hunk.Render(body)
		case strings.HasPrefix(body, "+"):
			body = u.add.Render(body)
		case strings.HasPrefix(body, "-"):
			body = u.del.Render(body)
		}
		b.WriteString(body + nl)
	}
	return b.String()
}
