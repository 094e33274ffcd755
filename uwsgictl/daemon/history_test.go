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
	h.sample(t0, []pool.AppStats{app(100, 100, 0, 10<<20), cold})
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
		h.sample(t0.Add(time.Duration(i+1)*10*time.Second), []pool.AppStats{app(s.reqs, s.slow, s.fast, 20<<20), cold})
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
	h.sample(t0.Add(time.Hour), nil)
	if s := h.series(); len(s) != 0 {
		t.Errorf("an app gone keeps its history: %v", s)
	}
}
