package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
	"github.com/urfave/cli/v2"
)

func ctlFlag() cli.Flag {
	return &cli.StringFlag{Name: "ctl", EnvVars: []string{"PYVHOST_CTL"}, Usage: "the daemon's control socket `PATH` (default " + control.DefaultSocket() + ")"}
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print JSON"}
}

func ctlCommand() *cli.Command {
	return &cli.Command{
		Name:  "ctl",
		Usage: "talk to the running uwsgi daemon",
		Description: "Examples:\n" +
			"   pyvhost ctl status\n" +
			"   pyvhost ctl apps --json\n" +
			"   pyvhost ctl load --app-dir /var/www/myappdir1 --module myapp1 --venv /var/www/myenv\n" +
			"   pyvhost ctl reload app1.example.com\n" +
			"   pyvhost ctl top",
		// The daemon serves what nginx's config declares: a change left
		// half-done there shows in what ctl reports.
		Before: func(c *cli.Context) error { warnPendingJournal(c); return nil },
		Subcommands: []*cli.Command{
			{Name: "status", Usage: "the daemon's version, pid, uptime, sockets and totals", Flags: []cli.Flag{ctlFlag(), jsonFlag()}, Action: runCtlStatus},
			{Name: "apps", Usage: "every app with its state, workers, requests and latency", Flags: []cli.Flag{ctlFlag(), jsonFlag(), wideFlag()}, Action: runCtlApps},
			{Name: "load", Usage: "start an app now and wait until it has imported (reports the traceback if it fails)",
				Flags: []cli.Flag{ctlFlag(), jsonFlag(),
					&cli.StringFlag{Name: "app-dir", Usage: "the app's `DIR` (UWSGI_CHDIR)"},
					&cli.StringFlag{Name: "module", Usage: "`MOD[:CALLABLE]` (UWSGI_SCRIPT)"},
					&cli.StringFlag{Name: "venv", Usage: "the app's virtualenv `DIR` (UWSGI_PYHOME)"},
				}, Action: runCtlLoad},
			{Name: "reload", ArgsUsage: "[APP]", Usage: "reload an app (by name or id), or every app, with zero downtime", Flags: []cli.Flag{ctlFlag(), jsonFlag()}, Action: runCtlReload},
			{Name: "stop", ArgsUsage: "APP", Usage: "stop an app's processes; its next request starts them again", Flags: []cli.Flag{ctlFlag(), jsonFlag()}, Action: runCtlStop},
			{Name: "shutdown", Usage: "finish in-flight requests and stop the daemon", Flags: []cli.Flag{ctlFlag()}, Action: runCtlShutdown},
			topCommand(),
		},
	}
}

func ctlClient(c *cli.Context) (*control.Client, error) {
	path := c.String("ctl")
	if path == "" {
		path = control.DefaultSocket()
	}
	return control.Dial(path)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ctlError turns a daemon's refusal into our error, keeping a traceback
// (shown on stderr before the one-line error).
func ctlError(c *cli.Context, err error) error {
	var ae *control.APIError
	if errors.As(err, &ae) && ae.Traceback != "" {
		fmt.Fprint(c.App.ErrWriter, ae.Traceback)
	}
	return err
}

func runCtlStatus(c *cli.Context) error {
	cl, err := ctlClient(c)
	if err != nil {
		return err
	}
	st, err := cl.Status()
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, st)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "pyvhost daemon %s, pid %d, up %s\n", st.Version, st.PID, (time.Duration(st.UptimeSec * float64(time.Second))).Round(time.Second).String())
	fmt.Fprintf(w, "sockets:  %s\n", strings.Join(st.Sockets, ", "))
	fmt.Fprintf(w, "apps:     %d\n", st.Apps)
	fmt.Fprintf(w, "requests: %d (%d errors), %.1f per second over the last 10 s\n", st.Requests, st.Errors, st.RPS)
	fmt.Fprintf(w, "memory:   %.1f MB resident (daemon and every app process)\n", float64(st.RSS)/(1<<20))
	for _, ct := range st.Certs {
		line := fmt.Sprintf("cert:     %s expires %s", ct.Domain, day(ct.NotAfter))
		if ct.Auto {
			line += ", renewed from " + day(ct.NextRenewal)
		}
		if ct.LastError != "" {
			line += "; PROBLEM: " + ct.LastError
		}
		fmt.Fprintln(w, line)
	}
	return nil
}

func runCtlApps(c *cli.Context) error {
	cl, err := ctlClient(c)
	if err != nil {
		return err
	}
	apps, err := cl.Apps()
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, apps)
	}
	if len(apps.Apps) == 0 {
		fmt.Fprintln(c.App.Writer, "no app has been asked for yet")
		return nil
	}
	fmt.Fprintln(c.App.Writer, appsTable(newUI(c.App.Writer, c.Bool("no-color")), apps.Apps, tableWidth(c), time.Now()))
	return nil
}

var appsColumns = []string{"APP", "ID", "STATE", "WORKERS", "REQUESTS", "ERRORS", "AVG MS", "P99 MS", "RSS MB", "LAST REQUEST", "OWN SETTINGS"}

// appsFit: on a narrow terminal the settings, the id and the averages go
// first; the app, its state and its workers stay.
var appsFit = map[string]col{
	"OWN SETTINGS": {drop: 7}, "ID": {drop: 6}, "AVG MS": {drop: 5}, "LAST REQUEST": {drop: 4},
	"ERRORS": {drop: 3}, "RSS MB": {drop: 2}, "P99 MS": {drop: 1},
}

// appsTable is ctl apps' table at now, fitting width (0: any).
func appsTable(u *ui, apps []pool.AppStats, width int, now time.Time) string {
	var rows [][]string
	for _, a := range apps {
		busy := 0
		for _, w := range a.Workers {
			if w.State == "busy" {
				busy++
			}
		}
		state := string(a.State)
		switch {
		case a.Retiring: // replaced; it finishes what it was handed, then goes
			state = u.dim.Render("retiring")
		case a.State == pool.Failed:
			state = u.err.Render(state)
		case a.State == pool.Ready:
			state = u.ok.Render(state)
		}
		state += appTags(a)
		last := "-"
		if a.LastRequest > 0 {
			last = now.Sub(time.UnixMilli(int64(a.LastRequest*1000))).Round(time.Second).String() + " ago"
		}
		rows = append(rows, []string{a.Name, a.ID, state, fmt.Sprintf("%d/%d busy, max %d", busy, len(a.Workers), a.Processes), fmt.Sprint(a.Requests), fmt.Sprint(a.Errors),
			fmt.Sprintf("%.2f", a.AvgLatencyMS), fmt.Sprintf("%.2f", a.P99LatencyMS), fmt.Sprintf("%.1f", float64(a.TotalRSS())/(1<<20)), last, ownSettings(a)})
	}
	return fitTable(u, colsNamed(appsColumns, appsFit), rows, width)
}

// appTags notes, after the state, an ASGI app and one on the slower
// pure-Python request path (no C speedups): " (asgi, pure Python)".
func appTags(a pool.AppStats) string {
	var tags []string
	if a.Interface == "asgi" {
		tags = append(tags, "asgi")
	}
	if a.RequestPath == "python" {
		tags = append(tags, "pure Python")
	}
	if len(tags) == 0 {
		return ""
	}
	return " (" + strings.Join(tags, ", ") + ")"
}

// ownSettings is what the app sets itself: its pool settings and how many
// environment variables it has (never their values), "-" for none.
func ownSettings(a pool.AppStats) string {
	var parts []string
	if a.Own != "" {
		parts = append(parts, a.Own)
	}
	switch {
	case a.EnvVars == 1:
		parts = append(parts, "1 env var")
	case a.EnvVars > 1:
		parts = append(parts, fmt.Sprintf("%d env vars", a.EnvVars))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func runCtlLoad(c *cli.Context) error {
	dir, module := c.String("app-dir"), c.String("module")
	if dir == "" || module == "" {
		return usagef("ctl load needs --app-dir and --module, e.g. pyvhost ctl load --app-dir /srv/app --module app --venv /srv/app/.venv")
	}
	if !filepath.IsAbs(dir) {
		return usagef("--app-dir %q: must be an absolute path", dir)
	}
	cl, err := ctlClient(c)
	if err != nil {
		return err
	}
	st, err := cl.Load(control.LoadRequest{Pyhome: c.String("venv"), Chdir: dir, Script: module})
	if err != nil {
		return ctlError(c, err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, st)
	}
	fmt.Fprintf(c.App.Writer, "app %s (%s) is %s\n", st.Name, st.ID, st.State)
	return nil
}

func runCtlReload(c *cli.Context) error {
	if c.NArg() > 1 {
		return usagef("ctl reload takes at most one APP")
	}
	cl, err := ctlClient(c)
	if err != nil {
		return err
	}
	if c.NArg() == 0 {
		apps, err := cl.ReloadAll()
		if err != nil {
			return ctlError(c, err)
		}
		if c.Bool("json") {
			return printJSON(c.App.Writer, apps)
		}
		serving := 0
		for _, a := range apps.Apps {
			if a.State == pool.Ready {
				serving++
			}
		}
		fmt.Fprintf(c.App.Writer, "reloaded every running app (%d serving)\n", serving)
		return nil
	}
	st, err := cl.Reload(c.Args().First())
	if err != nil {
		return ctlError(c, err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, st)
	}
	fmt.Fprintf(c.App.Writer, "app %s (%s) reloaded: generation %d serves\n", st.Name, st.ID, st.Generation)
	return nil
}

func runCtlStop(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("ctl stop needs exactly one APP (a name or id from pyvhost ctl apps)")
	}
	cl, err := ctlClient(c)
	if err != nil {
		return err
	}
	st, err := cl.Stop(c.Args().First())
	if err != nil {
		return ctlError(c, err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, st)
	}
	fmt.Fprintf(c.App.Writer, "app %s (%s) stopped\n", st.Name, st.ID)
	return nil
}

func runCtlShutdown(c *cli.Context) error {
	cl, err := ctlClient(c)
	if err != nil {
		return err
	}
	if err := cl.Shutdown(); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, "daemon shutting down: in-flight requests finish first")
	return nil
}
