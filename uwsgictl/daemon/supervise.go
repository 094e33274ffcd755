package daemon

import (
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
	"golang.org/x/sys/unix"
)

// watched is a listener the daemon itself waits on: a per-app socket whose
// app has no processes (the first connection starts it), or a shared
// socket no running app accepts on.
type watched struct {
	l      *listener
	shared bool
	app    *pool.App // the per-app socket's app
}

// supervise is the daemon's loop: it waits on the watched listeners, ticks
// every app's supervision, and chooses which apps accept on shared sockets.
func (d *Daemon) supervise() {
	lastTick, lastPolicy, lastSample := time.Now(), time.Now(), time.Time{}
	for {
		select {
		case <-d.stopping:
			return
		default:
		}
		d.pruneRetired()
		ws := d.watchSet()
		fds := make([]unix.PollFd, len(ws))
		for i, w := range ws {
			fds[i] = unix.PollFd{Fd: int32(w.l.fd), Events: unix.POLLIN}
		}
		n, _ := unix.Poll(fds, int(tickEvery/time.Millisecond))
		if n > 0 {
			for i, f := range fds {
				if f.Revents&unix.POLLIN != 0 {
					d.onWatchedReady(ws[i])
				}
			}
		}
		now := time.Now()
		if now.Sub(lastTick) >= tickEvery {
			lastTick = now
			for _, a := range d.appList() {
				a.Tick()
			}
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

func (d *Daemon) watchSet() []watched {
	var ws []watched
	d.mu.Lock()
	for _, l := range d.appSockets {
		if a := d.sockApp[l]; a != nil && !a.Running() {
			ws = append(ws, watched{l: l, app: a})
		}
	}
	sharedServed := false
	for _, a := range d.apps {
		if a.Running() && a.ListensShared() {
			sharedServed = true
			break
		}
	}
	d.mu.Unlock()
	if !sharedServed {
		for _, l := range d.shared {
			ws = append(ws, watched{l: l, shared: true})
		}
	}
	return ws
}

func (d *Daemon) onWatchedReady(w watched) {
	if w.shared {
		d.acceptAndRoute(w.l, true)
		return
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
