package daemon

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// The daemon's metrics in Prometheus's text format (/metrics on the status
// listener and the control socket). Every value is read at the scrape from
// what the daemon already keeps (the scoreboard, the pools' counters), so
// nothing is counted twice and an idle daemon does no work for them. Apps
// are labelled by name only: no request data, no environment value.

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("pyvhost_"+name, help, labels, nil)
}

var (
	mRequests = desc("app_requests_total", "Requests the app's workers answered, by status class (1xx to 5xx).", "app", "class")
	mDuration = desc("app_request_duration_seconds", "Time the app's workers took per request, from its packet to its last byte.", "app")
	mInFlight = desc("app_requests_in_flight", "Workers busy with a request now.", "app")
	mWorkers  = desc("app_workers", "The app's worker processes, by state.", "app", "state")
	mRespawns = desc("app_respawns_total", "Workers that died and were started again.", "app")
	mHarakiri = desc("app_harakiri_total", "Workers killed for a request stuck past -t.", "app")
	mRestarts = desc("app_restarts_total", "Times the app's code was started again after its first start (reloads, recoveries).", "app")
	mMemory   = desc("app_memory_bytes", "Memory of the app's processes (zygote and workers), by kind: rss, pss.", "app", "kind")
	mQueue    = desc("app_queue_length", "Requests held by the daemon while the app starts.", "app")
	mRefused  = desc("app_refused_503_total", "Requests the daemon answered 503 (queue full, the app closing).", "app")
	mLast     = desc("app_last_request_timestamp_seconds", "When the app last answered a request (unix time; 0: never).", "app")
	mState    = desc("app_state", "1 for the app's state (cold, starting, ready, failed, stopped, idle).", "app", "state")
	mUp       = desc("daemon_uptime_seconds", "Seconds since the daemon started.")
	mApps     = desc("daemon_apps", "Apps the daemon knows (declared or loaded).")
	mRSS      = desc("daemon_memory_rss_bytes", "RSS of the daemon and every app process.")
	mBuild    = desc("build_info", "pyvhost's version.", "version")
	mCert     = desc("certificate_expiry_timestamp_seconds", "When a TLS site's certificate expires (unix time).", "domain")
	mCertErr  = desc("certificate_renewal_failing", "1 when a TLS site's last renewal failed.", "domain")
)

// latencyBounds are the histogram's bucket bounds: the scoreboard's
// power-of-two buckets (2^b µs), every other one from 1 ms to 67 s.
var latencyBounds = []int{10, 12, 14, 16, 18, 20, 22, 24, 26}

type metrics struct{ d *Daemon }

func (m metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mRequests, mDuration, mInFlight, mWorkers, mRespawns, mHarakiri, mRestarts,
		mMemory, mQueue, mRefused, mLast, mState, mUp, mApps, mRSS, mBuild, mCert, mCertErr} {
		ch <- d
	}
}

func (m metrics) Collect(ch chan<- prometheus.Metric) {
	st := m.d.Status()
	ch <- prometheus.MustNewConstMetric(mUp, prometheus.GaugeValue, st.UptimeSec)
	ch <- prometheus.MustNewConstMetric(mApps, prometheus.GaugeValue, float64(st.Apps))
	ch <- prometheus.MustNewConstMetric(mRSS, prometheus.GaugeValue, float64(st.RSS))
	ch <- prometheus.MustNewConstMetric(mBuild, prometheus.GaugeValue, 1, st.Version)
	for _, c := range st.Certs {
		ch <- prometheus.MustNewConstMetric(mCert, prometheus.GaugeValue, float64(c.NotAfter.Unix()), c.Domain)
		ch <- prometheus.MustNewConstMetric(mCertErr, prometheus.GaugeValue, boolValue(c.LastError != ""), c.Domain)
	}
	for _, a := range byName(m.d.AppList().Apps) {
		collectApp(ch, a)
	}
}

// byName merges the pools of one name (an app and the pool retiring in its
// place): a metric's labels must be unique.
func byName(apps []pool.AppStats) []pool.AppStats {
	var out []pool.AppStats
	at := map[string]int{}
	for _, a := range apps {
		i, seen := at[a.Name]
		if !seen {
			at[a.Name] = len(out)
			out = append(out, a)
			continue
		}
		o := &out[i]
		if a.Retiring {
			a, *o = *o, a // the serving pool's state and settings
		}
		o.Workers = append(o.Workers, a.Workers...)
		o.ZygoteRSS += a.ZygoteRSS
		o.Respawns += a.Respawns
		o.Harakiris += a.Harakiris
		o.Queued += a.Queued
		o.Refused503 += a.Refused503
		o.TotalSec += a.TotalSec
		o.Requests += a.Requests
		o.Generation = max(o.Generation, a.Generation)
		o.LastRequest = max(o.LastRequest, a.LastRequest)
		for c := range o.Classes {
			o.Classes[c] += a.Classes[c]
		}
		for b := range o.Latency {
			o.Latency[b] += a.Latency[b]
		}
	}
	return out
}

func collectApp(ch chan<- prometheus.Metric, a pool.AppStats) {
	ch <- prometheus.MustNewConstMetric(mState, prometheus.GaugeValue, 1, a.Name, string(a.State))
	if a.Generation == 0 && a.Requests == 0 && len(a.Workers) == 0 {
		return // never started: its state alone (10,000 idle sites are not 400,000 series)
	}
	for c, n := range a.Classes {
		ch <- prometheus.MustNewConstMetric(mRequests, prometheus.CounterValue, float64(n), a.Name, strconv.Itoa(c+1)+"xx")
	}
	ch <- latencyHistogram(a)
	states := map[string]float64{"starting": 0, "idle": 0, "busy": 0}
	pss := pool.PSS(a.ZygotePID)
	for _, w := range a.Workers {
		states[w.State]++
		pss += pool.PSS(w.PID)
	}
	for s, n := range states {
		ch <- prometheus.MustNewConstMetric(mWorkers, prometheus.GaugeValue, n, a.Name, s)
	}
	ch <- prometheus.MustNewConstMetric(mInFlight, prometheus.GaugeValue, states["busy"], a.Name)
	ch <- prometheus.MustNewConstMetric(mRespawns, prometheus.CounterValue, float64(a.Respawns), a.Name)
	ch <- prometheus.MustNewConstMetric(mHarakiri, prometheus.CounterValue, float64(a.Harakiris), a.Name)
	ch <- prometheus.MustNewConstMetric(mRestarts, prometheus.CounterValue, float64(max(a.Generation-1, 0)), a.Name)
	ch <- prometheus.MustNewConstMetric(mMemory, prometheus.GaugeValue, float64(a.TotalRSS()), a.Name, "rss")
	ch <- prometheus.MustNewConstMetric(mMemory, prometheus.GaugeValue, float64(pss), a.Name, "pss")
	ch <- prometheus.MustNewConstMetric(mQueue, prometheus.GaugeValue, float64(a.Queued), a.Name)
	ch <- prometheus.MustNewConstMetric(mRefused, prometheus.CounterValue, float64(a.Refused503), a.Name)
	ch <- prometheus.MustNewConstMetric(mLast, prometheus.GaugeValue, a.LastRequest, a.Name)
}

// latencyHistogram turns the scoreboard's buckets (b: answered in
// [2^(b-1), 2^b) µs) into Prometheus's cumulative ones.
func latencyHistogram(a pool.AppStats) prometheus.Metric {
	buckets := map[float64]uint64{}
	var cum, total uint64
	next := 0
	for b, n := range a.Latency {
		cum += n
		total += n
		if next < len(latencyBounds) && b == latencyBounds[next] {
			buckets[float64(time.Duration(1<<b)*time.Microsecond)/float64(time.Second)] = cum
			next++
		}
	}
	return prometheus.MustNewConstHistogram(mDuration, total, a.TotalSec, buckets, a.Name)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metricsHandler serves the daemon's metrics.
func (d *Daemon) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics{d})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
