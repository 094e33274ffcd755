package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
	"github.com/urfave/cli/v2"
)

func sitesCommand() *cli.Command {
	return &cli.Command{
		Name:  "sites",
		Usage: "list the server blocks that route to a uwsgi daemon",
		Description: "Reads nginx's whole configuration, includes followed, and lists every server block\n" +
			"with a location that uwsgi_passes, with the app each location runs, and, when the daemon\n" +
			"answers on its control socket, each app's live state there.\n\n" +
			"Example:\n" +
			"   pyvhost sites --json --nginx-conf /etc/nginx/nginx.conf",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array, one element per server block"},
			nginxConfFlag(),
			ctlFlag(), // for each app's live state
			stateDirFlag(),
			wideFlag(),
		},
		Action: runSites,
	}
}

func runSites(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("sites takes no arguments")
	}
	warnPendingJournal(c)
	tree, err := loadTree(c)
	if err != nil {
		return err
	}
	sites := tree.Sites()
	live := addLiveState(ctlPath(c), sites)
	own := addSettings(stateDir(c), sites)
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
		fmt.Fprintln(w, sitesTable(u, sites, live, own, tableWidth(c)))
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

// sitesFit says which of sites' columns give way first on a narrow
// terminal: the marker and the settings, the file, the paths; never the
// names, the script or the state.
var sitesFit = map[string]col{
	"": {drop: 9}, "OWN SETTINGS": {drop: 8}, "FILE": {drop: 7, path: true}, "VENV": {drop: 6, path: true},
	"UWSGI_PASS": {drop: 5, path: true}, "LISTEN": {drop: 4}, "CHDIR": {drop: 3, path: true},
	"CERTIFICATE": {drop: 2}, "LOCATION": {drop: 1},
}

// sitesTable is one row per app location; server columns repeat only on a
// server's first row. It fits width (0: any).
func sitesTable(u *ui, sites []nginxconf.ServerBlock, live, own bool, width int) string {
	cols := append([]string{}, sitesColumns[:len(sitesColumns)-1]...)
	if live {
		cols = append(cols, "STATE")
	}
	if own {
		cols = append(cols, "OWN SETTINGS")
	}
	tlsCol := false
	for _, s := range sites {
		tlsCol = tlsCol || s.TLSCert != ""
	}
	if tlsCol {
		cols = append(cols, "CERTIFICATE")
	}
	cols = append(cols, "")
	var rows [][]string
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
			row := []string{names, listen, a.Location, orDash(a.Chdir), orDash(a.Script), orDash(a.Pyhome), a.UwsgiPass, file}
			if live {
				row = append(row, orDash(a.State))
			}
			if own {
				row = append(row, orDash(a.Settings))
			}
			if tlsCol {
				cert := ""
				if i == 0 {
					cert = certUntil(s.TLSCert)
				}
				row = append(row, cert)
			}
			rows = append(rows, append(row, managed))
		}
	}
	return fitTable(u, colsNamed(cols, sitesFit), rows, width)
}

// addLiveState fills in each app's state from the daemon, when one
// answers on ctl; an app it has not seen yet is "cold". It reports
// whether the daemon answered.
func addLiveState(ctl string, sites []nginxconf.ServerBlock) bool {
	client, err := control.Dial(ctl)
	if err != nil {
		return false
	}
	apps, err := client.Apps()
	if err != nil {
		return false
	}
	state := make(map[pool.Key]pool.State, len(apps.Apps))
	for _, st := range apps.Apps {
		if !st.Retiring { // the current pool's, not one finishing after a change
			state[pool.Key{Pyhome: st.Pyhome, Chdir: st.Chdir, Script: st.Script}] = st.State
		}
	}
	for i := range sites {
		for j := range sites[i].Apps {
			a := &sites[i].Apps[j]
			a.State = string(pool.Cold)
			if st, ok := state[pool.Key{Pyhome: a.Pyhome, Chdir: a.Chdir, Script: a.Script}]; ok {
				a.State = string(st)
			}
		}
	}
	return true
}

// addSettings fills in what each app sets itself, from the state dir; it
// reports whether any app sets anything (a user who cannot read the state
// dir sees no column).
func addSettings(stateDir string, sites []nginxconf.ServerBlock) bool {
	any := false
	for i := range sites {
		for j := range sites[i].Apps {
			a := &sites[i].Apps[j]
			s, err := appconf.Load(stateDir, pool.Key{Pyhome: a.Pyhome, Chdir: a.Chdir, Script: a.Script})
			if err != nil {
				continue
			}
			a.Settings = ownSettings(pool.AppStats{Own: s.Pool.String(), EnvVars: len(s.Env)})
			if a.Settings == "-" {
				a.Settings = ""
			}
			any = any || a.Settings != ""
		}
	}
	return any
}

// certUntil is a TLS server's certificate as sites shows it: "until
// DATE", "-" for a server without TLS.
func certUntil(path string) string {
	if path == "" {
		return "-"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "unreadable: " + path
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "not PEM: " + path
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "damaged: " + path
	}
	if time.Now().After(c.NotAfter) {
		return "EXPIRED " + day(c.NotAfter)
	}
	return "until " + day(c.NotAfter)
}
