package daemon

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestQuietRelease: the release runs once the pokes stop for the quiet
// period, not on every poke, and again after a later burst, but not sooner
// than minGap after the last one.
func TestQuietRelease(t *testing.T) {
	var n atomic.Int32
	q := &quietRelease{after: 50 * time.Millisecond, minGap: 300 * time.Millisecond, release: func() { n.Add(1) }}
	for i := 0; i < 5; i++ { // a burst of app starts, each before the quiet period ends
		q.poke()
		time.Sleep(10 * time.Millisecond)
	}
	if got := n.Load(); got != 0 {
		t.Fatalf("released %d times during the burst", got)
	}
	waitFor(t, func() bool { return n.Load() == 1 })
	time.Sleep(100 * time.Millisecond)
	if got := n.Load(); got != 1 {
		t.Fatalf("released %d times after one burst, want 1", got)
	}
	start := time.Now()
	q.poke()
	waitFor(t, func() bool { return n.Load() == 2 })
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Errorf("second release after %v, sooner than minGap allows", waited)
	}
}

// TestReleaseStartupMemory runs the real thing on the test binary: it must
// not fail or disturb the process.
func TestReleaseStartupMemory(t *testing.T) {
	ReleaseStartupMemory()
	ReleaseStartupMemory()
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
