package daemon

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// Version is the daemon's version string in stats; cmd sets it.
var Version = "dev"

// Apps returns every app's stats, ordered by number.
func (d *Daemon) Apps() []pool.AppStats {
	list := d.appList()
	// sorted before their stats are taken: swapping 10,000 AppStats (big
	// structs) cost more than taking them
	sort.Slice(list, func(i, j int) bool { return list[i].Num < list[j].Num })
	out := make([]pool.AppStats, 0, len(list))
	for _, a := range list {
		listed, retiring := d.listed(a)
		if !listed {
			continue
		}
		out = append(out, a.Stats())
		out[len(out)-1].Retiring = retiring
	}
	return out
}

// listed reports whether the daemon's lists show app a, and whether it is
// retiring (replaced by a pool of the same app): a replaced pool without
// processes is gone but for the next prune.
func (d *Daemon) listed(a *pool.App) (listed, retiring bool) {
	d.mu.Lock()
	retiring = d.apps[a.Key] != a
	d.mu.Unlock()
	return !retiring || a.Running(), retiring
}

// uwsgiStats is uWSGI's stats document (the fields uwsgitop and other
// tools read) with pyvhost's per-app view added. It carries no request
// vars: uWSGI's "vars" leak cookies and auth headers; ours stay empty.
func (d *Daemon) uwsgiStats() map[string]any {
	wd, _ := os.Getwd()
	apps := d.Apps()
	var workers []map[string]any
	id := 1
	for _, a := range apps {
		for _, w := range a.Workers {
			status := "idle"
			if w.State == "busy" {
				status = "busy"
			} else if w.State == "starting" {
				status = "cheap"
			}
			inRequest := 0
			if w.State == "busy" {
				inRequest = 1
			}
			workers = append(workers, map[string]any{
				"id": id, "pid": w.PID, "accepting": 1, "requests": w.Requests, "delta_requests": w.Requests,
				"exceptions": w.Errors, "harakiri_count": 0, "signals": 0, "signal_queue": 0, "status": status,
				"rss": w.RSS, "vsz": 0, "running_time": w.RunningMicros, "last_spawn": 0, "respawn_count": a.Respawns,
				"tx": w.TX, "avg_rt": w.AvgRTMicros,
				"apps": []map[string]any{{"id": a.Num, "modifier1": 0, "mountpoint": a.Name, "startup_time": 0,
					"requests": w.Requests, "exceptions": w.Errors, "chdir": a.Chdir}},
				"cores": []map[string]any{{"id": 0, "requests": w.Requests, "static_requests": 0, "routed_requests": 0,
					"offloaded_requests": 0, "write_errors": 0, "read_errors": 0, "in_request": inRequest,
					"vars": []string{}, "req_info": map[string]any{}}},
				"pyvhost_app": a.ID,
			})
			id++
		}
	}
	if workers == nil {
		workers = []map[string]any{}
	}
	var sockets []map[string]any
	for _, l := range d.shared {
		sockets = append(sockets, map[string]any{"name": l.addr, "proto": "uwsgi", "queue": 0, "max_queue": d.cfg.Backlog, "shared": 0, "can_offload": 0})
	}
	for path := range d.appSockets {
		sockets = append(sockets, map[string]any{"name": path, "proto": "uwsgi", "queue": 0, "max_queue": d.cfg.Backlog, "shared": 0, "can_offload": 0})
	}
	if sockets == nil {
		sockets = []map[string]any{}
	}
	return map[string]any{
		"version": "pyvhost-" + Version, "listen_queue": 0, "listen_queue_errors": 0, "signal_queue": 0, "load": 0,
		"pid": os.Getpid(), "uid": os.Getuid(), "gid": os.Getgid(), "cwd": wd, "locks": []any{},
		"sockets": sockets, "workers": workers, "pyvhost_apps": apps,
		"pyvhost_uptime": time.Since(d.started).Seconds(),
	}
}

// serveStats serves the stats document on addr (host:port or a unix
// path) the way uWSGI's --stats does: one JSON document per connection.
func (d *Daemon) serveStats(addr string) error {
	network := "tcp"
	if strings.Contains(addr, "/") {
		network = "unix"
		_ = os.MkdirAll(filepath.Dir(addr), 0o755)
		_ = os.Remove(addr)
	} else if isAllInterfaces(addr) {
		d.log.logf("warning: stats on %s are readable from every interface", addr)
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return fmt.Errorf("stats server: %w", err)
	}
	if network == "unix" {
		_ = os.Chmod(addr, 0o600)
	}
	go func() {
		<-d.stopping
		l.Close()
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b, _ := json.Marshal(d.uwsgiStats())
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Write(b)
			c.Close()
		}
	}()
	d.log.logf("stats server on %s", addr)
	return nil
}
