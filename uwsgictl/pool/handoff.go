// Requests the daemon routes to an app: hand-over to its workers, the
// bounded queue while it starts.

package pool

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// Handoff gives the app a request the daemon routed here: fd is the
// connection (the app takes ownership) and prefix the bytes already read.
func (a *App) Handoff(fd int, prefix []byte, viaShared bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.routed++
	a.lastRouted = time.Now()
	// Traffic for us arrives on the shared port: let our workers take it
	// there, once we have workers (until then the daemon holds requests in
	// the bounded queue).
	if viaShared && len(a.shared) > 0 && !a.sb.listenShared() && a.cur != nil && a.cur.ready {
		a.sb.setListenShared(true)
	}
	a.ensureLocked()
	switch {
	case a.closed:
		// Closed (retired or evicted) while the request was on its way:
		// nothing will serve it here, and queueing it would hold it forever.
		a.refused++
		a.refused503++
		Respond(fd, 503)
		unix.Close(fd)
		return
	case a.cur != nil && a.cur.ready:
		if len(a.queue) == 0 && a.sendLocked(fd, prefix) {
			return
		}
	case a.state == Failed && a.next == nil:
		a.refused++
		detail := a.lastError
		if a.traceback != "" {
			detail = a.traceback
		}
		a.cfg.logf("app %s (%s): request refused with 500, the app failed to load: %s", a.ID, a.Name, detail)
		Respond(fd, 500)
		unix.Close(fd)
		return
	}
	if len(a.queue) >= a.cfg.QueueLimit {
		a.refused++
		a.refused503++
		Respond(fd, 503)
		unix.Close(fd)
		return
	}
	a.queue = append(a.queue, routed{fd, prefix, time.Now()})
}

// sendLocked passes one request to the app's workers; false when the
// handoff socket is full (the request stays with the caller).
func (a *App) sendLocked(fd int, prefix []byte) bool {
	err := unix.Sendmsg(FD(a.handoffW), prefix, unix.UnixRights(fd), nil, unix.MSG_DONTWAIT)
	if errors.Is(err, unix.EAGAIN) {
		return false
	}
	if err != nil {
		a.cfg.logf("app %s: hand a request to the workers: %v", a.ID, err)
		Respond(fd, 502)
	}
	unix.Close(fd)
	return true
}

func (a *App) flushQueueLocked() {
	for len(a.queue) > 0 && a.cur != nil && a.cur.ready {
		q := a.queue[0]
		if !a.sendLocked(q.fd, q.prefix) {
			return
		}
		a.queue = a.queue[1:]
	}
}
