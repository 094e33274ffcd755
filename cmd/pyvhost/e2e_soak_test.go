package main

// The soak: load through nginx on two apps while the daemon reloads them,
// code is redeployed and nginx reloads, for SOAK_MINUTES (make soak: 3;
// make test: 1). It fails on any answer that is not a 200, on growth of
// the master's descriptors, and on RSS growth of the master or a worker
// past soakRSSBound between the end of the warm-up and the end.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// soakRSSBound is the RSS growth allowed to the master and to the largest
// worker: a leak of one allocation per request would pass it within
// seconds at the soak's request rate.
const soakRSSBound = 8 << 20

// soakFDBound is the master descriptor growth allowed: connections held
// for a moment while a request is routed.
const soakFDBound = 4

func soakDuration() time.Duration {
	if m, err := strconv.ParseFloat(os.Getenv("SOAK_MINUTES"), 64); err == nil && m > 0 {
		return time.Duration(m * float64(time.Minute))
	}
	return time.Minute
}

// soakSample is the master's descriptors and RSS and the largest worker RSS.
type soakSample struct {
	fds             int
	masterRSS, wRSS int64
}

func takeSample(t *testing.T, c *control.Client, master int) soakSample {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", master))
	if err != nil {
		t.Fatalf("the daemon's descriptors: %v", err)
	}
	s := soakSample{fds: len(ents), masterRSS: pool.RSS(master)}
	apps, err := c.Apps()
	if err != nil {
		t.Fatalf("ctl apps: %v", err)
	}
	for _, a := range apps.Apps {
		for _, w := range a.Workers {
			s.wRSS = max(s.wRSS, w.RSS)
		}
	}
	return s
}

// median of samples, field by field: one sample taken mid-reload (two
// generations of workers, a connection in the daemon's hands) says little.
func median(ss []soakSample) soakSample {
	pick := func(f func(soakSample) int64) int64 {
		v := make([]int64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return soakSample{fds: int(pick(func(s soakSample) int64 { return int64(s.fds) })),
		masterRSS: pick(func(s soakSample) int64 { return s.masterRSS }), wRSS: pick(func(s soakSample) int64 { return s.wRSS })}
}

// asgiHelloPy is helloPy as an ASGI app.
const asgiHelloPy = `async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    host = dict(scope["headers"]).get(b"host", b"")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello from %s\n" % host})
`

func TestSoak(t *testing.T) {
	skipShort(t)
	total := soakDuration()
	warm := min(time.Minute, total/3)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	apps := map[string]string{}
	// soak1 is a WSGI app, soak2 an ASGI one: both kinds of worker go
	// through the reloads and redeploys.
	src := map[string]string{"soak1": helloPy, "soak2": asgiHelloPy}
	for _, name := range []string{"soak1", "soak2"} {
		apps[name] = e.app(name, map[string]string{name + ".py": src[name]})
		e.deploy(name+".test", "--app-dir", apps[name], "--module", name, "--venv", venv, "--listen", e.listen)
	}
	c, err := control.Dial(e.ctl)
	if err != nil {
		t.Fatal(err)
	}
	master := e.daemonPID()
	l := startSoakLoad(e, []string{"soak1.test", "soak2.test"}, 4)
	start := time.Now()
	var warmSamples, endSamples []soakSample
	ops := map[string]int{}
	for i := 0; time.Since(start) < total; i++ {
		switch i % 3 {
		case 0:
			if _, err := c.ReloadAll(); err != nil {
				t.Fatalf("ctl reload: %v", err)
			}
			ops["ctl reload"]++
		case 1:
			name := []string{"soak1", "soak2"}[(i/3)%2]
			write(t, filepath.Join(apps[name], name+".py"), strings.Replace(src[name], "hello from", fmt.Sprintf("v%d hello from", i), 1))
			e.deploy(name+".test", "--app-dir", apps[name], "--module", name, "--venv", venv)
			ops["code redeploy"]++
		case 2:
			e.nginx.Reload(t)
			ops["nginx reload"]++
		}
		time.Sleep(2 * time.Second) // the soak's pace, not synchronisation: load runs meanwhile
		switch el := time.Since(start); {
		case el >= warm && el < warm+20*time.Second:
			warmSamples = append(warmSamples, takeSample(t, c, master))
		case el >= total-20*time.Second:
			endSamples = append(endSamples, takeSample(t, c, master))
		}
	}
	ok, bad := l.stop()
	took := time.Since(start)
	t.Logf("soak: %v, %d requests (%.0f/s), %v; 0 allowed non-200, got %d", took.Round(time.Second), ok+int64(len(bad)),
		float64(ok)/took.Seconds(), ops, len(bad))
	if len(bad) > 0 {
		t.Errorf("%d answers were not 200, e.g. %v\n%s", len(bad), bad[:min(5, len(bad))], e.daemonLog())
	}
	if len(warmSamples) == 0 || len(endSamples) == 0 {
		t.Fatalf("too few samples (%d after the warm-up, %d at the end): SOAK_MINUTES too small", len(warmSamples), len(endSamples))
	}
	w, end := median(warmSamples), median(endSamples)
	t.Logf("master fds %d -> %d (bound +%d); master RSS %.1f -> %.1f MB, largest worker RSS %.1f -> %.1f MB (bound +%d MB)",
		w.fds, end.fds, soakFDBound, mb(w.masterRSS), mb(end.masterRSS), mb(w.wRSS), mb(end.wRSS), soakRSSBound>>20)
	if end.fds > w.fds+soakFDBound {
		t.Errorf("the master's descriptors grew from %d to %d", w.fds, end.fds)
	}
	if end.masterRSS > w.masterRSS+soakRSSBound || end.wRSS > w.wRSS+soakRSSBound {
		t.Errorf("RSS grew past %d MB: master %.1f -> %.1f MB, worker %.1f -> %.1f MB", soakRSSBound>>20, mb(w.masterRSS), mb(end.masterRSS), mb(w.wRSS), mb(end.wRSS))
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// soakLoad requests each host from clients goroutines each, every request
// on a new connection (one kept alive across an nginx reload may be closed
// by the old worker: that is nginx's and the client's business, not what
// the soak measures).
type soakLoad struct {
	ok   atomic.Int64
	mu   sync.Mutex
	bad  []string
	quit chan struct{}
	wg   sync.WaitGroup
}

func startSoakLoad(e *deployEnv, hosts []string, clients int) *soakLoad {
	l := &soakLoad{quit: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, host := range hosts {
		req, _ := http.NewRequest("GET", "http://"+e.listen+"/", nil)
		req.Host = host
		l.run(clients, host+": ", func() (*http.Response, error) { return client.Do(req.Clone(req.Context())) })
	}
	return l
}

// run starts clients goroutines that each send requests with do until
// stop, counting the 200s and keeping what went wrong (labelled).
func (l *soakLoad) run(clients int, label string, do func() (*http.Response, error)) {
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.quit:
					return
				default:
				}
				resp, err := do()
				if err == nil && resp.StatusCode == 200 {
					resp.Body.Close()
					l.ok.Add(1)
					continue
				}
				what := fmt.Sprint(err)
				if err == nil {
					what = resp.Status
					resp.Body.Close()
				}
				l.mu.Lock()
				l.bad = append(l.bad, time.Now().Format("15:04:05.000")+" "+label+what)
				l.mu.Unlock()
			}
		}()
	}
}

func (l *soakLoad) stop() (int64, []string) {
	close(l.quit)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok.Load(), l.bad
}
