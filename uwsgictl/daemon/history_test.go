package daemon

import (
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// TestHistory: the first look at an app is a baseline; then each sample
// is the rate since the last, the p99 of the requests in between (not of
// all time) and the memory; 15 minutes are kept; an app never started has
// none, an app gone is dropped.
func TestHistory(t *testing.T) {
	h := newHistory(5 * time.Minute) // 3 samples kept
	t0 := time.Unix(1_700_000_000, 0)
	app := func(reqs uint64, slow, fast uint64, rss int64) pool.AppStats {
		a := pool.AppStats{ID: "a", Generation: 1, Requests: reqs, ZygoteRSS: rss}
		a.Latency[20] = slow // ~1 s each
		a.Latency[10] = fast // ~1 ms each
		return a
	}
	cold := pool.AppStats{ID: "cold"}
	h.sample(t0, []pool.AppStats{app(100, 100, 0, 10<<20), cold}, nil)
	if s := h.series(); len(s) != 0 {
		t.Fatalf("after the baseline: %v, want nothing yet", s)
	}
	steps := []struct {
		reqs, slow, fast uint64
		wantRPS, wantP99 float32
	}{
		{200, 100, 100, 10, 1.024}, // 100 more in 10 s, all fast: p99 of those
		{500, 200, 300, 30, 1048.576},
		{500, 200, 300, 0, 0},
		{600, 200, 400, 10, 1.024},
	}
	for i, s := range steps {
		h.sample(t0.Add(time.Duration(i+1)*10*time.Second), []pool.AppStats{app(s.reqs, s.slow, s.fast, 20<<20), cold}, nil)
		got := h.series()["a"]
		n := len(got.RPS)
		if got.RPS[n-1] != s.wantRPS || got.P99MS[n-1] != s.wantP99 || got.RSSMB[n-1] != 20 {
			t.Errorf("sample %d: rps %v p99 %v mb %v, want %v %v 20", i, got.RPS[n-1], got.P99MS[n-1], got.RSSMB[n-1], s.wantRPS, s.wantP99)
		}
		if n > 3 || len(got.T) != n {
			t.Errorf("sample %d: %d points (%d times), want at most 3", i, n, len(got.T))
		}
	}
	if _, ok := h.series()["cold"]; ok {
		t.Error("an app never started has a history")
	}
	h.sample(t0.Add(time.Hour), nil, nil)
	if s := h.series(); len(s) != 0 {
		t.Errorf("an app gone keeps its history: %v", s)
	}
}

// TestHistoryOfAStoppedApp: an app that stopped keeps its chart from its
// request count alone (the requests it answered before it stopped count
// in the next point; no latency, no memory); after a whole window with
// nothing its history goes, so stopped sites cost nothing; running again,
// it starts anew.
func TestHistoryOfAStoppedApp(t *testing.T) {
	h := newHistory(5 * time.Minute) // 3 samples kept
	t0 := time.Unix(1_700_000_000, 0)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 10 * time.Second) }
	running := func(reqs uint64) []pool.AppStats {
		return []pool.AppStats{{ID: "a", Generation: 1, Requests: reqs, ZygoteRSS: 30 << 20}}
	}
	h.sample(at(0), running(0), nil)
	h.sample(at(1), running(100), nil)
	if !h.has("a") {
		t.Fatal("a running app has no history")
	}
	stopped := func(reqs uint64) []stoppedApp { return []stoppedApp{{ID: "a", Requests: reqs}} }
	h.sample(at(2), nil, stopped(150)) // 50 more before it stopped
	got := h.series()["a"]
	if n := len(got.RPS); got.RPS[n-1] != 5 || got.RSSMB[n-1] != 0 || got.P99MS[n-1] != 0 {
		t.Errorf("the first point after the stop: rps %v mb %v p99 %v, want 5 0 0", got.RPS[n-1], got.RSSMB[n-1], got.P99MS[n-1])
	}
	for i := 3; i <= 4; i++ {
		h.sample(at(i), nil, stopped(150))
	}
	if !h.has("a") {
		t.Fatal("dropped before a whole window was quiet")
	}
	h.sample(at(5), nil, stopped(150)) // the window (3 points) is all quiet now
	if h.has("a") {
		t.Fatalf("a stopped app quiet for a whole window keeps its history: %+v", h.series()["a"])
	}
	h.sample(at(6), nil, stopped(150))
	if h.has("a") {
		t.Error("a stopped app without a history got one")
	}
	h.sample(at(7), running(150), nil)
	h.sample(at(8), running(250), nil)
	if got := h.series()["a"]; len(got.RPS) != 1 || got.RPS[0] != 10 {
		t.Errorf("running again: %+v, want one point of 10 rps after a new baseline", got)
	}
	// a retired pool of an app that runs anew in a new one: one point
	h.sample(at(9), running(350), stopped(250))
	if got := h.series()["a"]; len(got.RPS) != 2 || got.RPS[1] != 10 {
		t.Errorf("with a retired pool beside: %+v, want the running pool's point only", got)
	}
}
