package deployer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pyvhost/pyvhost/nginxconf"
)

// PrepareRollback plans putting back release to (0 = the newest release
// whose config differs from the current file) of a site.
func PrepareRollback(ctx context.Context, env Env, domain string, to int) (*ConfigChange, *Release, error) {
	domain = strings.ToLower(domain)
	before, tree, err := loadPassingConfig(ctx, env.Nginx)
	if err != nil {
		return nil, nil, err
	}
	all, err := Releases(env.StateDir, domain)
	if err != nil {
		return nil, nil, err
	}
	if len(all) == 0 {
		return nil, nil, fmt.Errorf("no releases of %s in %s: pyvhost records one at each deploy", domain, filepath.Join(env.StateDir, "releases"))
	}
	layout, err := tree.Layout()
	if err != nil {
		return nil, nil, err
	}
	current, _ := os.ReadFile(layout.SitePath(domain))
	var rel *Release
	for i := len(all) - 1; i >= 0 && rel == nil; i-- {
		switch {
		case to != 0 && all[i].N == to:
			rel = &all[i]
		case to == 0 && string(all[i].Config) != string(current):
			rel = &all[i]
		}
	}
	if rel == nil && to != 0 {
		return nil, nil, &nginxconf.InvalidError{Err: fmt.Errorf("%s has no release %d (it has %d to %d)", domain, to, all[0].N, all[len(all)-1].N)}
	}
	if rel == nil {
		return nil, nil, fmt.Errorf("every recorded release of %s is the config it has now: nothing to roll back to", domain)
	}
	sc, err := tree.PlanRestore(domain, rel.Config)
	if err != nil {
		return nil, nil, err
	}
	if err := checkHandEdits(env.StateDir, sc, env.Force); err != nil {
		return nil, nil, err
	}
	cc := &ConfigChange{env: env, Site: sc, record: true, Smoke: "/"}
	if len(current) > 0 {
		if now, err := nginxconf.SpecFromFile(sc.SitePath, current); err == nil {
			now.Normalize()
			used := usedElsewhere(tree, sc, sc.Spec.Apps)
			for _, a := range now.Apps {
				if !used[appKey(a)] {
					cc.Stop = append(cc.Stop, a)
				}
			}
		}
	}
	if len(sc.Spec.Apps) > 0 && sc.Spec.Apps[0].Mount != "/" {
		cc.Smoke = sc.Spec.Apps[0].Mount + "/"
	}
	cc.plan(before)
	return cc, rel, nil
}
