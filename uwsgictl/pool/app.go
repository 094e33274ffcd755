package pool

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// State is where an app is in its life.
type State string

const (
	Cold        State = "cold"         // never started
	Starting    State = "starting"     // zygote importing the app
	Ready       State = "ready"        // serving
	Failed      State = "failed"       // the last import failed
	IdleStopped State = "idle-stopped" // stopped after --idle seconds without requests
	Stopped     State = "stopped"      // stopped by the operator or shutdown
)

// retryFailedAfter is how soon a request to a failed app tries the import
// again: fixed code starts serving without a daemon restart, broken code
// is not re-imported for every request.
const retryFailedAfter = time.Second

// crash-loop detection: this many crashes within the window means the app
// is restarted only after a growing backoff.
const (
	crashLoopCount  = 5
	crashLoopWindow = 10 * time.Second
	maxBackoff      = 30 * time.Second
)

// App is one WSGI app's processes: a zygote per generation (two while a
// reload overlaps) and its workers.
type App struct {
	Key  Key
	ID   string
	Num  int    // small number for log lines ("app: N")
	Name string // the nginx server_name and mount that declare it, else the key

	cfg    *Config
	start  startFunc  // starts a generation's zygote (startZygote; a fake in tests)
	own    []*os.File // listening sockets only this app's workers accept on
	shared []*os.File // the shared vhost sockets
	sb     *scoreboard

	// Requests the daemon routes here: every worker reads handoffR; the
	// daemon writes handoffW and polls its own handoffR for a backlog.
	handoffR, handoffW *os.File

	mu        sync.Mutex
	state     State
	cur       *generation   // the generation that takes new work
	next      *generation   // a reload's new generation while it imports
	draining  []*generation // old generations finishing their requests
	genSeq    int
	slots     []slot
	queue     []routed // requests held while the app starts
	iface     string   // what its last ready generation said it is: "wsgi" or "asgi"
	path      string   // its last ready generation's request path: "C" or "python"
	lastError string
	traceback string
	failedAt  time.Time
	crashes   []time.Time
	backoff   time.Duration
	retryAt   time.Time
	waiters   []chan error

	started    time.Time
	lastRouted time.Time
	respawns   int
	harakiris  int
	routed     uint64
	refused    uint64
	refused503 uint64 // of them, answered 503 (queue full, the app closing)
	closed     bool
	released   bool // Release freed its scoreboard and handoff socket
	old        retired
}

type slot struct {
	gen      *generation
	pid      int
	spawning bool
	harakiri bool // killed for harakiri: its exit is not a crash
}

type generation struct {
	n        int
	z        process
	ready    bool
	stopping bool
	exited   bool
	failed   bool // its zygote reported an import failure
	killed   bool // stopped at once: its processes were sent SIGKILL
}

type routed struct {
	fd     int
	prefix []byte
	at     time.Time
}

// New sets up an app's pool without starting any process.
// The scoreboard's shared memory and the handoff socket come with the first
// start (resourcesLocked): a site never visited holds no descriptor but its
// listening socket, so 10,000 of them fit the process's open-file limit.
func New(cfg *Config, key Key, num int, name string, own, shared []*os.File) (*App, error) {
	sb := newScoreboard(2 * cfg.Processes) // room for a reload's overlap
	if name == "" {
		name = key.String()
	}
	a := &App{
		Key: key, ID: key.ID(), Num: num, Name: name,
		cfg: cfg, own: own, shared: shared, sb: sb,
		state: Cold,
		slots: make([]slot, sb.n),
	}
	a.start = a.startZygote
	return a, nil
}

// resourcesLocked makes what the app's processes share with the daemon,
// once: the scoreboard in shared memory and the handoff socket.
func (a *App) resourcesLocked() error {
	if err := a.sb.share(); err != nil {
		return err
	}
	if a.handoffR != nil {
		return nil
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("handoff socket: %w", err)
	}
	// Large buffers: the handoff socket is where routed requests queue.
	for _, fd := range pair {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	a.handoffR, a.handoffW = SharedFile(pair[1], "handoff-r"), SharedFile(pair[0], "handoff-w")
	return nil
}

// State returns the app's state.
func (a *App) State() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// OwnSockets are the listening sockets only this app serves.
func (a *App) OwnSockets() []*os.File { return a.own }

// SharedSockets are the shared vhost sockets this app's workers accept on.
func (a *App) SharedSockets() []*os.File { return a.shared }

// Running reports whether the app has a generation that serves or imports.
func (a *App) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur != nil || a.next != nil
}

// Ensure starts the app if it is not running (cold, idle-stopped, or failed
// long enough ago to try the import again).
func (a *App) Ensure() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ensureLocked()
}

func (a *App) ensureLocked() {
	if a.closed || a.cur != nil || a.next != nil {
		return
	}
	now := time.Now()
	if now.Before(a.retryAt) {
		return
	}
	if a.state == Failed && now.Sub(a.failedAt) < retryFailedAfter {
		return
	}
	a.startGenLocked()
}

// startGenLocked starts a new generation; it becomes current when its
// import succeeds.
func (a *App) startGenLocked() {
	a.genSeq++
	g := &generation{n: a.genSeq}
	if err := a.resourcesLocked(); err != nil {
		a.failLocked(g, err.Error(), "")
		return
	}
	z, err := a.start(
		func(ev event) { a.onEvent(g, ev) },
		func(err error) { a.onZygoteExit(g, err) },
	)
	if err != nil {
		a.failLocked(g, err.Error(), "")
		return
	}
	g.z = z
	a.next = g
	if a.cur == nil {
		a.state = Starting
		a.started = time.Now()
	}
	a.cfg.logf("app %s (%s): starting generation %d, zygote pid %d", a.ID, a.Name, g.n, z.pid())
}

func (a *App) onEvent(g *generation, ev event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch ev.Ev {
	case "ready":
		if ev.Interface != "" {
			a.iface = ev.Interface
		}
		if a.next == g {
			a.path = map[bool]string{true: "C", false: "python"}[ev.Speedups]
		}
		a.onReadyLocked(g)
	case "failed":
		g.failed = true
		a.failLocked(g, ev.Error, ev.Traceback)
	case "spawned":
		if ev.Slot >= 0 && ev.Slot < len(a.slots) && a.slots[ev.Slot].gen == g {
			a.slots[ev.Slot].pid = ev.PID
			a.slots[ev.Slot].spawning = false
		}
	case "exited":
		a.onWorkerExitLocked(g, ev)
	}
}

// pathName is how the log names the app's request path.
func (a *App) pathName() string {
	if a.path == "python" {
		return "pure-Python request path"
	}
	return "C request path"
}

func (a *App) onReadyLocked(g *generation) {
	if a.next != g {
		return
	}
	g.ready = true
	a.next = nil
	if old := a.cur; old != nil {
		a.stopGenLocked(old, true)
		a.cfg.logf("app %s (%s): generation %d ready (%s), draining generation %d", a.ID, a.Name, g.n, a.pathName(), old.n)
	} else {
		a.cfg.logf("app %s (%s): ready in %d ms (%s)", a.ID, a.Name, time.Since(a.started).Milliseconds(), a.pathName())
	}
	a.cur = g
	a.state = Ready
	a.lastError, a.traceback = "", ""
	a.spawnLocked(g)
	if a.cfg.AppReady != nil {
		a.cfg.AppReady(a)
	}
	for _, w := range a.waiters {
		w <- nil
	}
	a.waiters = nil
	a.flushQueueLocked()
}

// failLocked records an import failure. A failed reload keeps the old
// generation serving.
func (a *App) failLocked(g *generation, msg, tb string) {
	if a.next == g {
		a.next = nil
	}
	a.lastError, a.traceback = msg, tb
	a.failedAt = time.Now()
	detail := msg
	if tb != "" {
		detail = tb
	}
	if a.cur != nil {
		a.cfg.logf("app %s (%s): reload failed, still serving generation %d: %s", a.ID, a.Name, a.cur.n, detail)
	} else {
		a.state = Failed
		a.cfg.logf("app %s (%s): failed to load: %s", a.ID, a.Name, detail)
		for _, q := range a.queue {
			Respond(q.fd, 500)
			unix.Close(q.fd)
		}
		a.queue = nil
		a.drainHandoffLocked(500)
	}
	err := &LoadError{App: a.Name, Msg: msg, Traceback: tb}
	for _, w := range a.waiters {
		w <- err
	}
	a.waiters = nil
}

// LoadError is an app that failed to import, with Python's traceback.
type LoadError struct{ App, Msg, Traceback string }

func (e *LoadError) Error() string { return fmt.Sprintf("app %s failed to load: %s", e.App, e.Msg) }

func (a *App) onZygoteExit(g *generation, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g.exited = true
	for i := range a.slots {
		if a.slots[i].gen == g {
			a.slots[i] = slot{}
			a.retireSlotLocked(i)
		}
	}
	// slices.Delete clears the slot it frees: an append over it left the
	// last generation in the backing array, and with it its zygote's
	// exec.Cmd (its environment, its files) — 2.8 KB for every site that
	// ever ran, 28 MB at 10,000
	if i := slices.Index(a.draining, g); i >= 0 {
		a.draining = slices.Delete(a.draining, i, i+1)
	}
	switch {
	case a.next == g:
		if !g.failed { // a reported failure is already recorded
			a.failLocked(g, fmt.Sprintf("the app's python exited before it was ready (%v)", err), "")
		}
	case a.cur == g:
		a.cur = nil
		if !g.stopping && !a.closed {
			a.state = Cold
			a.cfg.logf("app %s (%s): zygote exited unexpectedly (%v); it restarts on the next request", a.ID, a.Name, err)
		}
	}
	a.idleResourcesLocked()
}

// idleResourcesLocked gives back, once no process of the app is left,
// what its processes shared with the daemon (the scoreboard's shared
// memory, the handoff socket: their counters are the app's own by now), so
// a site visited once and stopped idle holds one descriptor again; the next
// start makes them anew. A request still in the handoff socket keeps it.
func (a *App) idleResourcesLocked() {
	if a.closed || a.cur != nil || a.next != nil || len(a.draining) > 0 || a.handoffR == nil {
		return // a closed app is Release's
	}
	p := []unix.PollFd{{Fd: int32(FD(a.handoffR)), Events: unix.POLLIN}}
	if n, err := unix.Poll(p, 0); err != nil || n > 0 {
		return
	}
	a.dropResourcesLocked()
}

// dropResourcesLocked closes the handoff socket and gives back the
// scoreboard's shared memory (readers then see zeros).
func (a *App) dropResourcesLocked() {
	if a.handoffR != nil {
		a.handoffR.Close()
		a.handoffW.Close()
		a.handoffR, a.handoffW = nil, nil
	}
	a.sb.release()
}

// stopGenLocked stops a generation: gracefully (workers finish their
// requests) or at once.
func (a *App) stopGenLocked(g *generation, graceful bool) {
	if (g.stopping && graceful) || g.killed {
		return
	}
	first := !g.stopping
	g.stopping = true
	if g.exited || g.z == nil {
		return
	}
	if first {
		a.draining = append(a.draining, g)
	}
	if graceful {
		g.z.stop()
		return
	}
	g.killed = true
	var workers []int
	for _, s := range a.slots {
		if s.gen == g && s.pid > 0 {
			workers = append(workers, s.pid)
		}
	}
	g.z.kill(workers)
}
