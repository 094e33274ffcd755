package main

import (
	"fmt"
	"os"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
	"github.com/urfave/cli/v2"
)

// appSettingsFlags set one app's environment and pool: stored in the state
// dir (root-only) and read by the daemon by the app's identity. Unset
// ones keep what the app has.
func appSettingsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "env", Usage: "set `KEY=VALUE` in the app's environment (repeatable; kept root-only, never in nginx's files)"},
		&cli.StringSliceFlag{Name: "env-file", Usage: "set the variables of dotenv `FILE` in the app's environment (before --env)"},
		&cli.StringSliceFlag{Name: "release", Usage: "a release `CMD` run (sh -c, in the app dir, as its user, with its environment) before the new code goes live; repeatable, in order, kept for later deploys; none: no more"},
		&cli.IntFlag{Name: "processes", Usage: "most worker processes of the app, `N` (default: the daemon's -p)"},
		&cli.IntFlag{Name: "harakiri", Usage: "kill a worker after `SECS` on one request, 0 never (default: the daemon's -t); nginx waits as long"},
		&cli.IntFlag{Name: "max-requests", Usage: "recycle a worker after `N` requests, 0 never (default: the daemon's -R)"},
		&cli.IntFlag{Name: "idle", Usage: "stop the app's processes after `SECS` without requests, 0 never (default: the daemon's --idle)"},
		&cli.IntFlag{Name: "limit-as", Usage: "address space of each of the app's processes, `MB`, 0 no limit (default: the daemon's --limit-as)"},
		&cli.StringFlag{Name: "interface", Usage: "how the app is called: `asgi` or wsgi (default: what its callable is — an async one is ASGI)"},
		&cli.IntFlag{Name: "asgi-concurrency", Usage: "most connections one of an ASGI app's workers serves at once, `N` (default: the daemon's, 1000)"},
	}
}

// envFromFlags is --env-file's variables, then --env's over them.
func envFromFlags(c *cli.Context) (map[string]string, error) {
	env := map[string]string{}
	for _, f := range c.StringSlice("env-file") {
		vars, err := readDotenv(f)
		if err != nil {
			return nil, err
		}
		for k, v := range vars {
			env[k] = v
		}
	}
	for _, a := range c.StringSlice("env") {
		k, v, err := appconf.ParseAssignment(a)
		if err != nil {
			return nil, &nginxconf.InvalidError{Err: fmt.Errorf("--env %w", err)}
		}
		env[k] = v
	}
	return env, nil
}

// readDotenv reads a dotenv file; a bad line is refused naming file and line.
func readDotenv(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &nginxconf.InvalidError{Err: fmt.Errorf("--env-file: %w", err)}
	}
	vars, err := appconf.ParseDotenv(path, b)
	if err != nil {
		return nil, &nginxconf.InvalidError{Err: err}
	}
	return vars, nil
}

// poolFromFlags is the pool settings given on the command line.
func poolFromFlags(c *cli.Context) (appconf.Pool, error) {
	var p appconf.Pool
	for _, f := range []struct {
		name string
		dst  **int
	}{{"processes", &p.Processes}, {"harakiri", &p.Harakiri}, {"max-requests", &p.MaxRequests}, {"idle", &p.Idle}, {"limit-as", &p.LimitAS},
		{"asgi-concurrency", &p.ASGIConcurrency}} {
		if c.IsSet(f.name) {
			v := c.Int(f.name)
			*f.dst = &v
		}
	}
	if err := p.Validate(); err != nil {
		return p, &nginxconf.InvalidError{Err: err}
	}
	return p, nil
}

// tlsFlags set the site's HTTPS.
func tlsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "tls", Usage: "serve the site over HTTPS: `auto` (a certificate from an ACME CA, Let's Encrypt by default, renewed by the daemon), cert=FILE,key=FILE (one you bring: key matches, chain in order, names cover the site, not expired), or off; unset keeps the site's"},
		&cli.StringFlag{Name: "acme-ca", Usage: "with --tls auto: the ACME CA's directory `URL` (default Let's Encrypt)"},
		&cli.BoolFlag{Name: "acme-staging", Usage: "with --tls auto: Let's Encrypt's staging CA (untrusted certificates, generous limits: for trying)"},
		&cli.StringFlag{Name: "acme-email", Usage: "with --tls auto: the ACME account's contact `ADDRESS` (expiry warnings)"},
		&cli.StringFlag{Name: "acme-ca-root", Usage: "with --tls auto: trust the roots in PEM `FILE` when talking to the CA (step-ca, a company CA, pebble)"},
		&cli.StringFlag{Name: "acme-challenge", Value: "127.0.0.1:8402", Usage: "with --tls auto: loopback `ADDR:PORT` pyvhost answers HTTP-01 challenges on (nginx proxies them there)"},
		&cli.IntFlag{Name: "acme-http-port", Value: 80, Usage: "with --tls auto: the `PORT` the CA validates on (80; a test CA may use another)"},
		&cli.StringFlag{Name: "acme-resolver", Usage: "with --tls auto: DNS server `ADDR:PORT` the pre-check resolves names with, as the CA does (default: the system's)"},
		&cli.StringFlag{Name: "https-listen", Usage: "with --tls: nginx's HTTPS `[ADDR:]PORT` (default 443); --listen stays HTTP, redirecting to it"},
		&cli.BoolFlag{Name: "hsts", Usage: "with --tls: send Strict-Transport-Security (browsers then refuse plain HTTP for two years: hard to undo)"},
	}
}

// tlsFromFlags is --tls and its companions; nil when --tls is not given.
func tlsFromFlags(c *cli.Context) (*deployer.TLSOptions, error) {
	if !c.IsSet("tls") {
		if c.IsSet("https-listen") || c.IsSet("hsts") {
			return nil, usagef("--https-listen and --hsts go with --tls cert=FILE,key=FILE")
		}
		return nil, nil
	}
	o, err := deployer.ParseTLS(c.String("tls"))
	if err != nil {
		return nil, &nginxconf.InvalidError{Err: err}
	}
	if o.Off && (c.IsSet("https-listen") || c.IsSet("hsts")) {
		return nil, usagef("--tls off takes no --https-listen or --hsts")
	}
	o.HTTPSListen, o.HSTS = c.String("https-listen"), c.Bool("hsts")
	if o.Auto {
		o.ACME = deployer.ACMEOptions{CA: c.String("acme-ca"), Staging: c.Bool("acme-staging"), Email: c.String("acme-email"),
			CARoot: c.String("acme-ca-root"), Challenge: c.String("acme-challenge"), HTTPPort: c.Int("acme-http-port"), Resolver: c.String("acme-resolver")}
	}
	return &o, nil
}
