package control

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"
)

// TopView is what `pyvhost ctl top` shows, from a pyvhost daemon or from
// any uWSGI's stats server.
type TopView struct {
	Title string
	Apps  []TopApp
}

// TopApp is one app and its workers (for uWSGI, one group of all workers).
type TopApp struct {
	Name, State  string
	Requests     uint64
	Errors       uint64
	AvgMS, P99MS float64 // P99MS is 0 when the source does not know it
	RSS          int64
	Workers      []TopWorker
}

// TopWorker is one worker process.
type TopWorker struct {
	PID      int
	State    string
	Requests uint64
	Request  string // "METHOD /path" in progress
	AgeMS    int64  // of the request in progress; 0 when idle
	RSS      int64
}

// Top reads the daemon's view for ctl top.
func (c *Client) Top() (TopView, error) {
	st, err := c.Status()
	if err != nil {
		return TopView{}, err
	}
	apps, err := c.Apps()
	if err != nil {
		return TopView{}, err
	}
	v := TopView{Title: fmt.Sprintf("pyvhost daemon %s, pid %d, up %s, %d apps, %.1f rps (10 s), %.1f MB resident",
		st.Version, st.PID, (time.Duration(st.UptimeSec * float64(time.Second))).Round(time.Second), st.Apps, st.RPS, float64(st.RSS)/(1<<20))}
	for _, a := range apps.Apps {
		ta := TopApp{Name: a.Name, State: string(a.State), Requests: a.Requests, Errors: a.Errors,
			AvgMS: a.AvgLatencyMS, P99MS: a.P99LatencyMS, RSS: a.TotalRSS()}
		for _, w := range a.Workers {
			ta.Workers = append(ta.Workers, TopWorker{PID: w.PID, State: w.State, Requests: w.Requests, Request: w.Request, AgeMS: w.RequestAgeMS, RSS: w.RSS})
		}
		v.Apps = append(v.Apps, ta)
	}
	return v, nil
}

// uwsgiStats is the part of uWSGI's stats document top reads (the fields
// uwsgitop uses).
type uwsgiStats struct {
	Version string `json:"version"`
	PID     int    `json:"pid"`
	Workers []struct {
		ID         int     `json:"id"`
		PID        int     `json:"pid"`
		Requests   uint64  `json:"requests"`
		Exceptions uint64  `json:"exceptions"`
		Status     string  `json:"status"`
		RSS        int64   `json:"rss"`
		AvgRT      float64 `json:"avg_rt"` // microseconds
		Cores      []struct {
			InRequest int `json:"in_request"`
		} `json:"cores"`
	} `json:"workers"`
}

// ReadUwsgiStats reads a uWSGI (or pyvhost) stats server: host:port or a
// unix socket path, one JSON document per connection.
func ReadUwsgiStats(addr string) (TopView, error) {
	network := "tcp"
	if strings.Contains(addr, "/") {
		network = "unix"
	}
	conn, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		return TopView{}, fmt.Errorf("stats server %s: %w", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(io.LimitReader(conn, 64<<20))
	if err != nil {
		return TopView{}, fmt.Errorf("stats server %s: %w", addr, err)
	}
	var s uwsgiStats
	if err := json.Unmarshal(b, &s); err != nil {
		return TopView{}, fmt.Errorf("stats server %s: not uWSGI stats JSON: %w", addr, err)
	}
	app := TopApp{Name: "workers on " + addr, State: "running"}
	var rtSum float64
	sort.Slice(s.Workers, func(i, j int) bool { return s.Workers[i].ID < s.Workers[j].ID })
	for _, w := range s.Workers {
		app.Requests += w.Requests
		app.Errors += w.Exceptions
		app.RSS += w.RSS
		rtSum += w.AvgRT * float64(w.Requests)
		app.Workers = append(app.Workers, TopWorker{PID: w.PID, State: w.Status, Requests: w.Requests, RSS: w.RSS})
	}
	if app.Requests > 0 {
		app.AvgMS = rtSum / float64(app.Requests) / 1000
	}
	return TopView{Title: fmt.Sprintf("uWSGI %s, pid %d, %d workers (stats %s)", s.Version, s.PID, len(s.Workers), addr), Apps: []TopApp{app}}, nil
}
