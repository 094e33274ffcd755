package main

import (
	"fmt"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/daemon"
	"github.com/urfave/cli/v2"
)

// changeFlags are the flags of every command that changes nginx's config
// (deploy, undeploy, rollback): where nginx, pyvhost's state and the
// daemon are, and whether to ask first.
func changeFlags() []cli.Flag {
	return []cli.Flag{
		nginxConfFlag(),
		&cli.StringFlag{Name: "nginx-prefix", EnvVars: []string{"PYVHOST_NGINX_PREFIX"}, Usage: "nginx's -p `DIR`, when it runs with a private prefix"},
		&cli.StringFlag{Name: "state-dir", EnvVars: []string{"PYVHOST_STATE_DIR"}, Usage: "`DIR` for releases, the deploy lock, logs (default " + daemon.DefaultStateDir() + ")"},
		ctlFlag(),
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation (needed when there is no terminal)"},
	}
}

// changeEnv is where a change happens, from the flags.
func changeEnv(c *cli.Context) (deployer.Env, error) {
	bin, err := nginxconf.NginxBinary()
	if err != nil {
		return deployer.Env{}, fmt.Errorf("nginx is not installed (apt-get install nginx): pyvhost deploys sites behind it")
	}
	state := c.String("state-dir")
	if state == "" {
		state = daemon.DefaultStateDir()
	}
	return deployer.Env{
		Runner: deployer.ExecRunner{},
		Nginx: &deployer.Nginx{Runner: deployer.ExecRunner{}, Bin: bin, Conf: confPath(c), Prefix: c.String("nginx-prefix"),
			PidFile: nginxconf.PidFile(bin, confPath(c), c.String("nginx-prefix"))},
		StateDir: state,
		Ctl:      ctlPath(c),
	}, nil
}

// beginChange repairs what an interrupted run left and takes the deploy
// lock; the caller releases it.
func beginChange(c *cli.Context, env deployer.Env) (*deployer.Lock, error) {
	lock, err := deployer.TakeLock(env.StateDir)
	if err != nil {
		return nil, err
	}
	repaired, err := deployer.Repair(c.Context, env.StateDir, env.Nginx, env.Ctl)
	if err != nil {
		lock.Release()
		return nil, err
	}
	if repaired {
		u := newUI(c.App.ErrWriter, c.Bool("no-color"))
		fmt.Fprintln(c.App.ErrWriter, u.warn.Render("repaired: an earlier run was interrupted after writing nginx's files; they are back as they were before it, and nginx reloaded"))
	}
	return lock, nil
}
