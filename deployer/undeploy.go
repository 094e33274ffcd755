package deployer

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
)

// PrepareUndeploy plans taking a site (or one --mount of it) down. With
// purge, the app dirs and venvs of the removed apps go too, unless another
// deployed site still uses them, and so do a whole site's certificate and
// key.
func PrepareUndeploy(ctx context.Context, env Env, domain, mount string, purge bool) (*ConfigChange, error) {
	before, tree, err := loadPassingConfig(ctx, env.Nginx)
	if err != nil {
		return nil, err
	}
	sc, err := tree.PlanRemove(domain, mount)
	if err != nil {
		return nil, err
	}
	if err := checkHandEdits(env.StateDir, sc, env.Force); err != nil {
		return nil, err
	}
	// A site that keeps other apps is a new release of it, to roll back
	// from; a site removed whole keeps its releases for a rollback.
	cc := &ConfigChange{env: env, Site: sc, record: len(sc.Changes) == 1 && sc.Changes[0].Kind == nginxconf.Modify}
	removed, remaining := sc.Spec.Apps, []nginxconf.AppSpec(nil)
	if mount != "" {
		removed = nil
		for _, a := range sc.Spec.Apps {
			if a.Mount == nginxconf.NormalizeMount(mount) {
				removed = append(removed, a)
			} else {
				remaining = append(remaining, a)
			}
		}
	}
	used := usedElsewhere(tree, sc, remaining)
	for _, a := range removed {
		if !used[appKey(a)] {
			cc.Stop = append(cc.Stop, a)
		}
		if purge && !used[appKey(a)] {
			// Its environment (secrets) and settings go with it.
			if p := appconf.Path(env.StateDir, KeyOf(a)); exists(p) && !slices.Contains(cc.Purge, p) {
				cc.Purge = append(cc.Purge, p)
			}
		}
		if purge {
			for _, dir := range []string{a.Venv, a.AppDir} {
				switch {
				case used[dir]:
					cc.Kept = append(cc.Kept, dir+": another deployed site uses it")
				case !purgeable(dir, dir == a.Venv):
					cc.Kept = append(cc.Kept, dir+": pyvhost removes only a venv (with pyvenv.cfg) or an app dir below a top-level dir")
				case !slices.Contains(cc.Purge, dir):
					cc.Purge = append(cc.Purge, dir)
				}
			}
		}
	}
	if dir := certDir(env.StateDir, sc.Spec.Domain); purge && mount == "" && exists(dir) {
		cc.Purge = append(cc.Purge, dir) // its certificate and key (the ACME account stays: it is every site's)
	}
	cc.plan(before)
	return cc, nil
}

// usedElsewhere is every app dir, venv and app identity that the config
// still uses once the site's file holds only remaining: the other server
// blocks' apps and remaining's.
func usedElsewhere(tree *nginxconf.Tree, sc *nginxconf.SiteChanges, remaining []nginxconf.AppSpec) map[string]bool {
	used := map[string]bool{}
	own := resolvedPath(sc.Layout.LoadedPath(sc.Spec.Domain))
	for _, b := range tree.Servers() {
		if resolvedPath(b.File) == own {
			continue
		}
		for _, a := range b.Apps {
			used[a.Chdir], used[a.Pyhome] = true, true
			used[appKey(nginxconf.AppSpec{Venv: a.Pyhome, AppDir: a.Chdir, Module: a.Script})] = true
		}
	}
	for _, a := range remaining {
		used[a.AppDir], used[a.Venv], used[appKey(a)] = true, true, true
	}
	return used
}

func appKey(a nginxconf.AppSpec) string { return a.Venv + "\x00" + a.AppDir + "\x00" + a.Module }

// purgeable guards --purge against a typo'd or system path: a venv must
// be one (pyvenv.cfg), and nothing at the top of the tree or a home dir
// goes.
func purgeable(dir string, venv bool) bool {
	dir = filepath.Clean(dir)
	if strings.Count(dir, "/") < 2 {
		return false
	}
	if home, err := os.UserHomeDir(); err == nil && filepath.Clean(home) == dir {
		return false
	}
	if venv {
		_, err := os.Stat(filepath.Join(dir, "pyvenv.cfg"))
		return err == nil
	}
	return true
}
