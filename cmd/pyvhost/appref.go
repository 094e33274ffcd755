package main

import (
	"fmt"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/urfave/cli/v2"
)

// mountFlag names one app of a site, for the commands that act on an app.
func mountFlag() cli.Flag {
	return &cli.StringFlag{Name: "mount", Value: "/", Usage: "the app at URL `PREFIX` of the site"}
}

// deployedApp is the app pyvhost deployed at domain and mount, as its
// site's file says; bad input is an InvalidError.
func deployedApp(c *cli.Context, domain string) (nginxconf.AppSpec, error) {
	if err := nginxconf.ValidateDomain("domain", domain); err != nil {
		return nginxconf.AppSpec{}, &nginxconf.InvalidError{Err: err}
	}
	tree, err := loadTree(c)
	if err != nil {
		return nginxconf.AppSpec{}, err
	}
	return findDeployedApp(tree, domain, nginxconf.NormalizeMount(c.String("mount")))
}

func findDeployedApp(tree *nginxconf.Tree, domain, mount string) (nginxconf.AppSpec, error) {
	for _, s := range tree.Sites() {
		spec := nginxconf.SpecFromServer(s)
		spec.Normalize()
		if spec.Domain != domain || !s.Managed {
			continue
		}
		for _, a := range spec.Apps {
			if a.Mount == mount {
				return a, nil
			}
		}
		return nginxconf.AppSpec{}, &nginxconf.InvalidError{Err: fmt.Errorf("%s has no app at --mount %s (see pyvhost sites)", domain, mount)}
	}
	return nginxconf.AppSpec{}, &nginxconf.InvalidError{Err: fmt.Errorf("%s is not a site pyvhost deployed (see pyvhost sites)", domain)}
}
