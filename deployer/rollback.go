package deployer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
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
	now := currentApps(env.StateDir, layout.SitePath(domain), current)
	var rel *Release
	for i := len(all) - 1; i >= 0 && rel == nil; i-- {
		switch {
		case to != 0 && all[i].N == to:
			rel = &all[i]
		case to == 0 && (string(all[i].Config) != string(current) || appsDiffer(all[i].Apps, now)):
			rel = &all[i]
		}
	}
	if rel == nil && to != 0 {
		return nil, nil, &nginxconf.InvalidError{Err: fmt.Errorf("%s has no release %d (it has %d to %d)", domain, to, all[0].N, all[len(all)-1].N)}
	}
	if rel == nil {
		return nil, nil, fmt.Errorf("every recorded release of %s is the config and settings it has now: nothing to roll back to", domain)
	}
	sc, err := tree.PlanRestore(domain, rel.Config)
	if err != nil {
		return nil, nil, err
	}
	if err := checkHandEdits(env.StateDir, sc, env.Force); err != nil {
		return nil, nil, err
	}
	cc := &ConfigChange{env: env, Site: sc, record: true, Smoke: "/"}
	if cc.Settings, err = restoredSettings(env.StateDir, sc.Spec, rel.Apps); err != nil {
		return nil, nil, err
	}
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

// restoredSettings are the changes that give the apps of spec the pool
// settings, interface, release commands and smoke paths a release recorded (their
// environment stays as it is).
func restoredSettings(stateDir string, spec nginxconf.SiteSpec, recorded []ReleaseApp) ([]SettingsChange, error) {
	var out []SettingsChange
	for _, ra := range recorded {
		for _, a := range spec.Apps {
			if a.Mount != ra.Mount {
				continue
			}
			old, err := appconf.Load(stateDir, KeyOf(a))
			if err != nil {
				return nil, err
			}
			n := old
			n.Pool, n.Release, n.SmokePaths, n.Interface = ra.Pool, ra.Release, ra.SmokePaths, ra.Interface
			sc := SettingsChange{Path: appconf.Path(stateDir, old.App), Old: old, New: n, App: a}
			if sc.Changed() {
				out = append(out, sc)
			}
		}
	}
	return out, nil
}

// currentApps is what the apps of the site's file have stored now.
func currentApps(stateDir, path string, config []byte) []ReleaseApp {
	if len(config) == 0 {
		return nil
	}
	spec, err := nginxconf.SpecFromFile(path, config)
	if err != nil {
		return nil
	}
	spec.Normalize()
	apps, _ := releaseApps(stateDir, spec)
	return apps
}

// appsDiffer reports whether a release's recorded app settings differ
// from now's (a release from before settings were recorded never does).
func appsDiffer(recorded, now []ReleaseApp) bool {
	if recorded == nil {
		return false
	}
	a, _ := json.Marshal(recorded)
	b, _ := json.Marshal(now)
	return string(a) != string(b)
}
