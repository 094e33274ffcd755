package daemon

import (
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// watched is a listener the daemon itself waits on: a per-app socket whose
// app has no processes (the first connection starts it), or a shared
// socket no running app accepts on.
type watched struct {
	l      *listener
	shared bool
	app    *pool.App // the per-app socket's app
}

// supervisor is the supervise loop's own state.
type supervisor struct {
	w       *watcher
	version int                // d.sockVersion last looked at
	seen    map[*listener]bool // every listener handed to the watcher; true: a shared one
	idle    map[*listener]bool // not armed (new, fired, or its app runs); true: a shared one
	active  map[*pool.App]bool // apps ready since they last stopped: the ones a tick concerns
}

// supervise is the daemon's loop: it waits on the watched listeners, ticks
// the running apps' supervision, and chooses which apps accept on shared
// sockets. What it does per tick grows with the apps that run, not with
// the sites declared.
func (d *Daemon) supervise(w *watcher) {
	defer w.close()
	s := &supervisor{w: w, version: -1, seen: map[*listener]bool{}, idle: map[*listener]bool{}, active: map[*pool.App]bool{}}
	lastTick, lastPolicy, lastSample := time.Now(), time.Now(), time.Time{}
	for {
		select {
		case <-d.stopping:
			return
		default:
		}
		d.pruneRetired(s.forget)
		d.rearm(s)
		for _, l := range w.wait(tickEvery) {
			s.idle[l] = s.seen[l] // disarmed until rearm
			d.onWatchedReady(d.watchedOf(l, s.seen[l]))
		}
		now := time.Now()
		if now.Sub(lastTick) >= tickEvery {
			lastTick = now
			d.tickActive(s)
		}
		if now.Sub(lastPolicy) >= sharedPolicyEvery {
			lastPolicy = now
			d.sharedPolicy()
		}
		if now.Sub(lastSample) >= time.Second {
			lastSample = now
			var total uint64
			for _, a := range d.appList() {
				served, _ := a.Traffic()
				total += served
			}
			d.rate.sample(total)
		}
	}
}

// forget drops a listener about to be closed.
func (s *supervisor) forget(l *listener) {
	s.w.forget(l)
	delete(s.seen, l)
	delete(s.idle, l)
}

// rearm hands new listeners to the watcher and arms again those that
// should be watched: a per-app socket whose app has no processes (its
// first connection starts it), a shared socket no running app accepts on.
func (d *Daemon) rearm(s *supervisor) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s.version != d.sockVersion { // sockets came or went: a re-read of the config
		s.version = d.sockVersion
		for _, l := range d.appSockets {
			if _, ok := s.seen[l]; !ok {
				s.seen[l], s.idle[l] = false, false
			}
		}
		for _, l := range d.shared {
			if _, ok := s.seen[l]; !ok {
				s.seen[l], s.idle[l] = true, true
			}
		}
	}
	sharedServed := false
	if len(d.shared) > 0 {
		for a := range s.active {
			if a.Running() && a.ListensShared() {
				sharedServed = true
				break
			}
		}
	}
	for l, shared := range s.idle {
		watch := !sharedServed
		if !shared {
			a := d.sockApp[l]
			watch = a != nil && !a.Running()
		}
		if watch {
			if err := s.w.arm(l); err != nil {
				d.log.logf("%v", err)
				continue
			}
			delete(s.idle, l)
		}
	}
}

// watchedOf is the watched listener l, whose app may have changed since.
func (d *Daemon) watchedOf(l *listener, shared bool) watched {
	if shared {
		return watched{l: l, shared: true}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return watched{l: l, app: d.sockApp[l]}
}

// tickActive ticks every app that is ready, and forgets those that have
// stopped (their next start makes them ready again: noteReady).
func (d *Daemon) tickActive(s *supervisor) {
	d.readyMu.Lock()
	for _, a := range d.readied {
		s.active[a] = true
	}
	d.readied = d.readied[:0]
	d.readyMu.Unlock()
	for a := range s.active {
		a.Tick()
		if !a.Running() {
			delete(s.active, a)
		}
	}
}

// noteReady is told of each app (or new generation) that is ready to
// serve, under the app's lock: it must not block.
func (d *Daemon) noteReady(a *pool.App) {
	d.readyMu.Lock()
	d.readied = append(d.readied, a)
	d.readyMu.Unlock()
	releaseWhenQuiet.poke()
}

func (d *Daemon) onWatchedReady(w watched) {
	if w.shared {
		d.acceptAndRoute(w.l, true)
		return
	}
	if w.app == nil {
		return // its socket left the config since it was armed: pruneRetired closes it
	}
	// A cold app's own socket: start the app; its workers will accept what
	// waits. A failed app cannot: the daemon answers for it.
	w.app.Ensure()
	if !w.app.Running() {
		d.acceptAndRoute(w.l, false)
	}
}

// sharedPolicy picks the apps whose workers accept on the shared sockets.
// A worker that accepts a request for another app must hand it over
// through the daemon, which costs more than the request itself, so an app
// whose workers lately only handed requests over stops accepting there
// (its own requests then reach it through the daemon, which turns it back
// on), and an app that got none of its own for a while stops too. At least
// one running app always listens, or the daemon accepts itself.
func (d *Daemon) sharedPolicy() {
	if len(d.shared) == 0 {
		return
	}
	var best *pool.App
	var bestAt uint64
	anyOn := false
	seen := map[*pool.App]bool{}
	for _, a := range d.appList() {
		seen[a] = true
		if !a.Serving() || len(a.OwnSockets()) > 0 {
			continue
		}
		served, forwarded := a.Traffic()
		last := d.traffic[a]
		d.traffic[a] = [2]uint64{served, forwarded}
		ownNow, fwdNow := served-last[0], forwarded-last[1]
		at := a.SharedActivity()
		quiet := (at == 0 || time.Duration(pool.MonotonicNS()-at) >= sharedQuietAfter) && time.Since(a.LastRouted()) >= sharedQuietAfter
		on := a.ListensShared()
		switch {
		case ownNow > 0 && ownNow >= fwdNow:
			on = true
		case fwdNow > ownNow:
			on = false // mostly other apps' requests: let them go to their own workers
		case quiet:
			on = false
		}
		if on != a.ListensShared() {
			a.SetListenShared(on)
		}
		anyOn = anyOn || on
		if best == nil || at > bestAt {
			best, bestAt = a, at
		}
	}
	for a := range d.traffic {
		if !seen[a] {
			delete(d.traffic, a)
		}
	}
	if !anyOn && best != nil {
		best.SetListenShared(true)
	}
}
