package daemon

import (
	"errors"
	"fmt"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// DefaultMaxApps is --max-apps' default: how many apps the daemon holds
// that the nginx config does not declare (admitted by --vhost-root).
const DefaultMaxApps = 256

// evictWarmAfter is how long an app with processes must have had no
// request before it may be evicted to make room: cold apps go first, and
// an app in use is never evicted.
const evictWarmAfter = 30 * time.Second

// errTooManyApps is a request for a new --vhost-root app while --max-apps
// are held and every one of them is in use: the request gets a 503.
var errTooManyApps = errors.New("too many apps")

// makeRoomLocked keeps the apps --vhost-root admitted within --max-apps
// before another is added: every distinct (pyhome, chdir, script) a peer
// names under a root would otherwise cost a pool, a scoreboard and sockets
// for the daemon's lifetime. It evicts the app idle longest, preferring
// cold ones (no processes) to warm ones idle for evictWarmAfter.
func (d *Daemon) makeRoomLocked(k pool.Key) error {
	if len(d.admitted) < d.maxApps() {
		return nil
	}
	declared, _, _ := d.policy.snapshot()
	var victim *pool.App
	var victimLast time.Time
	victimCold := false
	for key := range d.admitted {
		a := d.apps[key]
		if _, ok := declared[key]; a == nil || ok { // gone, or declared since: not bounded here
			delete(d.admitted, key)
			continue
		}
		last, busy := a.Activity()
		cold := !a.Running()
		if busy || (!cold && time.Since(last) < evictWarmAfter) {
			continue
		}
		if victim == nil || (cold && !victimCold) || (cold == victimCold && last.Before(victimLast)) {
			victim, victimLast, victimCold = a, last, cold
		}
	}
	if victim == nil {
		return fmt.Errorf("%w: app %s refused with 503: --max-apps %d apps from --vhost-root are held and all had requests in the last %s; raise --max-apps",
			errTooManyApps, k, d.maxApps(), evictWarmAfter)
	}
	delete(d.apps, victim.Key)
	delete(d.admitted, victim.Key)
	d.retired = append(d.retired, victim) // pruneRetired releases it once its processes are gone
	d.log.logf("app %s (%s): evicted, idle since %s, to make room for %s (--max-apps %d)",
		victim.ID, victim.Name, victimLast.Format(time.TimeOnly), k, d.maxApps())
	victim.Close(true)
	return nil
}

func (d *Daemon) maxApps() int {
	if d.cfg.MaxApps > 0 {
		return d.cfg.MaxApps
	}
	return DefaultMaxApps
}

// logRefusal logs a refusal at most once a second, with how many the
// quiet time suppressed: a flood of refused requests is one line a second.
func (d *Daemon) logRefusal(msg string) {
	d.mu.Lock()
	now := time.Now()
	if now.Sub(d.refusalLogged) < time.Second {
		d.refusalsQuiet++
		d.mu.Unlock()
		return
	}
	quiet := d.refusalsQuiet
	d.refusalLogged, d.refusalsQuiet = now, 0
	d.mu.Unlock()
	if quiet > 0 {
		msg += fmt.Sprintf(" (and %d more refusals in the last second)", quiet)
	}
	d.log.logf("%s", msg)
}
