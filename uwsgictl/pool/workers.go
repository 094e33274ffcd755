// A generation's workers: forking them, why one exited (its last word in
// its slot), what that means for its generation, and the crash-loop
// backoff.

package pool

import (
	"fmt"
	"syscall"
	"time"
)

// onWorkerExitLocked handles a worker's exit. Why it exited is the
// worker's last word in its slot (protocol.go's states), never its exit
// status, which belongs to the app's code: ST_DONE is a planned exit
// (recycled, told to stop), ST_IMPORT_FAILED a --lazy-apps import failure;
// anything else is a crash, logged with its cause.
func (a *App) onWorkerExitLocked(g *generation, ev event) {
	if ev.Slot < 0 || ev.Slot >= len(a.slots) || a.slots[ev.Slot].gen != g {
		return
	}
	s := a.slots[ev.Slot]
	last := a.sb.slot(ev.Slot)
	a.slots[ev.Slot] = slot{}
	a.retireSlotLocked(ev.Slot)
	ws := syscall.WaitStatus(ev.Status)
	switch {
	case g.stopping || a.closed:
		return
	case s.harakiri:
		a.respawnLocked(g)
	case last.State == stateDone && ws.Exited() && ws.ExitStatus() == 0:
		a.respawnLocked(g) // recycled after -R requests
	case last.State == stateImportFailed && a.liveLocked(g) == 0:
		// --lazy-apps: the import failed in the worker (its traceback is in
		// the log) and no worker of this generation serves: fail the app.
		if a.cur == g {
			a.stopGenLocked(g, true)
			a.cur = nil
		}
		a.failLocked(g, "the app failed to import in a worker (--lazy-apps); see the log", "")
	case last.State == stateImportFailed:
		// Others still serve: an import that failed once will fail again,
		// so no respawn; Tick adds a worker if the load asks for one.
		a.cfg.logf("app %s (%s): worker pid %d could not import the app (--lazy-apps; see the log above); %d of its workers still serve",
			a.ID, a.Name, s.pid, a.liveLocked(g))
	default:
		a.onCrashLocked(g, s.pid, deathCause(ws, last))
	}
}

// deathCause says how a worker died and what it was doing.
func deathCause(ws syscall.WaitStatus, last slotStats) string {
	how := fmt.Sprintf("exit status %d", ws.ExitStatus())
	if ws.Signaled() {
		how = "signal " + ws.Signal().String()
	}
	switch last.State {
	case stateBusy:
		if last.Request != "" {
			return fmt.Sprintf("%s while serving %q", how, last.Request)
		}
		return how + " while reading a request"
	case stateImportFailed:
		return how + ", its import failed (--lazy-apps)"
	case stateDone:
		return how + " after it was done"
	}
	return how + " between requests"
}

// onCrashLocked respawns a crashed worker, after a growing backoff once
// the app crashes in a loop.
func (a *App) onCrashLocked(g *generation, pid int, cause string) {
	now := time.Now()
	a.crashes = append(a.crashes, now)
	for len(a.crashes) > 0 && now.Sub(a.crashes[0]) > crashLoopWindow {
		a.crashes = a.crashes[1:]
	}
	if len(a.crashes) >= crashLoopCount {
		if a.backoff == 0 {
			a.backoff = time.Second
		} else if a.backoff < maxBackoff {
			a.backoff *= 2
		}
		a.retryAt = now.Add(a.backoff)
		a.cfg.logf("app %s (%s): worker pid %d died (%s): crash loop (%d crashes in %s), next worker in %s",
			a.ID, a.Name, pid, cause, len(a.crashes), crashLoopWindow, a.backoff)
		return
	}
	a.cfg.logf("app %s (%s): worker pid %d died (%s), respawning", a.ID, a.Name, pid, cause)
	a.respawnLocked(g)
}

// liveLocked counts a generation's workers, running or being forked.
func (a *App) liveLocked(g *generation) int {
	n := 0
	for _, s := range a.slots {
		if s.gen == g {
			n++
		}
	}
	return n
}

func (a *App) respawnLocked(g *generation) {
	if a.cur != g || g.stopping {
		return
	}
	a.respawns++
	a.spawnLocked(g)
}

// spawnLocked asks a generation's zygote for one more worker, if a slot is
// free and the app has fewer than -p workers.
func (a *App) spawnLocked(g *generation) {
	if g == nil || !g.ready || g.stopping || time.Now().Before(a.retryAt) {
		return
	}
	live := 0
	free := -1
	for i, s := range a.slots {
		if s.gen == g {
			live++
		} else if s.gen == nil && free < 0 {
			free = i
		}
	}
	if live >= a.cfg.Processes || free < 0 {
		return
	}
	a.sb.clearSlot(free)
	a.slots[free] = slot{gen: g, spawning: true}
	if err := g.z.spawn(free); err != nil {
		a.slots[free] = slot{}
		a.cfg.logf("app %s: %v", a.ID, err)
	}
}
