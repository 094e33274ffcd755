package deployer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
)

// Env is where a config-only change (undeploy, rollback) happens.
type Env struct {
	Runner   Runner
	Nginx    *Nginx
	StateDir string
	Ctl      string
}

// ConfigChange is a prepared undeploy or rollback: nginx files to write,
// then the daemon re-reads them; on failure the files go back byte for byte.
type ConfigChange struct {
	env    Env
	Site   *nginxconf.SiteChanges
	Steps  []Step
	Stop   []nginxconf.AppSpec // apps no location serves any more (undeploy)
	Purge  []string            // directories to remove once live (undeploy --purge)
	Kept   []string            // directories --purge keeps: another site uses them
	Smoke  string              // path to smoke-test ("" = none), rollback
	record bool

	beforeTest TestResult
	client     *control.Client
	tx         *Transaction
	reload     bool
	reread     bool
}

// PrepareUndeploy plans taking a site (or one --mount of it) down. With
// purge, the app dirs and venvs of the removed apps go too, unless another
// deployed site still uses them.
func PrepareUndeploy(ctx context.Context, env Env, domain, mount string, purge bool) (*ConfigChange, error) {
	before, err := currentConfigPasses(ctx, env.Nginx)
	if err != nil {
		return nil, err
	}
	tree, err := nginxconf.Load(env.Nginx.Conf)
	if err != nil {
		return nil, fmt.Errorf("read nginx config: %w", err)
	}
	sc, err := tree.PlanRemove(domain, mount)
	if err != nil {
		return nil, err
	}
	// A site that keeps other apps is a new release of it, to roll back
	// from; a site removed whole keeps its releases for a rollback.
	cc := &ConfigChange{env: env, Site: sc, record: len(sc.Changes) == 1 && sc.Changes[0].Kind == nginxconf.Modify}
	removed := sc.Spec.Apps
	if mount != "" {
		removed = nil
		for _, a := range sc.Spec.Apps {
			if a.Mount == mountOf(mount) {
				removed = append(removed, a)
			}
		}
	}
	var remaining []nginxconf.AppSpec
	if mount != "" {
		for _, a := range sc.Spec.Apps {
			if a.Mount != mountOf(mount) {
				remaining = append(remaining, a)
			}
		}
	}
	used := usedElsewhere(tree, sc, remaining)
	for _, a := range removed {
		if !used[appKey(a)] {
			cc.Stop = append(cc.Stop, a)
		}
		if purge {
			for _, dir := range []string{a.Venv, a.AppDir} {
				switch {
				case used[dir]:
					cc.Kept = append(cc.Kept, dir+": another deployed site uses it")
				case !purgeable(dir, dir == a.Venv):
					cc.Kept = append(cc.Kept, dir+": pyvhost removes only a venv (with pyvenv.cfg) or an app dir below a top-level dir")
				case !contains(cc.Purge, dir):
					cc.Purge = append(cc.Purge, dir)
				}
			}
		}
	}
	cc.plan(before)
	return cc, nil
}

// PrepareRollback plans putting back release to (0 = the newest release
// whose config differs from the current file) of a site.
func PrepareRollback(ctx context.Context, env Env, domain string, to int) (*ConfigChange, *Release, error) {
	before, err := currentConfigPasses(ctx, env.Nginx)
	if err != nil {
		return nil, nil, err
	}
	tree, err := nginxconf.Load(env.Nginx.Conf)
	if err != nil {
		return nil, nil, fmt.Errorf("read nginx config: %w", err)
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

func mountOf(m string) string {
	s := nginxconf.SiteSpec{Apps: []nginxconf.AppSpec{{Mount: m}}}
	s.Normalize()
	return s.Apps[0].Mount
}

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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// plan lists the change's steps.
func (cc *ConfigChange) plan(before TestResult) {
	cc.beforeTest = before
	add := func(id StepID, format string, a ...any) {
		cc.Steps = append(cc.Steps, Step{id, fmt.Sprintf(format, a...)})
	}
	if len(cc.Site.Changes) > 0 {
		var files []string
		for _, c := range cc.Site.Changes {
			files = append(files, fmt.Sprintf("%s %s", c.Kind, c.Path))
		}
		add(StepWrite, "write the nginx config (%s), keeping the old bytes to roll back to", strings.Join(files, ", "))
		add(StepNginxTest, "nginx -t: an error or a new warning fails")
		add(StepNginxReload, "reload nginx")
	}
	add(StepDaemon, "the daemon (if running) re-reads the nginx config")
	for _, a := range cc.Stop {
		add(StepLoad, "stop %s (%s) in the daemon", a.Module, a.AppDir)
	}
	if cc.Smoke != "" {
		add(StepSmoke, "GET http://%s%s with Host: %s must answer below 500", smokeAddr(cc.Site.Spec.Listen), cc.Smoke, cc.Site.Spec.Domain)
	}
	if len(cc.Purge) > 0 {
		add(StepPurge, "remove %s", strings.Join(cc.Purge, ", "))
	}
	if cc.record {
		add(StepRelease, "record the new config as a release")
	}
}

// Apply runs the change; on failure the nginx files go back byte for byte,
// nginx is reloaded with them and the daemon re-reads them.
func (cc *ConfigChange) Apply(ctx context.Context, p Progress) error {
	if c, err := control.Dial(cc.env.Ctl); err == nil {
		cc.client = c
	} else if !errors.Is(err, control.ErrNoDaemon) {
		return err
	}
	for _, s := range cc.Steps {
		p.Start(s)
		start := time.Now()
		err := cc.run(ctx, s)
		p.Done(s, time.Since(start), err)
		if err != nil {
			return &StepError{Step: s, Err: err, Rollback: cc.rollback(ctx)}
		}
	}
	if cc.tx != nil {
		return cc.tx.Commit()
	}
	return nil
}

func (cc *ConfigChange) run(ctx context.Context, s Step) error {
	switch s.ID {
	case StepWrite:
		tx, err := Begin(cc.env.StateDir, cc.Site.Changes)
		cc.tx = tx
		return err
	case StepNginxTest:
		return testNewConfig(ctx, cc.env.Nginx, cc.beforeTest)
	case StepNginxReload:
		cc.reload = true
		return cc.env.Nginx.Reload(ctx)
	case StepDaemon:
		if cc.client == nil {
			return nil
		}
		cc.reread = true
		return cc.client.ReloadConfig()
	case StepLoad:
		return cc.stopApps()
	case StepSmoke:
		var served ServedCount
		if cc.client != nil && len(cc.Site.Spec.Apps) > 0 {
			served = servedBy(cc.client, cc.Site.Spec.Apps[0])
		}
		_, err := SmokeTest(ctx, smokeAddr(cc.Site.Spec.Listen), cc.Site.Spec.Domain, cc.Smoke, 15*time.Second, served)
		return err
	case StepPurge:
		for _, dir := range cc.Purge {
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("purge: %w", err)
			}
		}
		return nil
	case StepRelease:
		config := changeBytes(cc.Site)
		spec, err := nginxconf.SpecFromFile(cc.Site.SitePath, config)
		if err != nil {
			return err
		}
		spec.Normalize()
		_, err = RecordRelease(cc.env.StateDir, Release{Spec: spec, File: cc.Site.SitePath, Config: config})
		return err
	}
	return fmt.Errorf("unknown step %q", s.ID)
}

// stopApps stops, in the daemon, the apps the change took out (one step
// per app in the plan, all done on the first).
func (cc *ConfigChange) stopApps() error {
	if cc.client == nil || len(cc.Stop) == 0 {
		return nil
	}
	apps, err := cc.client.Apps()
	if err != nil {
		return err
	}
	for _, want := range cc.Stop {
		if a, ok := findApp(apps.Apps, want); ok && running(a) {
			if _, err := cc.client.Stop(a.ID); err != nil {
				return fmt.Errorf("stop %s: %w", a.Name, err)
			}
		}
	}
	cc.Stop = nil
	return nil
}

func changeBytes(sc *nginxconf.SiteChanges) []byte {
	for _, c := range sc.Changes {
		if c.Path == sc.SitePath {
			return c.New
		}
	}
	b, _ := os.ReadFile(sc.SitePath)
	return b
}

func (cc *ConfigChange) rollback(ctx context.Context) error {
	var errs []error
	if cc.tx != nil {
		errs = append(errs, restoreNginx(ctx, cc.env.Nginx, cc.tx, cc.reload))
	}
	if cc.reread {
		errs = append(errs, cc.client.ReloadConfig())
	}
	return errors.Join(errs...)
}
