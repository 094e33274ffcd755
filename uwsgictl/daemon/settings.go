package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// An app's own settings (its environment and pool limits, appconf) are
// read by its identity when its pool is made and again each time it is
// loaded or reloaded: a deploy or `pyvhost config` stores them, then
// reloads the app, and the new generation starts with them while the old
// one drains. Nothing in a request can name or change them.

// settingsDir is the state dir the daemon reads app settings from, "" when
// it cannot read them (a daemon run as a user without access to the state
// dir: said once at start; its apps run with the daemon's flags only).
func settingsDir(cfg *Config, logf func(string, ...any)) string {
	dir := cfg.StateDir
	if dir == "" {
		dir = DefaultStateDir()
	}
	if _, err := os.ReadDir(appconf.Dir(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		logf("warning: app settings in %s cannot be read (%v): apps run without their own environment and pool settings", appconf.Dir(dir), err)
		return ""
	}
	return dir
}

// appConfig is app k's pool config: the daemon's flags, with the app's
// own settings on top.
func (d *Daemon) appConfig(k pool.Key) (*pool.Config, error) {
	s, err := appconf.Load(d.settingsDir, k)
	if err != nil {
		return nil, err
	}
	if err := s.Pool.Validate(); err != nil {
		return nil, fmt.Errorf("settings of app %s: %w", k, err)
	}
	cfg := *d.pcfg
	if d.appLogs != nil {
		cfg.Logf = func(format string, args ...any) { d.appLogf(k, format, args...) }
	}
	s.Pool.Apply(&cfg)
	cfg.Interface = s.Interface
	cfg.Env, cfg.Own = s.Environ(), s.Pool.String()
	if len(s.Env) > 0 || !s.Pool.IsZero() || s.Interface != "" {
		cfg.Stamp = s.Stamp()
	}
	return &cfg, nil
}

// refresh gives app a the settings stored for it now, before it is loaded
// or reloaded. It returns the app to load: a itself, or a new pool that
// took a over when the settings want more workers than a has room for;
// a then retires once the new pool serves (retireWhenReplaced).
func (d *Daemon) refresh(a *pool.App) (*pool.App, error) {
	cfg, err := d.appConfig(a.Key)
	if err != nil {
		d.appLogf(a.Key, "app %s (%s): %v", a.ID, a.Name, err)
		return a, err
	}
	if cur := a.Config(); cur.Stamp != cfg.Stamp && cur.Stamp+cfg.Stamp != "" {
		d.appLogf(a.Key, "app %s (%s): new settings (%s): %s", a.ID, a.Name, orDefaults(cfg.Own), envCount(cfg.Env))
	}
	if a.SetConfig(cfg) {
		return a, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.apps[a.Key] != a {
		return a, fmt.Errorf("app %s (%s) is being replaced: try again", a.ID, a.Name)
	}
	n, err := pool.New(cfg, a.Key, d.nextNum, a.Name, a.OwnSockets(), a.SharedSockets())
	if err != nil {
		return a, err
	}
	d.nextNum++
	d.swapLocked(a, n)
	d.retiring = append(d.retiring, retiring{app: a, at: time.Now().Add(appWaitTimeout)})
	d.appLogf(a.Key, "app %s (%s): %d processes need a larger pool: a new one (app: %d) takes over; the old one (app: %d) serves until it is ready", a.ID, a.Name, cfg.Processes, n.Num, a.Num)
	return n, nil
}

// reloadApp reloads app a with its stored settings and waits until only
// the new code serves. A pool that replaced a (refresh) is loaded, and a
// stopped once it serves. An app that is not running only takes the
// settings, for when it starts.
func (d *Daemon) reloadApp(a *pool.App) (*pool.App, error) {
	wasRunning := a.Running()
	n, err := d.refresh(a)
	if err != nil {
		return a, err
	}
	if !wasRunning {
		return n, nil // not started: its next start has the settings
	}
	if n == a {
		return a, a.ReloadAndWait(appWaitTimeout)
	}
	return d.takeOver(a, n)
}

// takeOver starts n, the pool that replaced a (refresh), then stops a
// gracefully and waits for its processes: from then on only n serves. If n
// cannot start, a is put back and serves on.
func (d *Daemon) takeOver(a, n *pool.App) (*pool.App, error) {
	if err := n.Load(appWaitTimeout); err != nil {
		d.unreplace(a, n)
		return a, err
	}
	a.Close(true)
	deadline := time.Now().Add(appWaitTimeout)
	for !a.Done() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // its workers finish their requests and exit
	}
	return n, nil
}

// unreplace puts a back in place of n, a new pool that could not start:
// the old settings keep serving, as a failed reload leaves the old code.
func (d *Daemon) unreplace(a, n *pool.App) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.swapLocked(n, a)
	d.unretireLocked(a)
	n.Close(false)
	d.retired = append(d.retired, n)
}

// swapLocked puts pool to in from's place: its sockets, its key, the
// single app.
func (d *Daemon) swapLocked(from, to *pool.App) {
	for l, owner := range d.sockApp {
		if owner == from {
			d.sockApp[l] = to
		}
	}
	if d.single == from {
		d.single = to
	}
	d.apps[to.Key] = to
}

func orDefaults(own string) string {
	if own == "" {
		return "the daemon's pool flags"
	}
	return own
}

func envCount(env []string) string {
	if len(env) == 1 {
		return "1 environment variable"
	}
	return fmt.Sprintf("%d environment variables", len(env))
}

// appLogf logs one of the daemon's events about app k: to its log, and to
// the app's own (--app-logs).
func (d *Daemon) appLogf(k pool.Key, format string, args ...any) {
	line := eventLine(format, args...)
	d.log.write([]byte(line))
	d.appLogs.event(k, line)
}
