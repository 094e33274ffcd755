package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
	"github.com/urfave/cli/v2"
)

func configCommand() *cli.Command {
	return &cli.Command{
		Name:      "config",
		Usage:     "show or change a deployed app's environment (secrets: kept root-only, shown masked)",
		ArgsUsage: "DOMAIN [--mount /PREFIX] set KEY=VALUE... | unset KEY... | list [--json] [--show-values] | import FILE",
		Description: "The environment is stored per app in the state dir (root-only, never in nginx's files) and\n" +
			"given to the app's processes, its release commands and pyvhost run. A change reloads the\n" +
			"app with zero downtime; if it then fails to import, the old environment is put back.\n\n" +
			"Examples:\n" +
			"   pyvhost config blog.example.com set DEBUG=False SECRET_KEY=\"$(openssl rand -hex 32)\"\n" +
			"   pyvhost config blog.example.com import /root/blog.env\n" +
			"   pyvhost config blog.example.com unset DEBUG\n" +
			"   pyvhost config blog.example.com list",
		Flags: []cli.Flag{nginxConfFlag(), stateDirFlag(), ctlFlag(), mountFlag(), jsonFlag(),
			&cli.BoolFlag{Name: "show-values", Usage: "list: show the values (they are secrets: mind who is watching)"},
			&cli.BoolFlag{Name: "no-reload", Usage: "only store the change; it is in force from the app's next reload or deploy"},
		},
		Action: runConfig,
	}
}

func runConfig(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) < 2 {
		return usagef("config needs a DOMAIN and one of set, unset, list, import, e.g. pyvhost config app.example.com list")
	}
	domain, verb, rest := args[0], args[1], args[2:]
	change, err := configChange(verb, rest)
	if err != nil {
		return err
	}
	app, err := deployedApp(c, strings.ToLower(domain))
	if err != nil {
		return err
	}
	if verb == "list" {
		s, err := appconf.Load(stateDir(c), deployer.KeyOf(app))
		if err != nil {
			return err
		}
		return printConfig(c, s)
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
	res, err := deployer.Configure(env, app, !c.Bool("no-reload"), change)
	if err != nil {
		return err
	}
	out := newUI(c.App.Writer, c.Bool("no-color"))
	switch {
	case !res.Changed:
		fmt.Fprintln(c.App.Writer, "nothing to change: the app's environment already says that")
	case res.Reloaded:
		fmt.Fprintf(c.App.Writer, "%s %s%s: reloaded with the new environment (zero downtime)\n", out.ok.Render("configured:"), domain, mountSuffix(app.Mount))
	case res.Pending != "":
		fmt.Fprintf(c.App.Writer, "%s %s%s: %s\n", out.ok.Render("configured:"), domain, mountSuffix(app.Mount), res.Pending)
	default:
		fmt.Fprintf(c.App.Writer, "%s %s%s\n", out.ok.Render("configured:"), domain, mountSuffix(app.Mount))
	}
	return nil
}

func mountSuffix(m string) string {
	if m == "/" {
		return ""
	}
	return " " + m
}

// configChange is what a config verb does to the app's settings; bad
// arguments are refused before anything is read or locked.
func configChange(verb string, args []string) (func(*appconf.Settings) error, error) {
	switch verb {
	case "list":
		if len(args) > 0 {
			return nil, usagef("config list takes no arguments")
		}
		return nil, nil
	case "set", "import":
		vars := map[string]string{}
		if len(args) == 0 {
			return nil, usagef("config %s needs %s", verb, map[string]string{"set": "KEY=VALUE...", "import": "a dotenv FILE"}[verb])
		}
		for _, a := range args {
			if verb == "import" {
				got, err := readDotenv(a)
				if err != nil {
					return nil, err
				}
				maps.Copy(vars, got)
				continue
			}
			k, v, err := appconf.ParseAssignment(a)
			if err != nil {
				return nil, usagef("config set %v", err)
			}
			vars[k] = v
		}
		return func(s *appconf.Settings) error {
			if s.Env == nil {
				s.Env = map[string]string{}
			}
			maps.Copy(s.Env, vars)
			return nil
		}, nil
	case "unset":
		if len(args) == 0 {
			return nil, usagef("config unset needs KEY...")
		}
		return func(s *appconf.Settings) error {
			for _, k := range args {
				if _, ok := s.Env[k]; !ok {
					return fmt.Errorf("config unset %s: the app's environment has no %s (see pyvhost config DOMAIN list)", k, k)
				}
				delete(s.Env, k)
			}
			return nil
		}, nil
	}
	return nil, usagef("config %s: want set, unset, list or import", verb)
}

// hidden is what list shows for a value without --show-values.
const hidden = "********"

func printConfig(c *cli.Context, s appconf.Settings) error {
	env := map[string]string{}
	for k, v := range s.Env {
		env[k] = hidden
		if c.Bool("show-values") {
			env[k] = v
		}
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			App  any               `json:"app"`
			Env  map[string]string `json:"env"`
			Pool appconf.Pool      `json:"pool"`
		}{s.App, env, s.Pool})
	}
	w := c.App.Writer
	u := newUI(w, c.Bool("no-color"))
	if len(env) == 0 {
		fmt.Fprintln(w, "no environment of its own (set some with pyvhost config DOMAIN set KEY=VALUE)")
	} else {
		t := newTable(u, []string{"KEY", "VALUE"})
		for _, k := range slices.Sorted(maps.Keys(env)) {
			t.Row(k, strings.ReplaceAll(env[k], "\n", `\n`))
		}
		fmt.Fprintln(w, t.Render())
	}
	pool := s.Pool.String()
	if pool == "" {
		pool = "the daemon's flags"
	}
	fmt.Fprintln(w, u.dim.Render("pool: "+pool))
	return nil
}
