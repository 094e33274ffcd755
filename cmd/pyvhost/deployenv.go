package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
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
		stateDirFlag(),
		ctlFlag(),
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation (needed when there is no terminal)"},
		&cli.BoolFlag{Name: "force", Usage: "overwrite edits made by hand to pyvhost's file for the site (the command shows them and refuses without it)"},
	}
}

// changeEnv is where a change happens, from the flags.
func changeEnv(c *cli.Context) (deployer.Env, error) {
	bin, err := nginxconf.NginxBinary()
	if err != nil {
		return deployer.Env{}, fmt.Errorf("nginx is not installed (apt-get install nginx): pyvhost deploys sites behind it")
	}
	state := stateDir(c)
	return deployer.Env{
		Runner: deployer.ExecRunner{},
		Nginx: &deployer.Nginx{Runner: deployer.ExecRunner{}, Bin: bin, Conf: confPath(c), Prefix: c.String("nginx-prefix"),
			PidFile: nginxconf.PidFile(bin, confPath(c), c.String("nginx-prefix")), Memo: filepath.Join(control.RuntimeDir(), "nginx-test.json")},
		StateDir: state,
		Ctl:      ctlPath(c),
		Force:    c.Bool("force"),
	}, nil
}

func stateDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "state-dir", EnvVars: []string{"PYVHOST_STATE_DIR"}, Usage: "`DIR` for releases, the deploy lock, logs (default " + daemon.DefaultStateDir() + ")"}
}

// warnPendingJournal warns, for a command that reads nginx's config but
// changes nothing, that a change was left unfinished: what it shows may be
// half of that change until the next deploy, undeploy or rollback repairs
// it.
func warnPendingJournal(c *cli.Context) {
	if p := deployer.PendingJournal(stateDir(c)); p != "" {
		u := newUI(c.App.ErrWriter, c.Bool("no-color"))
		fmt.Fprintln(c.App.ErrWriter, u.warn.Render("warning: an unfinished change to nginx's files is recorded in "+p+
			"; the config shown may be half of it until the next deploy, undeploy or rollback puts the files back"))
	}
}

// stateDir is --state-dir (or $PYVHOST_STATE_DIR), else the default.
func stateDir(c *cli.Context) string {
	for _, v := range []string{c.String("state-dir"), os.Getenv("PYVHOST_STATE_DIR")} {
		if v != "" {
			return v
		}
	}
	return daemon.DefaultStateDir()
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
		fmt.Fprintln(c.App.ErrWriter, u.warn.Render("repaired: an earlier change to nginx's files was left unfinished (interrupted, or its files could not be put back); they are back as they were before it, and nginx reloaded"))
	}
	return lock, nil
}
