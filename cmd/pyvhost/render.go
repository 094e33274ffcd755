package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/urfave/cli/v2"
)

func renderCommand() *cli.Command {
	return &cli.Command{
		Name:      "render",
		Usage:     "print the nginx server block for a site; changes nothing",
		ArgsUsage: "DOMAIN",
		Description: "Example:\n" +
			"   pyvhost render app1.example.com --app-dir /var/www/myappdir1 --module myapp1 \\\n" +
			"       --venv /var/www/myenv --socket 127.0.0.1:9090",
		Flags:  append(append(siteFlags(), nginxConfFlag()), deployLineFlags()...),
		Action: runRender,
	}
}

func runRender(c *cli.Context) error {
	spec, err := specFromFlags(c)
	if err != nil {
		return err
	}
	// Include uwsgi_params when the target nginx has the file, as Debian's
	// and nginx.org's packages do; inline the params otherwise.
	_, statErr := os.Stat(filepath.Join(filepath.Dir(confPath(c)), "uwsgi_params"))
	opt := nginxconf.RenderOptions{IncludeParams: !errors.Is(statErr, fs.ErrNotExist)}
	out, err := nginxconf.Render(spec, opt)
	if err != nil {
		return err
	}
	_, err = c.App.Writer.Write(out)
	return err
}
