package main

import (
	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/urfave/cli/v2"
)

// siteFlags are the flags that describe a site: deploy, render and diff
// share them.
func siteFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "app-dir", Usage: "the app's `DIR`, absolute (UWSGI_CHDIR)"},
		&cli.StringFlag{Name: "module", Usage: "the WSGI entry point, `MOD[:CALLABLE]` (UWSGI_SCRIPT)"},
		&cli.StringFlag{Name: "venv", Usage: "the app's virtualenv `DIR` (UWSGI_PYHOME; default APP-DIR/.venv)"},
		&cli.StringFlag{Name: "mount", Usage: "serve the app under URL `/PREFIX` instead of /", Value: ""},
		&cli.StringSliceFlag{Name: "static", Usage: "let nginx serve `URL=DIR` itself (repeatable)"},
		&cli.StringSliceFlag{Name: "alias", Usage: "another server `NAME` for the site (repeatable)"},
		&cli.StringFlag{Name: "listen", Usage: "nginx listen `[ADDR:]PORT` (default 80)"},
		&cli.StringFlag{Name: "max-body", Usage: "largest request body nginx takes, `SIZE` as nginx writes it (default " + nginxconf.DefaultMaxBody + "; 0: no limit); an unset one keeps the site's"},
		&cli.StringFlag{Name: "socket", Usage: "uwsgi daemon `ADDR`: unix:/path.sock or host:port (default: the app's own socket in --app-sockets)"},
		&cli.StringFlag{Name: "app-sockets", EnvVars: []string{"PYVHOST_APP_SOCKETS"}, Value: nginxconf.DefaultAppSocketDir, Usage: "`DIR` of per-app unix sockets; the daemon's --app-sockets"},
	}
}

// specFromFlags builds the site spec a command line describes. It checks
// only what the flags alone can tell; the spec validates itself.
func specFromFlags(c *cli.Context) (nginxconf.SiteSpec, error) {
	if c.NArg() != 1 {
		return nginxconf.SiteSpec{}, usagef("%s needs exactly one DOMAIN, e.g. pyvhost %s app.example.com --app-dir /srv/app --module app", c.Command.Name, c.Command.Name)
	}
	spec := nginxconf.SiteSpec{
		Domain:  c.Args().First(),
		Aliases: c.StringSlice("alias"),
		Listen:  c.String("listen"),
		MaxBody: c.String("max-body"),

		SocketDir: c.String("app-sockets"),
	}
	appDir, module := c.String("app-dir"), c.String("module")
	switch {
	case appDir != "" && module != "":
		spec.Apps = []nginxconf.AppSpec{{
			Mount:  c.String("mount"),
			Socket: c.String("socket"),
			Venv:   c.String("venv"),
			AppDir: appDir,
			Module: module,
		}}
	case appDir != "" || module != "":
		return spec, usagef("--app-dir and --module go together: the app's directory and the module in it to serve")
	case c.IsSet("mount") || c.IsSet("venv") || c.IsSet("socket"):
		return spec, usagef("--mount, --venv and --socket describe an app: give --app-dir and --module too")
	}
	for _, s := range c.StringSlice("static") {
		st, err := nginxconf.ParseStatic(s)
		if err != nil {
			return spec, usageError{err.Error()}
		}
		spec.Statics = append(spec.Statics, st)
	}
	return spec, nil
}
