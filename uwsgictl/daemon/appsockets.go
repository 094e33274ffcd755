package daemon

import (
	"os"
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
// uwsgi_pass unix:--app-sockets/NAME.sock gets its socket and a (cold)
// pool; a socket the config no longer names — or names for another app (a
// redeploy with another venv or module) — is unlinked and its app retired.
func (d *Daemon) syncAppSockets() error {
	_, sockets, nginxUser := d.policy.snapshot()
	d.mu.Lock()
	defer d.mu.Unlock()
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
			d.retireLocked(a, "its socket "+path+" left the nginx config")
		}
	}
	for path, k := range sockets {
		if _, ok := d.appSockets[path]; ok {
			continue
		}
		if a, ok := d.apps[k]; ok {
			if d.ownsSocketLocked(a) {
				continue // one socket per app; a second location reaches it through the daemon
			}
			// Served so far without a socket of its own (through a shared
			// port): a pool's sockets are fixed when it starts, so a new
			// pool takes over with the socket.
			delete(d.apps, k)
			d.retireLocked(a, "it now has a socket of its own, "+path)
		}
		if err := d.addAppSocketLocked(path, k, nginxUser); err != nil {
			return err
		}
	}
	return nil
}

func (d *Daemon) addAppSocketLocked(path string, k pool.Key, nginxUser string) error {
	l, err := listen(path, d.cfg.Backlog, d.cfg.Ctl)
	if err != nil {
		return err
	}
	grantNginx(path, nginxUser, d.log.logf)
	name, _ := d.policy.allowed(k)
	a, err := pool.New(d.pcfg, k, d.nextNum, name, []*os.File{l.file}, nil)
	if err != nil {
		l.file.Close()
		return err
	}
	d.nextNum++
	d.appSockets[path] = l
	d.sockApp[l] = a
	d.apps[k] = a
	d.log.logf("app %s (%s): per-app socket %s", a.ID, a.Name, path)
	return nil
}

func (d *Daemon) ownsSocketLocked(a *pool.App) bool {
	for _, owner := range d.sockApp {
		if owner == a {
			return true
		}
	}
	return false
}

func (d *Daemon) retireLocked(a *pool.App, why string) {
	for _, r := range d.retiring {
		if r.app == a {
			return
		}
	}
	d.retiring = append(d.retiring, retiring{app: a, at: time.Now().Add(retireGrace)})
	d.log.logf("app %s (%s): retiring: %s; it serves what is handed to it for %s, then stops", a.ID, a.Name, why, retireGrace)
}

// pruneRetired closes retired listeners, closes apps whose grace has
// passed, and forgets closed apps whose processes are gone. Only the
// supervise loop calls it.
func (d *Daemon) pruneRetired() {
	now := time.Now()
	var closing []*pool.App
	d.mu.Lock()
	for _, l := range d.retiredListeners {
		l.file.Close()
	}
	d.retiredListeners = nil
	keep := d.retiring[:0]
	for _, r := range d.retiring {
		if now.Before(r.at) {
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
