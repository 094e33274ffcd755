package pool

// The pool's state machine alone: generations, crash-loop backoff,
// harakiri, recycling, failed imports and reloads, driven by events fed
// to a fake zygote (the end-to-end suites run the real one).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeProc is a generation's zygote that records what the pool asked of it.
type fakeProc struct {
	n       int
	calls   []string
	onEvent func(event)
	onExit  func(error)
}

func (p *fakeProc) pid() int { return 1000 * p.n }
func (p *fakeProc) spawn(slot int) error {
	p.calls = append(p.calls, fmt.Sprint("spawn ", slot))
	return nil
}
func (p *fakeProc) stop()              { p.calls = append(p.calls, "stop") }
func (p *fakeProc) kill(w []int)       { p.calls = append(p.calls, fmt.Sprint("kill ", w)) }
func (p *fakeProc) killWorker(pid int) { p.calls = append(p.calls, fmt.Sprint("killWorker ", pid)) }

// rig is an App whose zygotes are fakes, with its log.
type rig struct {
	t     *testing.T
	a     *App
	procs []*fakeProc
	fail  error // the next start fails with it
	mu    sync.Mutex
	log   []string
}

func newRig(t *testing.T, cfg Config) *rig { t.Helper(); return newRigOn(t, cfg, nil) }

// newRigOn is a rig whose app also accepts on the shared sockets.
func newRigOn(t *testing.T, cfg Config, shared []*os.File) *rig {
	t.Helper()
	r := &rig{t: t}
	if cfg.Processes == 0 {
		cfg.Processes = 2
	}
	cfg.QueueLimit = 10
	cfg.Logf = func(f string, args ...any) {
		r.mu.Lock()
		r.log = append(r.log, fmt.Sprintf(f, args...))
		r.mu.Unlock()
	}
	a, err := New(&cfg, Key{Chdir: "/srv/app", Script: "app"}, 1, "app.test", nil, shared)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(false); a.Release() })
	a.start = func(onEvent func(event), onExit func(error)) (process, error) {
		if err := r.fail; err != nil {
			r.fail = nil
			return nil, err
		}
		p := &fakeProc{n: len(r.procs) + 1, onEvent: onEvent, onExit: onExit}
		r.procs = append(r.procs, p)
		return p, nil
	}
	r.a = a
	return r
}

// gen is the fake zygote of generation n (1-based).
func (r *rig) gen(n int) *fakeProc {
	r.t.Helper()
	if n > len(r.procs) {
		r.t.Fatalf("generation %d was never started (%d were)", n, len(r.procs))
	}
	return r.procs[n-1]
}

// ready starts the app and reports its first worker up in slot 0.
func (r *rig) ready() {
	r.a.Ensure()
	r.gen(1).onEvent(event{Ev: "ready"})
	r.gen(1).onEvent(event{Ev: "spawned", Slot: 0, PID: 101})
}

// slotState writes what a worker writes in its slot.
func (r *rig) slotState(i int, state uint32, start uint64, req string) {
	base := appHeaderSize + i*slotSize
	sb := r.a.sb
	atomic.StoreUint32(sb.u32(base+slotState), state)
	atomic.StoreUint64(sb.u64(base+slotStart), start)
	var name [reqLen]byte
	copy(name[:], req)
	for w := 0; w < reqLen; w += 8 {
		atomic.StoreUint64(sb.u64(base+reqOffset+w), binary.NativeEndian.Uint64(name[w:]))
	}
}

func (r *rig) logged(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.log {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func (r *rig) wantCalls(n int, want ...string) {
	r.t.Helper()
	if got := strings.Join(r.gen(n).calls, ", "); got != strings.Join(want, ", ") {
		r.t.Errorf("generation %d was asked: %q, want %q", n, got, strings.Join(want, ", "))
	}
}

func (r *rig) wantState(s State) {
	r.t.Helper()
	if got := r.a.State(); got != s {
		r.t.Errorf("state %s, want %s\nlog:\n%s", got, s, strings.Join(r.log, "\n"))
	}
}

// waitFor polls cond until it holds (a minute at most).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("condition not met in a minute")
		}
	}
}

func exited(code int) int             { return code << 8 }
func killedBy(sig syscall.Signal) int { return int(sig) }

func TestStateMachine(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		run  func(r *rig)
	}{
		{"ready spawns the first worker", Config{}, func(r *rig) {
			r.ready()
			r.wantState(Ready)
			r.wantCalls(1, "spawn 0")
		}},
		{"a recycled worker (done, status 0) is replaced, not logged as a crash", Config{}, func(r *rig) {
			r.ready()
			r.slotState(0, stateDone, 0, "")
			r.gen(1).onEvent(event{Ev: "exited", Slot: 0, PID: 101, Status: exited(0)})
			r.wantCalls(1, "spawn 0", "spawn 0")
			if r.logged("died") {
				t.Errorf("a recycled worker was logged as dying: %v", r.log)
			}
		}},
		{"exit status 3 mid-request is a crash of that worker only", Config{}, func(r *rig) {
			r.ready()
			r.slotState(0, stateBusy, 1, "GET /exit/3")
			r.gen(1).onEvent(event{Ev: "exited", Slot: 0, PID: 101, Status: exited(3)})
			r.wantState(Ready)
			r.wantCalls(1, "spawn 0", "spawn 0")
			if !r.logged(`worker pid 101 died (exit status 3 while serving "GET /exit/3"), respawning`) {
				t.Errorf("log: %v", r.log)
			}
		}},
		{"a signal between requests is named", Config{}, func(r *rig) {
			r.ready()
			r.slotState(0, stateIdle, 0, "")
			r.gen(1).onEvent(event{Ev: "exited", Slot: 0, PID: 101, Status: killedBy(syscall.SIGSEGV)})
			if !r.logged("died (signal segmentation fault between requests)") {
				t.Errorf("log: %v", r.log)
			}
		}},
		{"five crashes in the window back off instead of respawning", Config{}, func(r *rig) {
			r.ready()
			for i := 0; i < crashLoopCount; i++ {
				r.slotState(0, stateIdle, 0, "")
				r.gen(1).onEvent(event{Ev: "exited", Slot: 0, PID: 101 + i, Status: killedBy(syscall.SIGKILL)})
				if i < crashLoopCount-1 {
					r.gen(1).onEvent(event{Ev: "spawned", Slot: 0, PID: 102 + i})
				}
			}
			calls := r.gen(1).calls
			if len(calls) != crashLoopCount { // the first spawn and one per crash but the last
				t.Errorf("spawns %v, want %d: no respawn after the crash that makes the loop", calls, crashLoopCount)
			}
			if !r.logged("crash loop (5 crashes in 10s), next worker in 1s") {
				t.Errorf("log: %v", r.log)
			}
			r.a.Tick() // within the backoff: still no worker
			if len(r.gen(1).calls) != crashLoopCount {
				t.Errorf("Tick spawned within the backoff: %v", r.gen(1).calls)
			}
		}},
		{"a lazy import failure fails the app only when no worker is left", Config{Lazy: true, Processes: 2}, func(r *rig) {
			r.ready()
			r.a.mu.Lock()
			r.a.spawnLocked(r.a.cur) // a second worker, as Tick would add under load
			r.a.mu.Unlock()
			r.gen(1).onEvent(event{Ev: "spawned", Slot: 1, PID: 102})
			r.slotState(0, stateImportFailed, 0, "")
			r.gen(1).onEvent(event{Ev: "exited", Slot: 0, PID: 101, Status: exited(1)})
			r.wantState(Ready) // slot 1 still serves
			r.slotState(1, stateImportFailed, 0, "")
			r.gen(1).onEvent(event{Ev: "exited", Slot: 1, PID: 102, Status: exited(1)})
			r.wantState(Failed)
			if calls := r.gen(1).calls; calls[len(calls)-1] != "stop" {
				t.Errorf("the failed generation was not stopped gracefully: %v", calls)
			}
		}},
		{"a reload drains the old generation once the new one is ready", Config{}, func(r *rig) {
			r.ready()
			r.a.Reload()
			r.wantCalls(1, "spawn 0")
			r.gen(2).onEvent(event{Ev: "ready"})
			r.wantCalls(1, "spawn 0", "stop")
			r.wantCalls(2, "spawn 1") // slot 0 is still the old worker's
			if st := r.a.Stats(); st.Generation != 2 {
				t.Errorf("generation %d serves, want 2", st.Generation)
			}
		}},
		{"a failed reload keeps the old generation serving", Config{}, func(r *rig) {
			r.ready()
			r.a.Reload()
			r.gen(2).onEvent(event{Ev: "failed", Error: "SyntaxError", Traceback: "Traceback ...\nSyntaxError: bad"})
			r.gen(2).onExit(errors.New("exit status 1"))
			r.wantState(Ready)
			r.wantCalls(1, "spawn 0")
			if !r.logged("reload failed, still serving generation 1") {
				t.Errorf("log: %v", r.log)
			}
		}},
		{"a zygote that cannot start fails the app", Config{}, func(r *rig) {
			r.fail = errors.New("start /nope/python: no such file")
			r.a.Ensure()
			r.wantState(Failed)
			if r.a.Stats().LastError != "start /nope/python: no such file" {
				t.Errorf("last error %q", r.a.Stats().LastError)
			}
		}},
		{"the current zygote exiting leaves the app cold, restarted on demand", Config{}, func(r *rig) {
			r.ready()
			r.gen(1).onExit(errors.New("signal: killed"))
			r.wantState(Cold)
			r.a.Ensure()
			if len(r.procs) != 2 {
				t.Errorf("%d zygotes started, want a new one on demand", len(r.procs))
			}
		}},
		{"harakiri kills a worker stuck past -t, and its exit is no crash", Config{Harakiri: time.Second}, func(r *rig) {
			r.ready()
			r.slotState(0, stateBusy, MonotonicNS()-uint64(2*time.Second), "GET /slow")
			r.a.Tick()
			r.wantCalls(1, "spawn 0", "killWorker 101")
			r.gen(1).onEvent(event{Ev: "exited", Slot: 0, PID: 101, Status: killedBy(syscall.SIGKILL)})
			if r.logged("died") {
				t.Errorf("a harakiri was logged as a crash: %v", r.log)
			}
			r.wantCalls(1, "spawn 0", "killWorker 101", "spawn 0")
		}},
		{"a worker busy within -t is left alone", Config{Harakiri: time.Minute}, func(r *rig) {
			r.ready()
			r.slotState(0, stateBusy, MonotonicNS(), "GET /")
			r.a.Tick()
			for _, c := range r.gen(1).calls {
				if strings.HasPrefix(c, "killWorker") {
					t.Errorf("killed a worker busy for no time: %v", r.gen(1).calls)
				}
			}
		}},
		{"Tick adds a worker when all are busy and a request waits, up to -p", Config{Processes: 2}, func(r *rig) {
			r.ready()
			r.slotState(0, stateBusy, MonotonicNS(), "GET /")
			r.a.Tick()
			r.wantCalls(1, "spawn 0") // busy, but nothing waits
			pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer syscall.Close(pair[1])
			r.a.Handoff(pair[0], []byte("request"), false) // waits in the handoff socket
			r.a.Tick()
			r.wantCalls(1, "spawn 0", "spawn 1")
			r.gen(1).onEvent(event{Ev: "spawned", Slot: 1, PID: 102})
			r.slotState(1, stateBusy, MonotonicNS(), "GET /")
			r.a.Tick()
			r.wantCalls(1, "spawn 0", "spawn 1") // -p 2 reached
		}},
		{"stop at once kills the zygote's group and its workers", Config{}, func(r *rig) {
			r.ready()
			r.a.Close(false)
			r.wantCalls(1, "spawn 0", "kill [101]")
			r.wantState(Stopped)
		}},
		{"a stop returns once the old workers have exited, not before", Config{}, func(r *rig) {
			r.ready()
			done := make(chan error, 1)
			go func() { done <- r.a.StopAndWait(time.Minute) }()
			waitFor(t, func() bool { return r.a.State() == Stopped })
			select {
			case err := <-done:
				t.Fatalf("StopAndWait returned (%v) while the zygote still ran: its workers still accept", err)
			case <-time.After(50 * time.Millisecond): // no event can come: only the exit below ends it
			}
			r.gen(1).onExit(nil)
			if err := <-done; err != nil {
				t.Errorf("StopAndWait: %v", err)
			}
			r.wantCalls(1, "spawn 0", "stop")
		}},
		{"a stop that outlasts its time says so", Config{}, func(r *rig) {
			r.ready()
			if err := r.a.StopAndWait(20 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "still finish requests") {
				t.Errorf("StopAndWait with the zygote running: %v, want the timeout", err)
			}
		}},
		{"a site never started holds no shared memory or handoff socket; one stopped gives them back", Config{}, func(r *rig) {
			if r.a.handoffR != nil || r.a.sb.file != nil {
				t.Fatal("a new pool holds descriptors before its first start")
			}
			r.ready()
			if r.a.handoffR == nil || r.a.sb.file == nil {
				t.Fatal("a started pool has no scoreboard or handoff socket")
			}
			r.slotState(0, stateIdle, 0, "")
			atomic.StoreUint64(r.a.sb.u64(appHeaderSize+slotRequests), 7) // its worker answered 7
			r.a.Stop()
			r.gen(1).onExit(nil)
			if r.a.handoffR != nil || r.a.sb.file != nil {
				t.Error("a stopped pool kept its scoreboard or handoff socket")
			}
			if st := r.a.Stats(); st.Requests != 7 {
				t.Errorf("after giving them back: %d requests, want the 7 kept", st.Requests)
			}
			if req, errs, _ := r.a.Totals(); req != 7 || errs != 0 {
				t.Errorf("Totals after giving them back: %d requests, %d errors, want 7 and 0, as Stats", req, errs)
			}
			r.a.Ensure() // the next request starts it: they come back
			r.gen(2).onEvent(event{Ev: "ready"})
			r.gen(2).onEvent(event{Ev: "spawned", Slot: 0, PID: 102})
			atomic.StoreUint64(r.a.sb.u64(appHeaderSize+slotRequests), 3) // the new worker's own
			atomic.StoreUint64(r.a.sb.u64(appHeaderSize+slotErrors), 1)
			st := r.a.Stats()
			if req, errs, rss := r.a.Totals(); req != st.Requests || errs != st.Errors || rss != st.TotalRSS() || req != 10 {
				t.Errorf("Totals = %d requests, %d errors, %d bytes; Stats says %d, %d, %d (want 10 requests)", req, errs, rss, st.Requests, st.Errors, st.TotalRSS())
			}
			if r.a.handoffR == nil || r.a.sb.file == nil || len(r.procs) != 2 {
				t.Errorf("a restart has no scoreboard or handoff socket (%d zygotes)", len(r.procs))
			}
		}},
		{"--idle stops an app without requests", Config{Idle: time.Millisecond}, func(r *rig) {
			r.ready()
			r.a.mu.Lock()
			r.a.started = time.Now().Add(-time.Second)
			r.a.mu.Unlock()
			r.slotState(0, stateIdle, 0, "")
			r.a.Tick()
			r.wantState(IdleStopped)
			r.wantCalls(1, "spawn 0", "stop")
			r.gen(1).onExit(nil)
			r.a.mu.Lock()
			defer r.a.mu.Unlock()
			for i, g := range r.a.draining[:cap(r.a.draining)] {
				if g != nil {
					r.t.Errorf("the exited generation %d is still referenced by draining's backing array (slot %d): its zygote is never freed", g.n, i)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(newRig(t, tc.cfg)) })
	}
}

// TestSetConfig: new settings are taken while the scoreboard has room for
// a reload's overlap of that many workers, and refused (nothing changed)
// past it, so the daemon knows to have a larger pool take over.
func TestSetConfig(t *testing.T) {
	r := newRig(t, Config{Processes: 3})
	for _, tc := range []struct {
		processes int
		ok        bool
	}{{1, true}, {3, true}, {4, false}, {8, false}} {
		cfg := *r.a.Config()
		cfg.Processes, cfg.Env = tc.processes, []string{"K=v"}
		if got := r.a.SetConfig(&cfg); got != tc.ok {
			t.Errorf("SetConfig(processes %d) = %v, want %v", tc.processes, got, tc.ok)
		}
		if tc.ok && r.a.Stats().Processes != tc.processes {
			t.Errorf("after SetConfig(%d): Stats().Processes = %d", tc.processes, r.a.Stats().Processes)
		}
	}
	if st := r.a.Stats(); st.Processes != 3 || st.EnvVars != 1 {
		t.Errorf("a refused SetConfig changed the app: %+v", st)
	}
}

// TestSharedSocketGrowsOnlyAnAppOfItsOwnTraffic: connections waiting on a
// shared socket add a worker to an app whose one worker is busy only when
// clearly most of what it took from that socket was its own; a quiet app
// whose worker is handing another app's burst to the daemon stays at one
// (CI once saw it grow at the burst's start: one request of its own, none
// forwarded yet).
func TestSharedSocketGrowsOnlyAnAppOfItsOwnTraffic(t *testing.T) {
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "shared.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lf, err := l.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	c, err := net.Dial("unix", l.Addr().String()) // a connection waits on the shared socket
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		name           string
		own, forwarded uint64
		grows          bool
	}{
		{"its one request, none forwarded yet", 1, 0, false},
		{"as many own as forwarded", 5, 5, false},
		{"mostly another app's", 2, 40, false},
		{"clearly its own", 40, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRigOn(t, Config{Processes: 2}, []*os.File{lf})
			r.ready()
			r.a.SetListenShared(true)
			r.slotState(0, stateBusy, MonotonicNS(), "GET /")
			atomic.StoreUint64(r.a.sb.u64(appHeaderSize+slotRequests), tc.own)
			atomic.StoreUint64(r.a.sb.u64(appHeaderSize+slotForward), tc.forwarded)
			r.a.Tick()
			if grew := slices.Contains(r.gen(1).calls, "spawn 1"); grew != tc.grows {
				t.Errorf("own %d, forwarded %d: grew %v, want %v (calls %v)", tc.own, tc.forwarded, grew, tc.grows, r.gen(1).calls)
			}
		})
	}
}
