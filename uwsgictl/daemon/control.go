package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// Status is the daemon's summary for the control API.
func (d *Daemon) Status() control.Status {
	st := control.Status{Version: Version, PID: os.Getpid(), UptimeSec: time.Since(d.started).Seconds(), Sockets: []string{},
		NginxConf: d.cfg.NginxConf, AppSockets: d.cfg.AppSockets, AllowRootApps: d.cfg.AllowRootApps, LogFile: d.logFile(), AppLogs: d.appLogs.Dir()}
	for _, l := range d.shared {
		st.Sockets = append(st.Sockets, l.addr)
	}
	for path := range d.appSockets {
		st.Sockets = append(st.Sockets, path)
	}
	st.RSS = pool.RSS(os.Getpid())
	for _, a := range d.appList() {
		if listed, _ := d.listed(a); !listed {
			continue // as Apps
		}
		requests, errs, rss := a.Totals()
		st.Apps++
		st.Requests += requests
		st.Errors += errs
		st.RSS += rss
	}
	st.RPS = d.rate.perSecond(st.Requests)
	if c := d.certs.Load(); c != nil {
		st.Certs = *c
	}
	return st
}

// requestRate keeps one request total per second for the last 10 s.
type requestRate struct {
	mu      sync.Mutex
	samples []rateSample
}

type rateSample struct {
	at    time.Time
	total uint64
}

// sample records the total now (the supervision loop calls it each second).
func (r *requestRate) sample(total uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.samples = append(r.samples, rateSample{now, total})
	for len(r.samples) > 1 && now.Sub(r.samples[0].at) > 10*time.Second {
		r.samples = r.samples[1:]
	}
}

// perSecond is the rate from the oldest sample (up to 10 s ago) to total.
func (r *requestRate) perSecond(total uint64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) == 0 {
		return 0
	}
	first := r.samples[0]
	secs := time.Since(first.at).Seconds()
	if secs < 0.5 || total < first.total {
		return 0
	}
	return float64(total-first.total) / secs
}

// AppList is every app for the control API.
func (d *Daemon) AppList() control.Apps {
	apps := d.Apps()
	if apps == nil {
		apps = []pool.AppStats{}
	}
	return control.Apps{Apps: apps}
}

// appWaitTimeout bounds how long a control request waits for an import.
const appWaitTimeout = 90 * time.Second

// logFile is --logto as an absolute path, "" when the daemon logs to stderr.
func (d *Daemon) logFile() string {
	if d.cfg.LogTo == "" {
		return ""
	}
	if abs, err := filepath.Abs(d.cfg.LogTo); err == nil {
		return abs
	}
	return d.cfg.LogTo
}

// findApp finds a running or known app by name or id.
func (d *Daemon) findApp(ref string) (*pool.App, error) {
	for _, a := range d.appList() {
		if a.ID == ref || a.Name == ref {
			return a, nil
		}
	}
	return nil, fmt.Errorf("%w %q (see pyvhost ctl apps)", control.ErrNotFound, ref)
}

// ctlBackend adapts the daemon to control.Backend.
type ctlBackend struct{ d *Daemon }

func (b ctlBackend) Status() control.Status { return b.d.Status() }
func (b ctlBackend) Apps() control.Apps     { return b.d.AppList() }

// App is one app's stats: the current pool's, when one is retiring.
func (b ctlBackend) App(ref string) (pool.AppStats, error) {
	a, err := b.d.findApp(ref)
	if err != nil {
		return pool.AppStats{}, err
	}
	return a.Stats(), nil
}

// Load starts an app that may run and waits for its import: what deploy
// calls before it reloads nginx.
func (b ctlBackend) Load(req control.LoadRequest) (pool.AppStats, error) {
	k := pool.Key{Pyhome: req.Pyhome, Chdir: req.Chdir, Script: req.Script}
	a, err := b.d.app(k)
	if err != nil {
		return pool.AppStats{}, err // a refusal says so itself (control.ErrRefused)
	}
	if !a.Running() { // a running app keeps its settings until a reload
		if a, err = b.d.refresh(a); err != nil {
			return a.Stats(), err
		}
	}
	if err := a.Load(appWaitTimeout); err != nil {
		return a.Stats(), err
	}
	return a.Stats(), nil
}

func (b ctlBackend) Reload(ref string) (pool.AppStats, error) {
	a, err := b.d.findApp(ref)
	if err != nil {
		return pool.AppStats{}, err
	}
	b.d.log.logf("app %s (%s): reload requested on the control socket", a.ID, a.Name)
	a, err = b.d.reloadApp(a)
	return a.Stats(), err
}

func (b ctlBackend) ReloadAll() error {
	var errs []error
	for _, a := range b.d.appList() {
		if a.Running() {
			if _, err := b.d.reloadApp(a); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (b ctlBackend) Stop(ref string) (pool.AppStats, error) {
	a, err := b.d.findApp(ref)
	if err != nil {
		return pool.AppStats{}, err
	}
	b.d.log.logf("app %s (%s): stop requested on the control socket", a.ID, a.Name)
	err = a.StopAndWait(appWaitTimeout)
	return a.Stats(), err
}

func (b ctlBackend) ReloadConfig() error {
	tree, err := b.d.policy.reload()
	if err != nil {
		return err
	}
	b.d.noteCerts(tree) // a deploy may have installed a certificate
	replaced, err := b.d.syncAppSockets()
	waitReplaced(replaced)
	return err
}

func (b ctlBackend) Shutdown() {
	select {
	case b.d.shutdownReq <- struct{}{}:
	default:
	}
}
