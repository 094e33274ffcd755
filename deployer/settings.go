package deployer

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// SettingsChange is what a deploy (or `pyvhost config`) stores of one
// app's own settings: its environment and pool settings (appconf). The
// daemon reads them by the app's identity when it loads or reloads it.
type SettingsChange struct {
	Path     string
	Old, New appconf.Settings
	App      nginxconf.AppSpec // whose (rollback: to reload it)
}

// KeyOf is the app's identity as the daemon knows it.
func KeyOf(a nginxconf.AppSpec) pool.Key {
	return pool.Key{Pyhome: a.Venv, Chdir: a.AppDir, Script: a.Module}
}

// newSettingsChange is app's stored settings with env's variables set,
// p's pool settings taken over, and release as its release commands when
// given (["none"]: none any more).
func newSettingsChange(stateDir string, app nginxconf.AppSpec, env map[string]string, p appconf.Pool, release []string, iface string) (SettingsChange, error) {
	old, err := appconf.Load(stateDir, KeyOf(app))
	if err != nil {
		return SettingsChange{}, err
	}
	if err := p.Validate(); err != nil {
		return SettingsChange{}, &nginxconf.InvalidError{Err: err}
	}
	for k, v := range env {
		if err := appconf.ValidateKey(k); err != nil {
			return SettingsChange{}, &nginxconf.InvalidError{Err: fmt.Errorf("--env: %w", err)}
		}
		if err := appconf.ValidateValue(k, v); err != nil {
			return SettingsChange{}, &nginxconf.InvalidError{Err: fmt.Errorf("--env: %w", err)}
		}
	}
	n := appconf.Settings{App: old.App, Env: maps.Clone(old.Env), Pool: old.Pool.Merge(p), Release: old.Release, SmokePaths: old.SmokePaths,
		Interface: old.Interface}
	switch iface {
	case "":
	case "auto":
		n.Interface = ""
	case "asgi", "wsgi":
		n.Interface = iface
	default:
		return SettingsChange{}, &nginxconf.InvalidError{Err: fmt.Errorf("--interface %q: want asgi, wsgi or auto (what the app's callable is)", iface)}
	}
	switch {
	case len(release) == 1 && release[0] == "none":
		n.Release = nil
	case len(release) > 0:
		for _, c := range release {
			if strings.TrimSpace(c) == "" || c == "none" || strings.ContainsRune(c, 0) {
				return SettingsChange{}, &nginxconf.InvalidError{Err: fmt.Errorf("--release %q: want a shell command, e.g. \"python manage.py migrate --noinput\" (or none alone, for no release commands)", c)}
			}
		}
		n.Release = release
	}
	if n.Env == nil && len(env) > 0 {
		n.Env = map[string]string{}
	}
	maps.Copy(n.Env, env)
	return SettingsChange{Path: appconf.Path(stateDir, old.App), Old: old, New: n}, nil
}

// Changed reports whether the stored settings change.
func (s SettingsChange) Changed() bool {
	return s.Old.Stamp() != s.New.Stamp() || !slices.Equal(s.Old.Release, s.New.Release) || !slices.Equal(s.Old.SmokePaths, s.New.SmokePaths)
}

// Describe says what changes, naming variables but never their values.
func (s SettingsChange) Describe() string {
	var parts []string
	var set, changed []string
	for _, k := range slices.Sorted(maps.Keys(s.New.Env)) {
		old, had := s.Old.Env[k]
		switch {
		case !had:
			set = append(set, k)
		case old != s.New.Env[k]:
			changed = append(changed, k)
		}
	}
	if len(set) > 0 {
		parts = append(parts, "set "+strings.Join(set, ", "))
	}
	if len(changed) > 0 {
		parts = append(parts, "change "+strings.Join(changed, ", "))
	}
	if len(parts) > 0 {
		parts[len(parts)-1] += " (values not shown)"
	}
	if s.Old.Pool.String() != s.New.Pool.String() {
		parts = append(parts, "pool "+s.New.Pool.String())
	}
	if s.Old.Interface != s.New.Interface {
		parts = append(parts, "interface "+cmp.Or(s.New.Interface, "auto"))
	}
	if !slices.Equal(s.Old.SmokePaths, s.New.SmokePaths) {
		parts = append(parts, "smoke paths "+strings.Join(s.New.SmokePaths, " "))
	}
	if !slices.Equal(s.Old.Release, s.New.Release) {
		switch n := len(s.New.Release); n {
		case 0:
			parts = append(parts, "no release commands")
		case 1:
			parts = append(parts, "1 release command")
		default:
			parts = append(parts, fmt.Sprintf("%d release commands", n))
		}
	}
	return strings.Join(parts, "; ")
}

// apply stores the new settings within *tx, which keeps the old ones to
// put back; with no transaction yet (the nginx config does not change),
// one is begun for them.
func (s SettingsChange) apply(stateDir string, tx **Transaction) error {
	if err := beginIfNone(stateDir, tx); err != nil {
		return err
	}
	return s.store(stateDir, *tx)
}

// beginIfNone begins a transaction for a change outside nginx's files
// when the nginx files do not change (so none was begun).
func beginIfNone(stateDir string, tx **Transaction) error {
	if *tx != nil {
		return nil
	}
	t, err := Begin(stateDir, nil)
	*tx = t
	return err
}

func (s SettingsChange) store(stateDir string, tx *Transaction) error {
	dir := appconf.Dir(stateDir)
	if _, err := os.Stat(dir); err != nil {
		if err := tx.Track(dir, true); err != nil {
			return err
		}
	}
	if err := tx.Track(s.Path, false); err != nil {
		return err
	}
	return appconf.Save(stateDir, s.New)
}

// readTimeoutGrace is how much longer than an app's harakiri nginx waits
// for it: harakiri's 5xx, not nginx's 504, is what the client gets.
const readTimeoutGrace = 5

// prepareSettings works out the app's settings to store, and plans the
// site again when its harakiri sets the location's uwsgi_read_timeout
// (the merged spec names the app, so the first plan comes first).
func (d *Deployment) prepareSettings(tree *nginxconf.Tree, spec nginxconf.SiteSpec) error {
	if len(spec.Apps) == 0 {
		if len(d.opts.Env) > 0 || !d.opts.Pool.IsZero() || len(d.opts.Release) > 0 || d.opts.Interface != "" {
			return &nginxconf.InvalidError{Err: fmt.Errorf("--env, --release, --interface and the pool settings are an app's: give its --app-dir and --module too")}
		}
		return nil
	}
	mount := nginxconf.NormalizeMount(spec.Apps[0].Mount)
	var app nginxconf.AppSpec
	for _, a := range d.Site.Spec.Apps {
		if a.Mount == mount {
			app = a
		}
	}
	sc, err := newSettingsChange(d.opts.StateDir, app, d.opts.Env, d.opts.Pool, d.opts.Release, d.opts.Interface)
	if err != nil {
		return err
	}
	if len(d.opts.SmokePaths) > 0 {
		sc.New.SmokePaths = d.opts.SmokePaths // checked with the rest of the smoke test's settings
	} else {
		d.opts.SmokePaths = sc.New.SmokePaths // as the app was last deployed
	}
	if sc.Changed() {
		d.Settings = &sc
	}
	d.appEnv, d.ReleaseCommands, d.appInterface = sc.New.Environ(), sc.New.Release, sc.New.Interface
	if h := sc.New.Pool.Harakiri; h != nil && *h > 0 {
		spec.Apps = append([]nginxconf.AppSpec(nil), spec.Apps...)
		spec.Apps[0].ReadTimeout = fmt.Sprintf("%ds", *h+readTimeoutGrace)
		d.Site, err = tree.PlanSite(spec)
	}
	return err
}

// appContext is the deployed app's context, as the daemon will run it:
// as RunAs (we are root then) or as us, with the environment this deploy
// leaves it.
func (d *Deployment) appContext() (AppContext, error) {
	uid := os.Geteuid()
	if d.RunAs != "" {
		o, err := LookupOwner(d.RunAs)
		if err != nil {
			return AppContext{}, err
		}
		uid = o.UID
	}
	return appContextAs(*d.App, uid, d.appEnv)
}
