package deployer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
)

// Progress hears about each step as it runs; cmd draws it (a spinner on a
// terminal, a plain log otherwise).
type Progress interface {
	Start(Step)
	Done(s Step, took time.Duration, err error)
}

// StepError is a failed deploy: the step, why, and whether putting
// everything back worked.
type StepError struct {
	Step     Step
	Err      error
	Rollback error // nil when everything is as it was before
}

func (e *StepError) Error() string {
	msg := fmt.Sprintf("step %q failed: %v", e.Step.ID, e.Err)
	if e.Rollback != nil {
		return msg + fmt.Sprintf("; rolling back ALSO failed: %v", e.Rollback)
	}
	return msg + "; everything was put back as it was"
}

func (e *StepError) Unwrap() error { return e.Err }

// undoLog is what Apply changed so far, newest last in effect.
type undoLog struct {
	appDirTop     string   // topmost directory created for the app dir
	staticDirs    []string // topmost directories created for --static
	chowned       *Owner   // the app dir's previous owner, when we changed it
	venvCreated   bool
	tx            *Transaction
	daemonReread  bool // the daemon re-read the config with our change
	daemonStarted int  // pid of the daemon this deploy started
	loadedID      string
	reloadedID    string // the running app this deploy reloaded
	nginxReloaded bool
	settings      bool // the app's settings were stored (in tx)
}

// Apply runs the plan. On any failure it puts everything back as it was:
// the nginx files byte for byte (then nginx -t and a reload), the daemon's
// config, a venv and app dir it created.
func (d *Deployment) Apply(ctx context.Context, p Progress) error {
	d.progress = p
	if d.client != nil {
		d.rereadAt = rereadFollowsTest(d.Steps)
	}
	return runSteps(ctx, d.Steps, p, d.run, d.rollback)
}

// runSteps runs steps in order, telling p about each; the first that fails
// stops them, and rollback undoes what the earlier ones did.
func runSteps(ctx context.Context, steps []Step, p Progress, run func(context.Context, Step) error, rollback func(context.Context) error) error {
	for _, s := range steps {
		p.Start(s)
		start := time.Now()
		err := run(ctx, s)
		p.Done(s, time.Since(start), err)
		if err != nil {
			return &StepError{Step: s, Err: err, Rollback: rollback(ctx)}
		}
	}
	return nil
}

func (d *Deployment) run(ctx context.Context, s Step) error {
	app := d.App
	switch s.ID {
	case StepAppDir:
		return d.provisionAppDir()
	case StepStaticDir:
		return d.createStaticDir(s.Arg)
	case StepVenv:
		created, err := EnsureVenv(ctx, d.opts.Runner, d.Python, app.Venv, d.SysSite)
		d.undo.venvCreated = created
		return err
	case StepRequirements:
		if err := os.MkdirAll(filepath.Join(d.opts.StateDir, "logs"), 0o700); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
		log := filepath.Join(d.opts.StateDir, "logs", nginxconf.FileStem(d.Site.Spec.Domain)+"-pip.log")
		file := d.Requirements
		if isPyproject(file) {
			var err error
			if file, err = pyprojectRequirements(ctx, d.opts.Runner, app.Venv, file, strings.TrimSuffix(log, "-pip.log")+"-pyproject-requirements.txt"); err != nil {
				return err
			}
		}
		if file != "" { // "": a pyproject.toml that lists no dependencies
			if err := InstallRequirements(ctx, d.opts.Runner, app.Venv, file, log); err != nil {
				return err
			}
		}
		return os.WriteFile(filepath.Join(app.Venv, requirementsStamp), []byte(stampOf(d.Requirements)+"\n"), 0o644)
	case StepPreflight:
		if err := clearBytecode(app.AppDir); err != nil {
			return fmt.Errorf("clear stale bytecode: %w", err)
		}
		ac, err := d.appContext()
		if err != nil {
			return err
		}
		return Preflight(ctx, ac, VenvPython(app.Venv), app.Module, d.appInterface)
	case StepReleaseCmd:
		return d.runReleaseCommand(ctx, s.Arg)
	case StepACMEWrite:
		tx, err := Begin(d.opts.StateDir, d.ACME.First.Changes)
		d.undo.tx = tx
		return err
	case StepACMEReload:
		d.undo.nginxReloaded = true
		return d.opts.Nginx.Reload(ctx)
	case StepACMECheck:
		return d.ACME.Options.precheck(ctx, d.ACME.Names)
	case StepACMEOrder:
		if err := beginIfNone(d.opts.StateDir, &d.undo.tx); err != nil {
			return err
		}
		if !exists(d.ACME.Options.Storage) { // a first order's account: gone again if it fails
			if err := d.undo.tx.TrackTree(d.ACME.Options.Storage); err != nil {
				return err
			}
		}
		ci, err := d.ACME.Options.Obtain(ctx, d.ACME.Names)
		if err != nil {
			return err
		}
		ci.Dir = filepath.Dir(d.Site.Spec.TLS.Cert)
		d.Cert, d.certLeaf = ci, ci.Leaf.Raw
		return nil
	case StepWrite:
		if d.undo.tx != nil { // the ACME challenge's config is written already
			return d.undo.tx.Reapply(d.Site.Changes)
		}
		tx, err := Begin(d.opts.StateDir, d.Site.Changes)
		d.undo.tx = tx
		return err
	case StepNginxTest:
		if d.nginxTests++; d.nginxTests == d.rereadAt {
			d.rereadEarly()
		}
		if testBeside(d.Facts) {
			d.startTestBeside(ctx) // its verdict comes before the smoke test (reloadBeside)
			return nil
		}
		after, err := testNewConfig(ctx, d.opts.Nginx, d.before)
		if err != nil {
			return err
		}
		d.noteTuning(after)
		return nil
	case StepSettings:
		d.undo.settings = true
		return d.Settings.apply(d.opts.StateDir, &d.undo.tx)
	case StepCert:
		if err := beginIfNone(d.opts.StateDir, &d.undo.tx); err != nil {
			return err
		}
		if err := d.Cert.install(d.undo.tx); err != nil {
			return err
		}
		if d.ACME != nil { // the daemon renews it from this
			return writeACMEMeta(d.Cert.Dir, ACMEMeta{Domain: d.Site.Spec.Domain, Names: d.ACME.Names, Options: d.ACME.Options}, d.undo.tx)
		}
		return nil
	case StepACMEMeta:
		if err := beginIfNone(d.opts.StateDir, &d.undo.tx); err != nil {
			return err
		}
		return writeACMEMeta(d.ACMEMeta.Dir, d.ACMEMeta.Meta, d.undo.tx)
	case StepDaemon:
		return d.ensureDaemon(ctx)
	case StepLoad:
		return d.loadApp()
	case StepNginxReload:
		if d.beside != nil {
			return d.reloadBeside(ctx)
		}
		d.undo.nginxReloaded = true
		return d.opts.Nginx.Reload(ctx)
	case StepNginxVerdict:
		return d.besideVerdict()
	case StepSmoke:
		return smokeSite(ctx, d.opts.Nginx, d.client, app, d.SmokeAddr, d.Site.Spec, append([]string{d.SmokePath}, d.SmokeExtra...), d.certLeaf)
	case StepRelease:
		if err := recordChange(d.opts.StateDir, d.Site, d.undo.tx); err != nil {
			return err
		}
		if d.ConfigSame && (d.Settings != nil || d.Cert != nil) {
			if err := recordSettings(d.opts.StateDir, d.Site, d.undo.tx); err != nil {
				return err
			}
		}
		err := d.undo.tx.Commit()
		d.undo.tx = nil
		return err
	}
	return fmt.Errorf("unknown step %q", s.ID)
}

// createStaticDir makes a --static dir in the app dir, owned as the app
// dir is.
func (d *Deployment) createStaticDir(dir string) error {
	o, err := ownerOf(d.App.AppDir)
	if err != nil {
		return err
	}
	top, err := createAppDir(dir, o)
	if top != "" {
		d.undo.staticDirs = append(d.undo.staticDirs, top)
	}
	return err
}

func (d *Deployment) provisionAppDir() error {
	var o Owner
	if d.AppDirUser != "" {
		var err error
		if o, err = LookupOwner(d.AppDirUser); err != nil {
			return err
		}
	}
	if !d.AppDirExists {
		top, err := createAppDir(d.App.AppDir, o)
		d.undo.appDirTop = top
		return err
	}
	prev, err := ownerOf(d.App.AppDir)
	if err != nil {
		return err
	}
	if err := os.Chown(d.App.AppDir, o.UID, o.GID); err != nil {
		return fmt.Errorf("give %s to %s: %w", d.App.AppDir, o.Name, err)
	}
	d.undo.chowned = &prev
	return nil
}

// noteTuning keeps, for the operator, the nginx settings a passing test's
// warnings say are worth raising.
func (d *Deployment) noteTuning(after TestResult) {
	if len(after.Warnings) == 0 {
		return
	}
	for _, n := range Tuning(after, d.serverNames()) { // counted only when nginx warns
		if !slices.Contains(d.Notes, n) { // once, though ACME tests twice
			d.Notes = append(d.Notes, n)
		}
	}
}

// testNewConfig runs nginx -t on the written config: an error, or a
// warning the old config did not have, fails. Its result says what nginx
// would have tuned (Tuning).
func testNewConfig(ctx context.Context, n *Nginx, before TestResult) (TestResult, error) {
	after, err := n.TestNew(ctx)
	if err != nil {
		return after, err
	}
	if !after.OK {
		return after, fmt.Errorf("nginx -t rejects the new config: %s", strings.Join(after.Errors, "; "))
	}
	if w := NewWarnings(before, after); len(w) > 0 {
		return after, fmt.Errorf("nginx -t warns about the new config: %s", strings.Join(w, "; "))
	}
	return after, nil
}

func (d *Deployment) ensureDaemon(ctx context.Context) error {
	if d.client != nil {
		d.undo.daemonReread = true
		var err error
		if d.reread != nil {
			err = d.rereadDone() // begun beside nginx -t
		} else {
			err = d.client.ReloadConfig()
		}
		if err != nil {
			return fmt.Errorf("the daemon could not re-read the nginx config: %w", err)
		}
		return nil
	}
	start := d.opts.Daemon.Start
	if d.Daemon.Systemd {
		start = d.opts.Daemon.StartSystemd
	}
	c, st, err := start(ctx, d.opts.Runner)
	if err != nil {
		return err
	}
	d.client, d.undo.daemonStarted = c, st.PID
	d.Daemon.PID = st.PID
	return nil
}

func (d *Deployment) loadApp() error {
	app := d.App
	if d.Daemon.AppRunning {
		a, ok, err := appOf(d.client, *app)
		if err != nil {
			return err
		}
		if ok {
			d.undo.reloadedID = a.ID // an app's id is its identity's: a pool that takes it over has it too
			_, err := d.client.Reload(a.ID)
			return appError(err)
		}
	}
	st, err := d.client.Load(control.LoadRequest{Pyhome: app.Venv, Chdir: app.AppDir, Script: app.Module})
	if st.ID != "" {
		d.undo.loadedID = st.ID
	}
	return appError(err)
}

// appError adds the last line of an import traceback to the daemon's
// answer.
func appError(err error) error {
	var ae *control.APIError
	if errors.As(err, &ae) && ae.Traceback != "" {
		lines := strings.Split(strings.TrimSpace(ae.Traceback), "\n")
		if last := lines[len(lines)-1]; !strings.HasSuffix(ae.Msg, last) {
			return fmt.Errorf("%s: %s", ae.Msg, last)
		}
		return errors.New(ae.Msg) // the message already ends with the exception
	}
	return err
}

// rollback undoes what Apply did, newest first.
func (d *Deployment) rollback(ctx context.Context) error {
	var errs []error
	u := &d.undo
	d.stopTestBeside()
	if u.loadedID != "" && !d.Daemon.AppRunning && u.daemonStarted == 0 {
		if _, err := d.client.Stop(u.loadedID); err != nil {
			errs = append(errs, fmt.Errorf("stop the app: %w", err))
		}
	}
	if u.tx != nil {
		errs = append(errs, restoreNginx(ctx, d.opts.Nginx, u.tx, u.nginxReloaded))
	}
	if u.settings && u.reloadedID != "" {
		// It runs with the new settings: back to the old ones (its code
		// is what is on disk either way).
		if _, err := d.client.Reload(u.reloadedID); err != nil {
			errs = append(errs, fmt.Errorf("reload the app with its old settings: %w", appError(err)))
		}
	}
	if u.daemonStarted != 0 {
		errs = append(errs, StopDaemon(d.client, u.daemonStarted, 35*time.Second))
	} else if u.daemonReread {
		_ = d.rereadDone() // one begun beside nginx -t: the restored files' read must come after it
		if err := d.client.ReloadConfig(); err != nil {
			errs = append(errs, fmt.Errorf("the daemon could not re-read the restored config: %w", err))
		}
	}
	if u.venvCreated {
		if err := os.RemoveAll(d.App.Venv); err != nil {
			errs = append(errs, fmt.Errorf("remove the venv this deploy created: %w", err))
		}
	}
	if u.chowned != nil {
		if err := os.Chown(d.App.AppDir, u.chowned.UID, u.chowned.GID); err != nil {
			errs = append(errs, fmt.Errorf("give the app dir back: %w", err))
		}
	}
	for _, dir := range u.staticDirs {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove the static dir this deploy created: %w", err))
		}
	}
	if u.appDirTop != "" {
		if err := os.RemoveAll(u.appDirTop); err != nil {
			errs = append(errs, fmt.Errorf("remove the app dir this deploy created: %w", err))
		}
	}
	return errors.Join(errs...)
}

// restoreNginx puts the files back, checks them, and reloads nginx when
// it had loaded the new ones.
func restoreNginx(ctx context.Context, n *Nginx, tx *Transaction, reload bool) error {
	if err := tx.Rollback(); err != nil {
		return fmt.Errorf("restore the nginx files: %w (their old bytes stay in %s: the next deploy, undeploy or rollback puts them back)", err, tx.journal)
	}
	if r, err := n.Test(ctx); err != nil || !r.OK {
		return fmt.Errorf("nginx -t on the restored files: %v %s", err, strings.Join(r.Errors, "; "))
	}
	if reload {
		if err := n.Reload(ctx); err != nil {
			return err
		}
	}
	return nil
}
