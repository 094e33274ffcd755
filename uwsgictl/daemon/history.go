package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// The status page's charts: per app, requests per second, p99 latency and
// memory, one sample every --status-history-step (10 s) for the last 15
// minutes. Kept for apps that ran in those 15 minutes only, so 10,000 idle
// sites cost nothing here: a stopped app's point is made from its request
// count alone (no stats taken), and once its whole window is quiet its
// history goes.

const historySpan = 15 * time.Minute

// Series is one app's recent history, oldest first (what status.json has).
type Series struct {
	T     []int64   `json:"t"` // unix seconds
	RPS   []float32 `json:"rps"`
	P99MS []float32 `json:"p99_ms"`
	RSSMB []float32 `json:"rss_mb"`
}

type appHistory struct {
	Series
	lastT    time.Time
	lastReq  uint64
	lastHist [pool.HistBuckets]uint64
}

type history struct {
	mu   sync.Mutex
	keep int // samples kept
	apps map[string]*appHistory
}

func newHistory(step time.Duration) *history {
	return &history{keep: max(2, int(historySpan/step)), apps: map[string]*appHistory{}}
}

// stoppedApp is an app without processes that has a history: its id and
// its request count (pool.App.Totals).
type stoppedApp struct {
	ID       string
	Requests uint64
}

// has reports whether app id has a history.
func (h *history) has(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.apps[id] != nil
}

// sample adds now's point for every running app (its stats) and every
// stopped one with a history (its rate only, no latency or memory: it has
// no processes); a stopped app quiet for the whole window, and an app
// gone, are dropped.
func (h *history) sample(now time.Time, apps []pool.AppStats, stopped []stoppedApp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[string]bool{}
	for _, a := range apps {
		if a.Generation == 0 && a.Requests == 0 {
			continue // never started
		}
		seen[a.ID] = true
		ah := h.apps[a.ID]
		if ah == nil {
			ah = &appHistory{lastT: now, lastReq: a.Requests, lastHist: a.Latency}
			h.apps[a.ID] = ah
			continue // the first look: a baseline, no rate yet
		}
		var delta [pool.HistBuckets]uint64
		var n uint64
		for b := range delta {
			delta[b] = a.Latency[b] - min(a.Latency[b], ah.lastHist[b])
			n += delta[b]
		}
		rps := float64(a.Requests-min(a.Requests, ah.lastReq)) / now.Sub(ah.lastT).Seconds()
		p99 := 0.0
		if n > 0 {
			p99 = pool.Percentile(delta, n, 0.99)
		}
		ah.add(h.keep, now.Unix(), float32(rps), float32(p99), float32(float64(a.TotalRSS())/(1<<20)))
		ah.lastT, ah.lastReq, ah.lastHist = now, a.Requests, a.Latency
	}
	for _, a := range stopped {
		ah := h.apps[a.ID]
		if ah == nil || seen[a.ID] { // a retired pool of an app running anew: that one's point counts
			continue
		}
		seen[a.ID] = true
		rps := float64(a.Requests-min(a.Requests, ah.lastReq)) / now.Sub(ah.lastT).Seconds()
		ah.add(h.keep, now.Unix(), float32(rps), 0, 0)
		ah.lastT, ah.lastReq = now, a.Requests
		if ah.quiet(h.keep) {
			delete(h.apps, a.ID)
		}
	}
	for id := range h.apps {
		if !seen[id] {
			delete(h.apps, id)
		}
	}
}

// quiet reports whether a whole window of samples says nothing happened.
func (ah *appHistory) quiet(keep int) bool {
	if len(ah.RPS) < keep {
		return false
	}
	for i := range ah.RPS {
		if ah.RPS[i] != 0 || ah.RSSMB[i] != 0 {
			return false
		}
	}
	return true
}

func (ah *appHistory) add(keep int, t int64, rps, p99, mb float32) {
	trim := func(s []float32, v float32) []float32 { return append(s[max(0, len(s)+1-keep):], v) }
	ah.T = append(ah.T[max(0, len(ah.T)+1-keep):], t)
	ah.RPS, ah.P99MS, ah.RSSMB = trim(ah.RPS, rps), trim(ah.P99MS, p99), trim(ah.RSSMB, mb)
}

// series is every app's history by app id (copies).
func (h *history) series() map[string]Series {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]Series, len(h.apps))
	for id, ah := range h.apps {
		if len(ah.T) > 0 {
			out[id] = Series{append([]int64(nil), ah.T...), append([]float32(nil), ah.RPS...),
				append([]float32(nil), ah.P99MS...), append([]float32(nil), ah.RSSMB...)}
		}
	}
	return out
}

func historyStep(cfg Config) time.Duration {
	if cfg.HistoryStep > 0 {
		return cfg.HistoryStep
	}
	return 10 * time.Second
}

// keepHistory samples the apps every step until ctx ends.
func (d *Daemon) keepHistory(ctx context.Context, step time.Duration) {
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		apps, stopped := d.historyApps()
		d.history.sample(time.Now(), apps, stopped)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// historyApps are the stats of the apps running now and the request
// counts of the stopped ones with a history: the stats of 10,000 apps
// every 10 s were most of an idle daemon's work.
func (d *Daemon) historyApps() (running []pool.AppStats, stopped []stoppedApp) {
	for _, a := range d.appList() {
		switch {
		case a.Running():
			running = append(running, a.Stats())
		case d.history.has(a.ID):
			requests, _, _ := a.Totals()
			stopped = append(stopped, stoppedApp{a.ID, requests})
		}
	}
	return running, stopped
}
