package pool

import (
	"time"

	"golang.org/x/sys/unix"
)

// Tick supervises the app; the daemon calls it every few tens of
// milliseconds. It adds a worker when all are busy and work waits, kills a
// worker stuck past --harakiri, stops the app after --idle, and retries
// held requests. It reads only shared memory and polls with no timeout.
func (a *App) Tick() {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.cur
	if g == nil || !g.ready {
		return
	}
	a.flushQueueLocked()
	live, busy, spawning := 0, 0, 0
	var newest, own, forwarded uint64
	for i, s := range a.slots {
		if s.gen == nil {
			continue
		}
		st := a.sb.slot(i)
		if st.LastUnixMS > newest {
			newest = st.LastUnixMS
		}
		if s.gen != g {
			continue
		}
		live++
		own += st.Requests
		forwarded += st.Forwarded
		if s.spawning {
			spawning++
			continue
		}
		if st.State == stateBusy && st.StartNS != 0 {
			busy++
			if a.cfg.Harakiri > 0 && !s.harakiri && nsSince(st.StartNS) > a.cfg.Harakiri && s.pid > 0 {
				a.harakiris++
				a.slots[i].harakiri = true
				a.cfg.logf("*** HARAKIRI ON app %s (%s) worker pid %d: one request ran for more than %s; killed ***",
					a.ID, a.Name, s.pid, a.cfg.Harakiri)
				s.gen.z.killWorker(s.pid)
			}
		}
	}
	// Connections waiting on a shared socket are a reason to add a worker
	// only when most of what this app takes from it is its own: workers
	// busy handing other apps' requests to the daemon are no sign that
	// this app needs more of them. Clearly most: when another app's burst
	// begins, a quiet app's one worker has answered its own request or two
	// and forwarded none yet, and "no fewer own than forwarded" let it grow
	// (seen in CI).
	sharedCounts := own > 2*forwarded+1
	if spawning == 0 && live < a.cfg.Processes && (live == 0 || busy >= live) && (live == 0 || a.pendingLocked(sharedCounts)) {
		a.spawnLocked(g)
	}
	if a.cfg.Idle > 0 && busy == 0 && len(a.queue) == 0 {
		last := a.lastRouted
		if t := time.UnixMilli(int64(newest)); t.After(last) {
			last = t
		}
		if a.started.After(last) {
			last = a.started
		}
		if time.Since(last) > a.cfg.Idle && !a.pendingLocked(true) {
			a.cfg.logf("app %s (%s): no request for %s, stopping its processes (--idle)", a.ID, a.Name, a.cfg.Idle)
			a.stopAllLocked(true, IdleStopped)
		}
	}
}

// pendingLocked reports whether requests wait for this app's workers: on
// its own sockets, in the handoff socket, or held by the daemon.
func (a *App) pendingLocked(includeShared bool) bool {
	if len(a.queue) > 0 {
		return true
	}
	fds := make([]unix.PollFd, 0, 1+len(a.own)+len(a.shared))
	if a.handoffR != nil {
		fds = append(fds, unix.PollFd{Fd: int32(FD(a.handoffR)), Events: unix.POLLIN})
	}
	for _, f := range a.own {
		fds = append(fds, unix.PollFd{Fd: int32(FD(f)), Events: unix.POLLIN})
	}
	if includeShared && a.sb.listenShared() {
		for _, f := range a.shared {
			fds = append(fds, unix.PollFd{Fd: int32(FD(f)), Events: unix.POLLIN})
		}
	}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

// SharedActivity is when the app last served a request of its own that
// came through a shared socket (monotonic ns), for the daemon's choice of
// which apps accept on shared sockets.
func (a *App) SharedActivity() uint64 { return a.sb.lastOwnShared() }

// SetListenShared tells the app's workers whether to accept on the shared
// vhost sockets.
func (a *App) SetListenShared(on bool) { a.sb.setListenShared(on) }

// Serving reports whether the app has a generation that imported and
// serves (not merely one that is starting).
func (a *App) Serving() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur != nil && a.cur.ready
}

// ListensShared reports whether the app's workers accept on shared sockets.
func (a *App) ListensShared() bool { return len(a.shared) > 0 && a.sb.listenShared() }

// LastRouted is when the daemon last routed a request to the app.
func (a *App) LastRouted() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastRouted
}
