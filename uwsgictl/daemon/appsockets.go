package daemon

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// retireGrace is how long an app whose per-app socket left the nginx
// config keeps serving what is handed to it: nginx applies a reload
// gradually (old workers finish with the old config), and a deploy makes
// the daemon re-read the config before it reloads nginx.
const retireGrace = 10 * time.Second

// retiring is an app on its way out, closed once its grace has passed.
type retiring struct {
	app *pool.App
	at  time.Time
}

// syncAppSockets makes the per-app sockets match the nginx config: every
// uwsgi_pass unix:--app-sockets/NAME.sock gets its socket, served by the
// (cold) pool of the app it names; an app several sites name (one app
// under two domains) has one pool serving all its sockets. A socket the
// config no longer names — or names for another app (a redeploy with
// another venv or module) — is unlinked. A pool's sockets are fixed when
// it starts, so an app whose set of sockets changed gets a new pool and
// the old one is stopped gracefully (see replaceLocked); those are
// returned, for a caller that waits until they are done.
func (d *Daemon) syncAppSockets() ([]*pool.App, error) {
	_, sockets, nginxUser := d.policy.snapshot()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sockVersion++         // the supervise loop looks for new sockets
	var orphans []*pool.App // apps that lost a socket
	for path, l := range d.appSockets {
		a := d.sockApp[l]
		if k, ok := sockets[path]; ok && (a == nil || a.Key == k) {
			continue
		}
		os.Remove(path)
		delete(d.appSockets, path)
		delete(d.sockApp, l)
		// The supervise loop, the only one polling listeners, closes it: a
		// closed fd number is then never polled or accepted on after reuse.
		d.retiredListeners = append(d.retiredListeners, l)
		if a != nil {
			orphans = append(orphans, a)
		}
	}
	want := map[pool.Key][]string{}
	for path, k := range sockets {
		want[k] = append(want[k], path)
	}
	var replaced []*pool.App
	for k, paths := range want {
		sort.Strings(paths)
		if a, ok := d.apps[k]; ok && d.servesExactlyLocked(a, paths) {
			continue
		}
		old, err := d.startSocketAppLocked(k, paths, nginxUser)
		if err != nil {
			return replaced, err
		}
		if old != nil {
			replaced = append(replaced, old)
		}
	}
	for _, a := range orphans { // those still named got a new pool above, and are retiring
		if d.apps[a.Key] == a {
			delete(d.apps, a.Key)
			d.retireLocked(a, "its socket left the nginx config")
		}
	}
	return replaced, nil
}

// servesExactlyLocked reports whether a's pool serves exactly the sockets
// at paths.
func (d *Daemon) servesExactlyLocked(a *pool.App, paths []string) bool {
	if len(a.OwnSockets()) != len(paths) {
		return false
	}
	for _, p := range paths {
		if l := d.appSockets[p]; l == nil || d.sockApp[l] != a {
			return false
		}
	}
	return true
}

// startSocketAppLocked starts (cold) a pool for app k serving the sockets
// at paths, binding those not bound yet, and stops the pool that served k
// before, if any, which it returns.
func (d *Daemon) startSocketAppLocked(k pool.Key, paths []string, nginxUser string) (*pool.App, error) {
	var ls []*listener
	var files []*os.File
	var bound []*listener // new here: closed if the pool cannot start
	for _, p := range paths {
		l := d.appSockets[p]
		if l == nil {
			var err error
			if l, err = listen(p, d.cfg.Backlog, d.cfg.Ctl); err != nil {
				closeListeners(bound)
				return nil, err
			}
			grantNginx(p, nginxUser, d.log.logf)
			bound = append(bound, l)
		}
		ls = append(ls, l)
		files = append(files, l.file)
	}
	name, _ := d.policy.allowed(k)
	cfg, err := d.appConfig(k)
	if err != nil {
		closeListeners(bound)
		return nil, err
	}
	a, err := pool.New(cfg, k, d.nextNum, name, files, nil)
	if err != nil {
		closeListeners(bound)
		return nil, err
	}
	d.nextNum++
	old := d.apps[k]
	if old != nil {
		d.replaceLocked(old, "its sockets changed: "+strings.Join(paths, ", ")+" now")
	}
	for i, l := range ls {
		d.appSockets[paths[i]] = l
		d.sockApp[l] = a
	}
	d.apps[k] = a
	d.appLogf(a.Key, "app %s (%s): per-app socket %s", a.ID, a.Name, socketList(paths))
	return old, nil
}

// replaceLocked stops a, whose app a new pool serves from now on: its
// workers finish their requests and exit, as an old generation's do on a
// reload. Left accepting for a grace, as an app whose socket left the
// config is, its workers would keep taking the sockets the new pool shares
// with it — the new, cold pool starting only once they stopped — so a
// deploy's smoke test waited out the grace, and a reload of the new pool
// (new code) was not what answered meanwhile.
func (d *Daemon) replaceLocked(a *pool.App, why string) {
	d.unretireLocked(a)
	a.Close(true)
	d.retired = append(d.retired, a)
	d.appLogf(a.Key, "app %s (%s): replaced by a new pool (%s): it finishes its requests and stops", a.ID, a.Name, why)
}

// unretireLocked takes a off the retiring list (it serves again, or stops
// at once).
func (d *Daemon) unretireLocked(a *pool.App) {
	keep := d.retiring[:0]
	for _, r := range d.retiring {
		if r.app != a {
			keep = append(keep, r)
		}
	}
	d.retiring = keep
}

// waitReplaced waits until the replaced pools' processes are gone (at
// most appWaitTimeout): when a re-read of the config returns, only the
// current pools serve.
func waitReplaced(replaced []*pool.App) {
	deadline := time.Now().Add(appWaitTimeout)
	for _, a := range replaced {
		for !a.Done() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // its workers finish their requests and exit
		}
	}
}

func closeListeners(ls []*listener) {
	for _, l := range ls {
		os.Remove(l.addr)
		l.file.Close()
	}
}

func (d *Daemon) retireLocked(a *pool.App, why string) {
	for _, r := range d.retiring {
		if r.app == a {
			return
		}
	}
	if !a.Running() {
		// No process: nothing to finish, and a request handed to it now
		// gets a 503. Gone at once, so ctl apps does not list, say, the
		// app of a first deploy that failed and was rolled back.
		a.Close(false)
		a.Release()
		d.appLogf(a.Key, "app %s (%s): removed: %s", a.ID, a.Name, why)
		return
	}
	d.retiring = append(d.retiring, retiring{app: a, at: time.Now().Add(retireGrace)})
	d.appLogf(a.Key, "app %s (%s): retiring: %s; it serves what is handed to it for %s, then stops", a.ID, a.Name, why, retireGrace)
}

// pruneRetired closes retired listeners, closes apps whose grace has
// passed, and forgets closed apps whose processes are gone. Only the
// supervise loop calls it.
func (d *Daemon) pruneRetired(forget func(*listener)) {
	now := time.Now()
	var closing []*pool.App
	d.mu.Lock()
	for _, l := range d.retiredListeners {
		forget(l) // before the close: its number may be reused at once
		l.file.Close()
	}
	d.retiredListeners = nil
	keep := d.retiring[:0]
	for _, r := range d.retiring {
		if now.Before(r.at) && r.app.Running() { // no process left (stopped meanwhile): nothing to wait for
			keep = append(keep, r)
			continue
		}
		if d.apps[r.app.Key] == r.app {
			delete(d.apps, r.app.Key)
		}
		closing = append(closing, r.app)
		d.retired = append(d.retired, r.app)
	}
	d.retiring = keep
	alive := d.retired[:0]
	for _, a := range d.retired {
		if !a.Release() { // still has processes
			alive = append(alive, a)
		}
	}
	d.retired = alive
	d.mu.Unlock()
	for _, a := range closing {
		a.Close(true)
	}
}

// socketList names an app's sockets for the log: all of a few, the first
// of many and how many (one app behind 10,000 sites is one short line).
func socketList(paths []string) string {
	const shown = 5
	if len(paths) <= shown {
		return strings.Join(paths, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(paths[:shown], ", "), len(paths)-shown)
}
