package pool

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// WorkerStats is one worker process as the daemon sees it.
type WorkerStats struct {
	Slot          int     `json:"slot"`
	PID           int     `json:"pid"`
	Generation    int     `json:"generation"`
	State         string  `json:"state"` // starting, idle, busy
	Requests      uint64  `json:"requests"`
	Errors        uint64  `json:"errors"`
	TX            uint64  `json:"tx"`
	AvgRTMicros   uint64  `json:"avg_rt_us"`
	RunningMicros uint64  `json:"running_time_us"`
	Request       string  `json:"current_request,omitempty"` // "METHOD /path" while busy
	RequestAgeMS  int64   `json:"current_request_age_ms"`    // 0 when idle
	RSS           int64   `json:"rss"`                       // bytes
	LastRequest   float64 `json:"last_request"`              // unix time; 0 if none
}

// AppStats is an app's state and counters.
type AppStats struct {
	ID            string        `json:"id"`
	Num           int           `json:"num"`
	Name          string        `json:"name"`
	Pyhome        string        `json:"pyhome"`
	Chdir         string        `json:"chdir"`
	Script        string        `json:"script"`
	State         State         `json:"state"`
	Generation    int           `json:"generation"`
	ZygotePID     int           `json:"zygote_pid"`
	ZygoteRSS     int64         `json:"zygote_rss"`
	Workers       []WorkerStats `json:"workers"`
	Requests      uint64        `json:"requests"`
	Errors        uint64        `json:"errors"`
	Harakiris     int           `json:"harakiri_count"`
	Respawns      int           `json:"respawns"`
	AvgLatencyMS  float64       `json:"avg_latency_ms"`
	P99LatencyMS  float64       `json:"p99_latency_ms"`
	LastRequest   float64       `json:"last_request"` // unix time; 0 if none
	Queued        int           `json:"queued"`
	ListensShared bool          `json:"listens_shared"`
	LastError     string        `json:"last_error,omitempty"`
	Traceback     string        `json:"traceback,omitempty"`
	// Retiring: replaced (its socket left the config, or a new pool took
	// it over) and finishing what it was handed; set by the daemon.
	Retiring bool `json:"retiring,omitempty"`

	// The pool settings in force, Own naming those the app sets itself
	// ("" = all the daemon's); EnvVars is how many variables the app's
	// environment has (never their names or values: they are secrets).
	Processes   int    `json:"processes"`
	HarakiriSec int    `json:"harakiri"`
	MaxRequests int    `json:"max_requests"`
	IdleSec     int    `json:"idle"`
	LimitASMB   int    `json:"limit_as"`
	Own         string `json:"own_settings,omitempty"`
	Interface   string `json:"interface,omitempty"`    // "wsgi" or "asgi", once it was imported
	RequestPath string `json:"request_path,omitempty"` // "C" or "python" (no C speedups), once it was imported
	EnvVars     int    `json:"env_vars"`
	Settings    string `json:"settings_stamp,omitempty"`

	// For the daemon's metrics: answers by status class (1xx to 5xx),
	// requests refused with a 503 (queue full, app closing), the latency
	// histogram (bucket b: answered under 2^b µs) and the time spent.
	Classes    [5]uint64           `json:"answers_by_class"`
	Refused503 uint64              `json:"refused_503"`
	Latency    [HistBuckets]uint64 `json:"-"`
	TotalSec   float64             `json:"-"`
}

// TotalRSS is the resident memory of the app's zygote and workers, in bytes.
func (s AppStats) TotalRSS() int64 {
	rss := s.ZygoteRSS
	for _, w := range s.Workers {
		rss += w.RSS
	}
	return rss
}

// HistBuckets is how many latency buckets AppStats.Latency has.
const HistBuckets = histBuckets

// retired keeps the counters of workers that have exited, so app totals
// survive recycling.
type retired struct {
	requests, errors, tx, totalNS, forwarded uint64
	hist                                     [histBuckets]uint64
	classes                                  [5]uint64
}

func (a *App) retireSlotLocked(i int) {
	st := a.sb.slot(i)
	a.old.requests += st.Requests
	a.old.errors += st.Errors
	a.old.tx += st.TX
	a.old.totalNS += st.TotalNS
	a.old.forwarded += st.Forwarded
	for b, n := range st.Hist {
		a.old.hist[b] += uint64(n)
	}
	for c, n := range st.Classes {
		a.old.classes[c] += n
	}
	a.sb.clearSlot(i)
}

// Totals is what a daemon's status sums over its apps, as Stats counts
// them: requests, errors, the memory of its processes. Without the rest of
// Stats: 10,000 apps' whole stats took a quarter of a second.
func (a *App) Totals() (requests, errs uint64, rss int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	requests, errs = a.old.requests, a.old.errors
	if a.cur != nil && a.cur.z != nil {
		rss += RSS(a.cur.z.pid())
	}
	for i, sl := range a.slots {
		if sl.gen == nil {
			continue
		}
		st := a.sb.slot(i)
		requests += st.Requests
		errs += st.Errors
		rss += RSS(sl.pid)
	}
	return requests, errs, rss
}

// Stats returns the app's current state and counters.
func (a *App) Stats() AppStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := AppStats{
		ID: a.ID, Num: a.Num, Name: a.Name, Pyhome: a.Key.Pyhome, Chdir: a.Key.Chdir, Script: a.Key.Script,
		State: a.state, Harakiris: a.harakiris, Respawns: a.respawns, Queued: len(a.queue),
		ListensShared: len(a.shared) > 0 && a.sb.listenShared(), LastError: a.lastError, Traceback: a.traceback,
		Workers:   []WorkerStats{},
		Processes: a.cfg.Processes, HarakiriSec: int(a.cfg.Harakiri.Seconds()), MaxRequests: a.cfg.MaxRequests,
		IdleSec: int(a.cfg.Idle.Seconds()), LimitASMB: a.cfg.LimitAS, Own: a.cfg.Own, EnvVars: len(a.cfg.Env), Settings: a.cfg.Stamp,
		Interface: a.iface, RequestPath: a.path,
	}
	if a.cur != nil {
		s.Generation = a.cur.n
		if a.cur.z != nil {
			s.ZygotePID = a.cur.z.pid()
			s.ZygoteRSS = RSS(s.ZygotePID)
		}
	}
	hist, classes := a.old.hist, a.old.classes
	requests, errs, totalNS := a.old.requests, a.old.errors, a.old.totalNS
	var last uint64
	for i, sl := range a.slots {
		if sl.gen == nil {
			continue
		}
		st := a.sb.slot(i)
		w := WorkerStats{Slot: i, PID: sl.pid, Generation: sl.gen.n, Requests: st.Requests, Errors: st.Errors, TX: st.TX,
			RunningMicros: st.TotalNS / 1000, RSS: RSS(sl.pid), LastRequest: float64(st.LastUnixMS) / 1000}
		switch {
		case sl.spawning:
			w.State = "starting"
		case st.State == stateBusy && st.StartNS != 0:
			w.State = "busy"
			w.Request = st.Request
			w.RequestAgeMS = nsSince(st.StartNS).Milliseconds()
		default:
			w.State = "idle"
		}
		if st.Requests > 0 {
			w.AvgRTMicros = st.TotalNS / st.Requests / 1000
		}
		s.Workers = append(s.Workers, w)
		requests += st.Requests
		errs += st.Errors
		totalNS += st.TotalNS
		for b, n := range st.Hist {
			hist[b] += uint64(n)
		}
		for c, n := range st.Classes {
			classes[c] += n
		}
		if st.LastUnixMS > last {
			last = st.LastUnixMS
		}
	}
	s.Requests, s.Errors = requests, errs
	s.LastRequest = float64(last) / 1000
	s.Classes, s.Latency, s.TotalSec, s.Refused503 = classes, hist, float64(totalNS)/1e9, a.refused503
	if requests > 0 {
		s.AvgLatencyMS = float64(totalNS) / float64(requests) / 1e6
		s.P99LatencyMS = percentile(hist, requests, 0.99)
	}
	return s
}

// Percentile estimates a latency percentile from AppStats.Latency's
// buckets (total: their sum), in milliseconds.
func Percentile(hist [HistBuckets]uint64, total uint64, p float64) float64 {
	return percentile(hist, total, p)
}

// percentile estimates a latency percentile from power-of-two buckets: the
// upper bound of the bucket holding it, in milliseconds.
func percentile(hist [histBuckets]uint64, total uint64, p float64) float64 {
	want := uint64(float64(total)*p + 0.5)
	if want == 0 {
		want = 1
	}
	var seen uint64
	for b, n := range hist {
		seen += n
		if seen >= want {
			return float64(uint64(1)<<uint(b)) / 1000
		}
	}
	return 0
}

// RSS is a process's resident memory in bytes, 0 if it is gone.
func RSS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// Uptime is how long the current generation has run.
func (a *App) Uptime() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil {
		return 0
	}
	return time.Since(a.started)
}

// Traffic returns the requests the app's workers have served and those
// they accepted but handed back for another app, since the app was
// created: the daemon compares them between policy rounds.
func (a *App) Traffic() (served, forwarded uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	served, forwarded = a.old.requests, a.old.forwarded
	for i, sl := range a.slots {
		if sl.gen != nil {
			st := a.sb.slot(i)
			served += st.Requests
			forwarded += st.Forwarded
		}
	}
	return served, forwarded
}

// PSS is a process's proportional set size in bytes (its share of pages it
// shares with others, as /proc/PID/smaps_rollup counts it); 0 if unknown.
func PSS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
