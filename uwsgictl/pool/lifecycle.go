// An app's life as the operator drives it: reload, load, stop, close.

package pool

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Close stops the app's processes: gracefully (in-flight requests finish)
// or at once. Held requests get a 503.
func (a *App) Close(graceful bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	a.stopAllLocked(graceful, Stopped)
}

// Stop stops the app's processes; the next request starts them again.
func (a *App) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopAllLocked(true, Stopped)
}

// StopAndWait stops the app gracefully and waits until the workers it had
// have finished their requests and exited: until then they still accept on
// the app's own sockets, so a request sent right after a stop that returned
// at once could still meet the old code. (A request in the meantime starts
// the app afresh; that is not waited for.)
func (a *App) StopAndWait(timeout time.Duration) error {
	a.mu.Lock()
	var stopped []*generation
	for _, g := range append([]*generation{a.cur, a.next}, a.draining...) {
		if g != nil {
			stopped = append(stopped, g)
		}
	}
	a.stopAllLocked(true, Stopped)
	a.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for !a.exited(stopped) {
		if time.Now().After(deadline) {
			return fmt.Errorf("app %s: its workers still finish requests after %s", a.Name, timeout)
		}
		time.Sleep(10 * time.Millisecond) // a poll: the pool has no exit broadcast
	}
	return nil
}

func (a *App) exited(gens []*generation) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, g := range gens {
		if !g.exited {
			return false
		}
	}
	return true
}

func (a *App) stopAllLocked(graceful bool, st State) {
	for _, g := range []*generation{a.cur, a.next} {
		if g != nil {
			a.stopGenLocked(g, graceful)
		}
	}
	if !graceful {
		for _, g := range a.draining {
			a.stopGenLocked(g, false)
		}
	}
	a.cur, a.next = nil, nil
	a.state = st
	for _, q := range a.queue {
		Respond(q.fd, 503)
		unix.Close(q.fd)
		a.refused503++
	}
	a.queue = nil
	a.drainHandoffLocked(503)
	a.sb.setListenShared(false)
	for _, w := range a.waiters {
		w <- fmt.Errorf("app %s was stopped", a.Name)
	}
	a.waiters = nil
}

// drainHandoffLocked answers the requests already handed to workers that
// will not come (the app failed or stopped) with code.
func (a *App) drainHandoffLocked(code int) {
	if a.handoffR == nil {
		return // never started: nothing was handed over
	}
	buf := make([]byte, 128<<10)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		_, oobn, _, _, err := unix.Recvmsg(FD(a.handoffR), buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			fds, _ := unix.ParseUnixRights(&m)
			for _, fd := range fds {
				Respond(fd, code)
				unix.Close(fd)
				if code == 503 {
					a.refused503++
				}
			}
		}
	}
}

// SetConfig gives the app new settings (its environment, its pool
// limits): its next generation starts with them, and the limits the daemon
// enforces (workers, harakiri, idle) apply from now. It reports false,
// changing nothing, when cfg wants more workers than the app's scoreboard
// has room for: a new pool must take the app over.
func (a *App) SetConfig(cfg *Config) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if 2*cfg.Processes > a.sb.n {
		return false
	}
	a.cfg = cfg
	return true
}

// Config is the app's current settings.
func (a *App) Config() *Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// Reload starts a new generation with the app's current code; it takes
// over once it imported, and the old one drains. If the import fails the
// old generation keeps serving.
func (a *App) Reload() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	if a.next != nil {
		a.stopGenLocked(a.next, false)
		a.next = nil
	}
	a.retryAt = time.Time{}
	a.startGenLocked()
}

// ReloadAndWait reloads the app and waits until the new code serves, or
// returns why it could not (the old code then keeps serving).
func (a *App) ReloadAndWait(timeout time.Duration) error {
	w := make(chan error, 1)
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return fmt.Errorf("app %s: the daemon is stopping", a.Name)
	}
	a.waiters = append(a.waiters, w)
	a.mu.Unlock()
	a.Reload()
	deadline := time.After(timeout)
	select {
	case err := <-w:
		if err != nil {
			return err
		}
	case <-deadline:
		return fmt.Errorf("app %s: new code not ready after %s", a.Name, timeout)
	}
	// Imported is not yet serving: wait until a new worker runs and the old
	// generation has drained, so every request from now on gets new code.
	for !a.settled() {
		select {
		case <-deadline:
			return fmt.Errorf("app %s: the old code still serves after %s", a.Name, timeout)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// settled reports whether only the current generation runs, with at least
// one worker up.
func (a *App) settled() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil || len(a.draining) > 0 {
		return false
	}
	for _, s := range a.slots {
		if s.gen == a.cur && s.pid > 0 && !s.spawning {
			return true
		}
	}
	return false
}

// Load starts the app if needed and waits until it has imported.
func (a *App) Load(timeout time.Duration) error {
	a.mu.Lock()
	if a.state == Ready && a.next == nil {
		a.mu.Unlock()
		return nil
	}
	if a.state == Failed {
		a.failedAt = time.Time{} // an explicit load always retries
	}
	a.ensureLocked()
	if a.next == nil && a.cur == nil {
		err := &LoadError{App: a.Name, Msg: a.lastError, Traceback: a.traceback}
		a.mu.Unlock()
		return err
	}
	w := make(chan error, 1)
	a.waiters = append(a.waiters, w)
	a.mu.Unlock()
	select {
	case err := <-w:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("app %s: not ready after %s", a.Name, timeout)
	}
}

// Done reports whether every process of the app has exited.
func (a *App) Done() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur == nil && a.next == nil && len(a.draining) == 0
}

// Activity is when the app last had work (a request routed to it or
// served by a worker, or its start) and whether it has work now: a busy
// worker or a request waiting for one.
func (a *App) Activity() (last time.Time, busy bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	last = a.started
	if a.lastRouted.After(last) {
		last = a.lastRouted
	}
	for i, s := range a.slots {
		if s.gen == nil {
			continue
		}
		st := a.sb.slot(i)
		if t := time.UnixMilli(int64(st.LastUnixMS)); st.LastUnixMS != 0 && t.After(last) {
			last = t
		}
		busy = busy || st.State == stateBusy || s.spawning
	}
	return last, busy || a.pendingLocked(true)
}

// Release frees what a closed app holds once its processes are gone: the
// scoreboard's memory and descriptor and the handoff socket. It reports
// whether it did; the app answers Stats (all zero) afterwards.
func (a *App) Release() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.released || !a.closed || a.cur != nil || a.next != nil || len(a.draining) > 0 {
		return a.released
	}
	a.dropResourcesLocked() // the scoreboard last: once the mapping is gone, so is everything else (what the tests watch)
	a.released = true
	return true
}
