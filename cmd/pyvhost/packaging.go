package main

// Hidden commands for packaging (make deb): the man page and the systemd
// unit, both from pyvhost's own definitions.

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemon"
	"github.com/urfave/cli/v2"
)

// manCommand prints pyvhost(1) from the commands' own definitions (make deb
// installs it): hidden, it is for packaging.
func manCommand() *cli.Command {
	return &cli.Command{
		Name:   "man",
		Usage:  "print the man page pyvhost(1) in roff",
		Hidden: true,
		Action: func(c *cli.Context) error {
			page, err := c.App.ToManWithSection(1)
			if err != nil {
				return err
			}
			// troff's ASCII output (man in the C locale) has no "…" or "—".
			_, err = fmt.Fprint(c.App.Writer, strings.NewReplacer("…", "...", "—", "--").Replace(page))
			return err
		},
	}
}

// unitCommand prints the systemd unit deploy would install, with the
// Debian package's paths (make deb ships it): hidden, it is for packaging.
func unitCommand() *cli.Command {
	return &cli.Command{
		Name:   "systemd-unit",
		Usage:  "print the daemon's systemd unit with the package's paths",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "exe", Value: "/usr/bin/pyvhost", Usage: "the installed binary"},
			&cli.IntFlag{Name: "processes", Value: 4, Usage: "-p: workers per app at most (they start on demand)"},
		},
		Action: func(c *cli.Context) error {
			unit, err := deployer.DaemonSetup{Exe: c.String("exe"), Ctl: filepath.Join(control.RootRuntimeDir, "ctl.sock"),
				StateDir: daemon.RootStateDir, NginxConf: nginxconf.FallbackConfPath, Processes: c.Int("processes")}.Unit()
			if err != nil {
				return err
			}
			_, err = c.App.Writer.Write(unit)
			return err
		},
	}
}
