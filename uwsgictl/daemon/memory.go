package daemon

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// releaseWhenQuiet releases memory again once the daemon has been quiet for
// a while after starting apps: loading an app runs code (spawning, the
// zygote protocol, JSON, the policy checks) that serving does not. Measured
// after a benchmark's warm-up: ~7 MB of the binary resident, of which the
// serving daemon keeps touching ~2 MB.
var releaseWhenQuiet = &quietRelease{after: 5 * time.Second, minGap: time.Minute, release: ReleaseStartupMemory}

// quietRelease calls release once no poke came for after, and not more
// often than every minGap (apps that --idle stops and starts again should
// not have the daemon page its code in and out all day). When is decided
// by due, from the times alone; a timer only wakes fire up.
type quietRelease struct {
	after, minGap time.Duration
	release       func()
	now           func() time.Time // time.Now when nil; tests set it

	mu      sync.Mutex
	timer   *time.Timer
	pending bool // poked since the last release
	pokedAt time.Time
	last    time.Time // the last release
}

func (q *quietRelease) clock() time.Time {
	if q.now != nil {
		return q.now()
	}
	return time.Now()
}

func (q *quietRelease) poke() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending, q.pokedAt = true, q.clock()
	q.armLocked(q.pokedAt)
}

// due is when the pending release may run: the quiet period after the
// last poke, and minGap after the last release.
func (q *quietRelease) due() time.Time {
	at := q.pokedAt.Add(q.after)
	if !q.last.IsZero() && q.last.Add(q.minGap).After(at) {
		at = q.last.Add(q.minGap)
	}
	return at
}

func (q *quietRelease) armLocked(now time.Time) {
	wait := q.due().Sub(now)
	if q.timer == nil {
		q.timer = time.AfterFunc(wait, q.fire)
		return
	}
	q.timer.Reset(wait)
}

// fire releases if a release is pending and due, else waits on.
func (q *quietRelease) fire() {
	q.mu.Lock()
	now := q.clock()
	if !q.pending {
		q.mu.Unlock()
		return
	}
	if now.Before(q.due()) {
		q.armLocked(now)
		q.mu.Unlock()
		return
	}
	q.pending, q.last = false, now
	q.mu.Unlock()
	q.release()
}

// ReleaseStartupMemory gives back what start-up (reading the nginx config,
// building the C speedups, the CLI's own set-up) used and steady state does
// not: the Go heap's garbage, and the pages of the binary's code that only
// start-up ran. The binary's pages are file-backed and clean, so the kernel
// drops them (MADV_PAGEOUT) and faults them back in from the page cache if
// some code runs again; the daemon's steady state touches a small part of
// them. The daemon calls it when start-up is done, and again when it has
// been quiet for a while after starting apps (releaseWhenQuiet).
func ReleaseStartupMemory() {
	debug.FreeOSMemory()
	exe, err := os.Executable()
	if err != nil {
		return
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-00c5b000 r-xp 00000000 fd:01 1234 /usr/local/bin/pyvhost
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue // only the binary's read-only (clean) mappings
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// Raw syscall: the range is not Go memory. Advice only: a kernel
		// without MADV_PAGEOUT (before 5.4) changes nothing.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT)
	}
}

// looseGC lets the collector run as a short-lived program's would while
// the daemon reads the nginx config, and returns what puts it back: the
// daemon's low GOGC (25, for a small resident heap while serving) made a
// read of 10,000 sites' files spend half its time in the collector (2.0 s
// against 1.1 s). Reads that overlap share one loosening.
func looseGC() (restore func()) {
	gcLoose.Lock()
	defer gcLoose.Unlock()
	if gcLoose.n == 0 {
		gcLoose.saved = debug.SetGCPercent(100)
		if gcLoose.saved > 100 || gcLoose.saved < 0 { // looser already (GOGC=off, say)
			debug.SetGCPercent(gcLoose.saved)
		}
	}
	gcLoose.n++
	return func() {
		gcLoose.Lock()
		defer gcLoose.Unlock()
		if gcLoose.n--; gcLoose.n == 0 {
			debug.SetGCPercent(gcLoose.saved)
		}
	}
}

var gcLoose struct {
	sync.Mutex
	n     int
	saved int
}
