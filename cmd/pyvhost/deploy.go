package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/urfave/cli/v2"
)

func deployCommand() *cli.Command {
	return &cli.Command{
		Name:      "deploy",
		Usage:     "take a site from nothing to live: app dir, venv, requirements, nginx block, daemon, smoke test",
		ArgsUsage: "DOMAIN",
		Description: "Prints the plan and the nginx diff, asks (unless --yes), then runs each step; if any\n" +
			"step fails, everything is put back as it was (nginx's files byte for byte) and the\n" +
			"command says which step failed and why. Deploying again with changed code reloads\n" +
			"the app with zero downtime; with another --mount or --static it updates the site.\n\n" +
			"Examples:\n" +
			"   pyvhost deploy app1.example.com --app-dir /var/www/myappdir1 --module myapp1\n" +
			"   pyvhost deploy example.com --app-dir /srv/blog --module blog.wsgi --mount /blog --yes\n" +
			"   pyvhost deploy app2.example.com --app-dir /var/www/myappdir2 --module myapp2 \\\n" +
			"       --venv /var/www/myenv --socket 127.0.0.1:9090    # the classic shared port",
		Flags:  append(append(siteFlags(), provisionFlags()...), changeFlags()...),
		Action: runDeploy,
	}
}

func runDeploy(c *cli.Context) error {
	spec, err := specFromFlags(c)
	if err != nil {
		return err
	}
	// Bad input is refused before anything is touched, the lock included.
	if err := spec.ValidateChange(); err != nil {
		return err
	}
	if err := deployer.CheckNginxTestMode(c.String("nginx-test")); err != nil {
		return err
	}
	env, err := changeEnv(c)
	if err != nil {
		return err
	}
	out := newUI(c.App.Writer, c.Bool("no-color"))
	dry := c.Bool("dry-run")
	if dry {
		warnPendingJournal(c) // a real deploy would repair it first
	} else {
		lock, err := beginChange(c, env)
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find pyvhost's own binary: %w", err)
	}
	appEnv, err := envFromFlags(c)
	if err != nil {
		return err
	}
	pool, err := poolFromFlags(c)
	if err != nil {
		return err
	}
	tlsOpts, err := tlsFromFlags(c)
	if err != nil {
		return err
	}
	d, err := deployer.Prepare(c.Context, deployer.Options{
		Spec:         spec,
		Env:          appEnv,
		Release:      c.StringSlice("release"),
		TLS:          tlsOpts,
		Pool:         pool,
		Interface:    c.String("interface"),
		Python:       c.String("python"),
		SysSite:      c.Bool("system-site-packages"),
		Requirements: c.String("requirements"),
		SmokePaths:   c.StringSlice("smoke-path"),
		NginxTest:    c.String("nginx-test"),
		Force:        c.Bool("force"),
		User:         c.String("user"),
		Runner:       env.Runner,
		Nginx:        env.Nginx,
		StateDir:     env.StateDir,
		Daemon: deployer.DaemonSetup{Exe: exe, Ctl: env.Ctl, StateDir: env.StateDir, AppSockets: c.String("app-sockets"), AppLogs: appLogsDir(c),
			NginxPrefix: env.Nginx.Prefix},
	})
	if err != nil {
		showTraceback(c, err) // a hand edit's diff
		return err
	}
	if err := showPlan(c, out, d.Site, d.Steps); err != nil {
		return err
	}
	if dry {
		fmt.Fprintln(c.App.Writer, out.dim.Render("--dry-run: nothing was changed"))
		return nil
	}
	if err := confirmAndApply(c, out, "Deploy "+d.Site.Spec.Domain+"?", d.Steps, d.Apply); err != nil {
		showTraceback(c, err)
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s %s is live\n", out.ok.Render("deployed:"), siteURL(d.Site.Spec, d.SmokePath))
	for _, n := range d.Notes {
		fmt.Fprintf(c.App.Writer, "%s %s\n", out.warn.Render("note:"), n)
	}
	return nil
}

// showTraceback prints Python's traceback when an app failed to import:
// the one-line error says which exception, this says where.
func showTraceback(c *cli.Context, err error) {
	var pe *deployer.PreflightError
	var ae *control.APIError
	var se *deployer.SmokeError
	var he *deployer.HandEditError
	tb := ""
	switch {
	case errors.As(err, &pe):
		tb = pe.Traceback
	case errors.As(err, &ae):
		tb = ae.Traceback
	case errors.As(err, &he):
		tb = "the edits made by hand (- as pyvhost wrote it, + as it is now):\n" + strings.TrimRight(he.Diff, "\n")
	case errors.As(err, &se) && se.AppLog != "":
		tb = "the app's log meanwhile (" + se.LogFile + "):\n" + se.AppLog
	}
	if tb != "" {
		fmt.Fprintln(c.App.ErrWriter, strings.TrimRight(tb, "\n"))
	}
}

// provisionFlags are deploy's own: how to provision the app.
func provisionFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "python", Usage: "interpreter `BIN` that creates the venv (default python3)"},
		&cli.BoolFlag{Name: "system-site-packages", Usage: "let the venv see the system's Python packages (Debian's python3-django, …)"},
		&cli.StringFlag{Name: "requirements", Usage: "pip requirements `FILE` (default: APP-DIR/requirements.txt when present)"},
		&cli.StringFlag{Name: "user", Usage: "`USER` the app runs as: owns the app dir (default www-data for a new dir)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "print the plan and the diff; change nothing"},
		appLogsFlag(),
		&cli.StringSliceFlag{Name: "smoke-path", Usage: "another `PATH` the app must answer with a 2xx before the deploy counts (repeatable); none: no smoke test"},
		&cli.StringFlag{Name: "nginx-test", Value: "auto", Usage: "`WHEN` nginx -t runs: before the reload, or beside it (an error stops the reload itself, " +
			"a new warning puts the old config back a moment after it went live); auto: beside where nginx -t takes half a second or more (thousands of sites)"},
	}, append(appSettingsFlags(), tlsFlags()...)...)
}

// deployLineFlags lets render and diff take a whole deploy command line
// unchanged (`pyvhost diff` + the line you are about to run): deploy's
// own flags are accepted there, hidden, and change nothing.
func deployLineFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range append(provisionFlags(), changeFlags()...) {
		switch f := f.(type) {
		case *cli.StringFlag:
			if f.Name == "nginx-conf" {
				continue // render and diff have their own
			}
			f.Hidden = true
			out = append(out, f)
		case *cli.BoolFlag:
			f.Hidden = true
			out = append(out, f)
		case *cli.StringSliceFlag:
			f.Hidden = true
			out = append(out, f)
		case *cli.IntFlag:
			f.Hidden = true
			out = append(out, f)
		}
	}
	return out
}

// siteURL is where the site answers: its domain, with the port when nginx
// does not listen on 80.
func siteURL(spec nginxconf.SiteSpec, path string) string {
	scheme, listen, std := "http", spec.Listen, "80"
	if spec.TLS != nil {
		scheme, listen, std = "https", spec.TLS.Listen, "443"
	}
	host, port := spec.Domain, listen
	if _, p, err := net.SplitHostPort(listen); err == nil {
		port = p
	}
	if port != "" && port != std {
		host = net.JoinHostPort(host, port)
	}
	return scheme + "://" + host + path
}
