package main

import (
	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/urfave/cli/v2"
)

func nginxConfFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "nginx-conf",
		Usage:   "nginx's main configuration `FILE` (default: nginx -V's --conf-path)",
		EnvVars: []string{"PYVHOST_NGINX_CONF"},
	}
}

// confPath is --nginx-conf, else what the installed nginx was built with.
func confPath(c *cli.Context) string {
	if p := c.String("nginx-conf"); p != "" {
		return p
	}
	return nginxconf.DiscoverConfPath()
}

func loadTree(c *cli.Context) (*nginxconf.Tree, error) {
	return nginxconf.Load(confPath(c)) // its errors name the file and say "read nginx config"
}
