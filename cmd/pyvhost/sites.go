package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/urfave/cli/v2"
)

func sitesCommand() *cli.Command {
	return &cli.Command{
		Name:  "sites",
		Usage: "list the server blocks that route to a uwsgi daemon",
		Description: "Reads nginx's whole configuration, includes followed, and lists every server block\n" +
			"with a location that uwsgi_passes, with the app each location runs.\n\n" +
			"Example:\n" +
			"   pyvhost sites --json --nginx-conf /etc/nginx/nginx.conf",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array, one element per server block"},
			nginxConfFlag(),
		},
		Action: runSites,
	}
}

func runSites(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("sites takes no arguments")
	}
	tree, err := loadTree(c)
	if err != nil {
		return err
	}
	sites := tree.Sites()
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(sites)
	}
	u := newUI(c.App.Writer, c.Bool("no-color"))
	w := c.App.Writer
	if len(sites) == 0 {
		fmt.Fprintf(w, "no server block in %s routes to a uwsgi daemon\n", tree.Main)
	} else {
		fmt.Fprintln(w, sitesTable(u, sites))
	}
	if layout, err := tree.Layout(); err == nil {
		fmt.Fprintln(w, u.dim.Render("layout: "+layout.Describe()))
	}
	return nil
}

var sitesColumns = []string{"SERVER NAMES", "LISTEN", "LOCATION", "CHDIR", "SCRIPT", "VENV", "UWSGI_PASS", "FILE", ""}

// orDash shows an absent param as "-" so columns stay readable.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// sitesTable is one row per app location; server columns repeat only on a
// server's first row.
func sitesTable(u *ui, sites []nginxconf.ServerBlock) string {
	t := newTable(u, sitesColumns)
	for _, s := range sites {
		for i, a := range s.Apps {
			names, listen, file, managed := "", "", "", ""
			if i == 0 {
				names = strings.Join(s.ServerNames, " ")
				listen = strings.Join(s.Listen, ", ")
				file = fmt.Sprintf("%s:%d", s.File, s.Line)
				if s.Managed {
					managed = u.ok.Render("pyvhost")
				}
			}
			t.Row(names, listen, a.Location, orDash(a.Chdir), orDash(a.Script), orDash(a.Pyhome), a.UwsgiPass, file, managed)
		}
	}
	return t.Render()
}
