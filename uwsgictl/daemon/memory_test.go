package daemon

import (
	"runtime/debug"
	"testing"
	"time"
)

// TestQuietRelease: the release runs once the pokes stop for the quiet
// period, not on every poke, and again after a later burst, but not sooner
// than minGap after the last one. The clock is the test's: fire is called
// at chosen times (its real timer is an hour away).
func TestQuietRelease(t *testing.T) {
	var released int
	var now time.Time
	base := time.Unix(1_000_000, 0)
	q := &quietRelease{after: time.Hour, minGap: 6 * time.Hour, release: func() { released++ }, now: func() time.Time { return now }}
	minute := func(n int) time.Time { return base.Add(time.Duration(n) * time.Minute) }
	steps := []struct {
		at      int
		op      string // poke or fire
		wantRel int
	}{
		{0, "poke", 0}, {10, "poke", 0}, {20, "poke", 0}, {30, "poke", 0}, // a burst of app starts
		{60, "fire", 0},  // 30 minutes after the last poke: still in the quiet period
		{90, "fire", 1},  // an hour after the last poke: released
		{200, "fire", 1}, // no poke since: nothing to release
		{300, "poke", 1},
		{370, "fire", 1}, // quiet for an hour, but within 6 h of the last release
		{450, "fire", 2}, // 6 h after the last release
		{460, "fire", 2},
	}
	for _, s := range steps {
		now = minute(s.at)
		if s.op == "poke" {
			q.poke()
		} else {
			q.fire()
		}
		if released != s.wantRel {
			t.Fatalf("after %s at minute %d: %d releases, want %d", s.op, s.at, released, s.wantRel)
		}
	}
	q.timer.Stop()
}

// TestReleaseStartupMemory runs the real thing on the test binary: it must
// not fail or disturb the process.
func TestReleaseStartupMemory(t *testing.T) {
	ReleaseStartupMemory()
	ReleaseStartupMemory()
}

// Reads that overlap loosen the collector once, and the last to finish
// puts the daemon's own setting back.
func TestLooseGC(t *testing.T) {
	saved := debug.SetGCPercent(25)
	defer debug.SetGCPercent(saved)
	current := func() int { p := debug.SetGCPercent(0); debug.SetGCPercent(p); return p }
	first := looseGC()
	second := looseGC()
	if p := current(); p != 100 {
		t.Fatalf("GOGC %d during a read, want 100", p)
	}
	first()
	if p := current(); p != 100 {
		t.Fatalf("GOGC %d while a second read goes on, want 100", p)
	}
	second()
	if p := current(); p != 25 {
		t.Fatalf("GOGC %d after the reads, want the daemon's 25", p)
	}
}
