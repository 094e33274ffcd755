package deployer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
)

// Env is where a config-only change (undeploy, rollback) happens.
type Env struct {
	Runner   Runner
	Nginx    *Nginx
	StateDir string
	Ctl      string
	Force    bool // --force: overwrite edits made by hand to pyvhost's files
}

// ConfigChange is a prepared undeploy or rollback: nginx files to write,
// then the daemon re-reads them; on failure the files go back byte for byte.
type ConfigChange struct {
	env   Env
	Site  *nginxconf.SiteChanges
	Steps []Step
	Stop  []nginxconf.AppSpec // apps no location serves any more (undeploy)
	Purge []string            // directories to remove once live (undeploy --purge)
	Kept  []string            // directories --purge keeps: another site uses them
	Smoke string              // path to smoke-test ("" = none), rollback
	// Settings give apps back the pool settings, release commands and
	// smoke paths the release had (rollback); running ones are reloaded.
	Settings []SettingsChange
	record   bool

	beforeTest TestResult
	client     *control.Client
	tx         *Transaction
	reload     bool
	reread     bool
	reloaded   []string // apps reloaded with restored settings (ids)

	settingsDone, reloadsDone bool
}

// plan lists the change's steps.
func (cc *ConfigChange) plan(before TestResult) {
	cc.beforeTest = before
	add := func(id StepID, format string, a ...any) {
		cc.Steps = append(cc.Steps, Step{ID: id, Title: fmt.Sprintf(format, a...)})
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
	for _, s := range cc.Settings {
		add(StepSettings, "give the app at %s its settings as the release had them (%s)", s.App.Mount, s.Describe())
	}
	add(StepDaemon, "the daemon (if running) re-reads the nginx config")
	if len(cc.Settings) > 0 {
		add(StepLoad, "reload the apps whose settings changed, if running (zero downtime)")
	}
	for _, a := range cc.Stop {
		add(StepLoad, "stop %s (%s) in the daemon", a.Module, a.AppDir)
	}
	if cc.Smoke != "" {
		add(StepSmoke, "%s", smokeStep(smokeAddr(cc.Site.Spec.Listen), cc.Site.Spec, []string{cc.Smoke}, len(cc.Site.Spec.Apps) > 0))
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
	if err := runSteps(ctx, cc.Steps, p, cc.run, cc.rollback); err != nil {
		return err
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
		_, err := testNewConfig(ctx, cc.env.Nginx, cc.beforeTest)
		return err
	case StepNginxReload:
		cc.reload = true
		return cc.env.Nginx.Reload(ctx)
	case StepSettings:
		if cc.settingsDone {
			return nil // all done on the first step
		}
		cc.settingsDone = true
		for _, sc := range cc.Settings {
			if err := sc.apply(cc.env.StateDir, &cc.tx); err != nil {
				return err
			}
		}
		return nil
	case StepDaemon:
		if cc.client == nil {
			return nil
		}
		cc.reread = true
		return cc.client.ReloadConfig()
	case StepLoad:
		if err := cc.reloadApps(); err != nil {
			return err
		}
		return cc.stopApps()
	case StepSmoke:
		var app *nginxconf.AppSpec
		if len(cc.Site.Spec.Apps) > 0 {
			app = &cc.Site.Spec.Apps[0]
		}
		return smokeSite(ctx, cc.env.Nginx, cc.client, app, smokeAddr(cc.Site.Spec.Listen), cc.Site.Spec, []string{cc.Smoke}, nil)
	case StepPurge:
		for _, dir := range cc.Purge {
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("purge: %w", err)
			}
		}
		return nil
	case StepRelease:
		if len(cc.Site.Changes) == 0 && len(cc.Settings) > 0 {
			return recordSettings(cc.env.StateDir, cc.Site, cc.tx)
		}
		return recordChange(cc.env.StateDir, cc.Site, cc.tx)
	}
	return fmt.Errorf("unknown step %q", s.ID)
}

// reloadApps reloads the running apps whose settings the change restored,
// so their pools run with them (once, on the first load step).
func (cc *ConfigChange) reloadApps() error {
	if cc.reloadsDone || cc.client == nil || len(cc.Settings) == 0 {
		return nil
	}
	cc.reloadsDone = true
	for _, sc := range cc.Settings {
		a, ok, err := appOf(cc.client, sc.App)
		if err != nil {
			return err
		}
		if ok && running(a) {
			cc.reloaded = append(cc.reloaded, a.ID)
			if _, err := cc.client.Reload(a.ID); err != nil {
				return fmt.Errorf("reload %s with its restored settings: %w", a.Name, appError(err))
			}
		}
	}
	return nil
}

// stopApps stops, in the daemon, the apps the change took out (one step
// per app in the plan, all done on the first).
func (cc *ConfigChange) stopApps() error {
	if cc.client == nil || len(cc.Stop) == 0 {
		return nil
	}
	for _, want := range cc.Stop {
		a, ok, err := appOf(cc.client, want)
		if err != nil {
			return err
		}
		if ok && running(a) {
			if _, err := cc.client.Stop(a.ID); err != nil {
				return fmt.Errorf("stop %s: %w", a.Name, err)
			}
		}
	}
	cc.Stop = nil
	return nil
}

func (cc *ConfigChange) rollback(ctx context.Context) error {
	var errs []error
	if cc.tx != nil {
		errs = append(errs, restoreNginx(ctx, cc.env.Nginx, cc.tx, cc.reload))
	}
	if cc.reread {
		errs = append(errs, cc.client.ReloadConfig())
	}
	for _, id := range cc.reloaded { // with the settings the journal put back
		if _, err := cc.client.Reload(id); err != nil {
			errs = append(errs, fmt.Errorf("reload the app with its settings before: %w", appError(err)))
		}
	}
	return errors.Join(errs...)
}
