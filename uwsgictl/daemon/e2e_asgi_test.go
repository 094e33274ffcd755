package daemon_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// asgiSite is one domain served by an ASGI app of testdata/apps/asgi.
func asgiSite(domain, socks, venv, dir, module string) site {
	return site{domain, []nginxconf.AppSpec{{Socket: "unix:" + socks + "/" + domain + ".sock", Venv: venv, AppDir: dir, Module: module}}}
}

// serveASGI serves module of a copy of testdata/apps/asgi as domain, on
// its per-app socket, through a private nginx and a daemon run with args;
// it returns the copy's directory too.
func serveASGI(t *testing.T, domain, module string, args ...string) (*env, *daemontest.Daemon, string) {
	t.Helper()
	dir := daemontest.Dir(t)
	app := daemontest.App(t, dir, "asgi")
	socks := filepath.Join(dir, "socks")
	e := startNginx(t, dir, asgiSite(domain, socks, daemontest.Venv(t), app, module))
	d := daemontest.Start(t, socks+"/"+domain+".sock", append([]string{"--app-sockets", socks, "--nginx-conf", e.conf}, args...)...)
	return e, d, app
}

// tune replaces old by new in nginx's main config and reloads it.
func (e *env) tune(t *testing.T, old, new string) {
	t.Helper()
	conf, err := os.ReadFile(e.conf)
	if err != nil || !strings.Contains(string(conf), old) {
		t.Fatalf("nginx.conf lacks %q: %v", old, err)
	}
	write(t, e.conf, strings.Replace(string(conf), old, new, 1))
	e.nginx.Reload(t)
}

// TestASGIStarletteAndFastAPI: real Starlette and FastAPI apps (Debian's,
// through the venv's system site packages), detected as ASGI and served
// through nginx by the same per-app pools: lifespan state in each
// request, a streaming response, a 100 MB upload read as it arrives, a
// request that sees http.disconnect when the client goes, an app's
// exception as a 500 with its traceback logged; a reload that runs the old
// worker's lifespan shutdown; FastAPI's path, query and body parameters
// with JSON answers.
func TestASGIStarletteAndFastAPI(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	app := daemontest.App(t, dir, "asgi")
	socks := filepath.Join(dir, "socks")
	e := startNginx(t, dir, asgiSite("star.test", socks, venv, app, "starletteapp:app"),
		asgiSite("fast.test", socks, venv, app, "fastapiapp:app"))
	ctl := filepath.Join(dir, "ctl.sock")
	d := daemontest.Start(t, socks+"/star.test.sock", "--app-sockets", socks, "--nginx-conf", e.conf, "-p", "2", "--ctl", ctl)

	code, body := e.get(t, "star.test", "/?x=1")
	var home map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &home) != nil || home["greeting"] != "hello from lifespan" ||
		home["scheme"] != "http" || home["path"] != "/" {
		t.Fatalf("GET /: %d %q\n%s", code, body, d.Log())
	}
	if code, body := e.get(t, "star.test", "/stream?n=50"); code != 200 || strings.Count(body, "\n") != 50 || !strings.HasPrefix(body, "chunk 0\n") {
		t.Errorf("the streaming response: %d, %d lines", code, strings.Count(body, "\n"))
	}

	// 100 MB up, its checksum back: the body arrives in http.request
	// messages as the app reads them.
	upload := bytes.Repeat([]byte("0123456789abcdef"), 100<<20/16)
	sum := sha256.Sum256(upload)
	code, body = e.do(t, "POST", "star.test", "/upload", bytes.NewReader(upload))
	if code != 200 || !strings.Contains(body, hex.EncodeToString(sum[:])) || !strings.Contains(body, `"size":104857600`) {
		t.Errorf("100 MB upload: %d %q", code, body)
	}

	// The client goes away while the app waits: the app sees http.disconnect.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+e.listen+"/wait-gone", nil)
	req.Host = "star.test"
	if resp, err := e.client.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("/wait-gone answered %s before the client left", resp.Status)
	}
	cancel()
	eventually(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(app, "disconnected"))
		return strings.Contains(string(b), "http.disconnect")
	})

	if code, _ := e.get(t, "star.test", "/boom"); code != 500 {
		t.Errorf("an app's exception: %d, want 500", code)
	}
	d.WaitLog(t, "RuntimeError: boom in an ASGI view", 5*time.Second)

	// A reload stops the old worker: its lifespan shutdown runs.
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reload("star.test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(app, "shutdown-*"))
		return len(m) > 0
	})

	if code, body := e.get(t, "fast.test", "/items/5?q=somequery"); code != 200 || body != `{"item_id":5,"q":"somequery"}` {
		t.Errorf("FastAPI path and query parameters: %d %q", code, body)
	}
	code, body = e.do(t, "POST", "fast.test", "/items/7", strings.NewReader(`{"name": "Foo", "price": 3.5, "tags": ["a"]}`))
	if code != 200 || body != `{"item_id":7,"name":"Foo","price":3.5,"tags":["a"]}` {
		t.Errorf("FastAPI body parameter: %d %q", code, body)
	}
	if code, body := e.do(t, "POST", "fast.test", "/items/x", strings.NewReader(`{}`)); code != 422 || !strings.Contains(body, "value is not a valid integer") {
		t.Errorf("FastAPI validation: %d %q", code, body)
	}
}

// TestASGIScope: a bare ASGI app sees the scope the spec describes, from
// nginx's vars: the headers lower-cased, the client and the server, the
// query string and raw path as bytes, the body, and the lifespan state.
func TestASGIScope(t *testing.T) {
	slow(t)
	e, d, _ := serveASGI(t, "bare.test", "bare:app")
	req, _ := http.NewRequest("PUT", "http://"+e.listen+"/a%20b/c?x=1&y=%C3%A9", strings.NewReader("the body"))
	req.Host = "bare.test"
	req.Header.Set("X-Custom-Thing", "Value")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var scope struct {
		Type, Method, Scheme, Path, RawPath, QueryString, RootPath, HTTPVersion, Body string
		Asgi                                                                          map[string]string
		Headers                                                                       [][2]string
		Client, Server                                                                []any
		State                                                                         map[string]any
	}
	if err := json.Unmarshal(b, &scope); err != nil {
		t.Fatalf("%s %q\n%s", resp.Status, b, d.Log())
	}
	// encoding/json matches field names case-insensitively, not snake_case:
	var raw map[string]any
	_ = json.Unmarshal(b, &raw)
	checks := []struct{ name, got, want string }{
		{"type", scope.Type, "http"}, {"method", scope.Method, "PUT"}, {"scheme", scope.Scheme, "http"},
		{"path", scope.Path, "/a b/c"}, {"raw_path", raw["raw_path"].(string), "/a%20b/c"},
		{"query_string", raw["query_string"].(string), "x=1&y=%C3%A9"}, {"root_path", raw["root_path"].(string), ""},
		{"http_version", raw["http_version"].(string), "1.1"}, {"body", scope.Body, "the body"},
		{"asgi.version", scope.Asgi["version"], "3.0"}, {"asgi.spec_version", scope.Asgi["spec_version"], "2.4"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("scope %s = %q, want %q", c.name, c.got, c.want)
		}
	}
	headers := map[string]string{}
	for _, h := range scope.Headers {
		headers[h[0]] = h[1]
	}
	if headers["x-custom-thing"] != "Value" || headers["host"] != "bare.test" || headers["content-length"] != "8" {
		t.Errorf("scope headers: %v", scope.Headers)
	}
	if len(scope.Client) != 2 || scope.Client[0] != "127.0.0.1" || len(scope.Server) != 2 || scope.Server[0] != "bare.test" {
		t.Errorf("scope client %v, server %v", scope.Client, scope.Server)
	}
	if scope.State["ready"] != true {
		t.Errorf("the lifespan state did not reach the request: %v", scope.State)
	}
}

// TestASGIWithoutLifespan: an app that raises on the lifespan scope runs
// without it (the log says so once per worker).
func TestASGIWithoutLifespan(t *testing.T) {
	slow(t)
	e, d, _ := serveASGI(t, "nolife.test", "nolife:app")
	if code, body := e.get(t, "nolife.test", "/"); code != 200 || body != "no lifespan here" {
		t.Fatalf("%d %q\n%s", code, body, d.Log())
	}
	d.WaitLog(t, "the app does not support ASGI lifespan (ValueError: this app serves HTTP only, not 'lifespan'): it runs without it", 5*time.Second)
}

// TestASGILifespanFailure: an app whose lifespan startup fails is an app
// that failed to load, with its traceback: ctl load says so.
func TestASGILifespanFailure(t *testing.T) {
	slow(t)
	ctl := filepath.Join(daemontest.Dir(t), "ctl.sock")
	e, d, app := serveASGI(t, "fail.test", "failstart:app", "--ctl", ctl)
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Load(control.LoadRequest{Pyhome: daemontest.Venv(t), Chdir: app, Script: "failstart:app"})
	if err == nil || !strings.Contains(err.Error(), "ConnectionRefusedError: cannot reach the database") {
		t.Fatalf("ctl load of an app whose lifespan startup fails: %v\n%s", err, d.Log())
	}
	if code, _ := e.get(t, "fail.test", "/"); code < 500 {
		t.Errorf("a request to it: %d, want an error", code)
	}
}

// TestASGIConcurrency: one ASGI worker serves 1,000 requests at once, each
// awaiting asyncio.sleep(0.5), in well under 2 s: its event loop overlaps
// them (a WSGI worker would take 500 s).
func TestASGIConcurrency(t *testing.T) {
	slow(t)
	e, d, _ := serveASGI(t, "star.test", "starletteapp:app", "-p", "1")
	e.tune(t, "worker_connections 256;", "worker_connections 4096;")
	if code, body := e.get(t, "star.test", "/sleep?s=0"); code != 200 {
		t.Fatalf("warm-up: %d %q\n%s", code, body, d.Log())
	}
	const n = 1000
	type answer struct {
		code int
		body string
		err  error
	}
	answers := make(chan answer, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			code, body, err := e.try("star.test", "/sleep?s=0.5")
			answers <- answer{code, body, err}
		}()
	}
	pids := map[string]int{}
	for i := 0; i < n; i++ {
		a := <-answers
		if a.err != nil || a.code != 200 || !strings.HasPrefix(a.body, "slept ") {
			t.Fatalf("request %d: %d %q %v\n%s", i, a.code, a.body, a.err, d.Log())
		}
		pids[strings.TrimSpace(a.body)]++
	}
	took := time.Since(start)
	t.Logf("%d concurrent sleeping requests in %s, by %v", n, took, pids)
	if len(pids) != 1 {
		t.Errorf("answered by %d workers, want one", len(pids))
	}
	if took > 2*time.Second {
		t.Errorf("%d requests of 0.5 s each took %s on one worker: they did not overlap", n, took)
	}
}

// TestASGIHarakiri: -t counts from a request's last progress: one that
// awaits with nothing sent for longer is killed with its worker (nginx
// answers 502); a response streaming a chunk every 0.5 s for 4 s is not.
func TestASGIHarakiri(t *testing.T) {
	slow(t)
	e, d, _ := serveASGI(t, "star.test", "starletteapp:app", "-t", "2", "-p", "1")
	if code, body := e.get(t, "star.test", "/stream?n=8&delay=0.5"); code != 200 || strings.Count(body, "chunk") != 8 {
		t.Fatalf("a slow stream under -t 2: %d %q\n%s", code, body, d.Log())
	}
	if code, _ := e.get(t, "star.test", "/sleep?s=10"); code != 502 {
		t.Errorf("a request stuck past -t 2: %d, want nginx's 502 for the killed worker", code)
	}
	d.WaitLog(t, "*** HARAKIRI ON app", 5*time.Second)
	if code, body := e.get(t, "star.test", "/sleep?s=0"); code != 200 {
		t.Errorf("after the harakiri: %d %q", code, body)
	}
}

// TestASGISharedPort: the seed's set-up — every app on one shared uwsgi
// port — with an ASGI app beside a WSGI one: a worker that takes the
// other app's request hands it to the daemon, which hands it on (to the
// ASGI worker's event loop, or back to a WSGI worker); both answer every
// time, whoever accepted.
func TestASGISharedPort(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	asgiDir := daemontest.App(t, dir, "asgi")
	hello := daemontest.App(t, dir, "hello")
	sock := freeAddr(t)
	e := startNginx(t, dir,
		site{"bare.test", []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: asgiDir, Module: "bare:app"}}},
		site{"hello.test", []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: hello, Module: "hello"}}})
	d := daemontest.Start(t, sock, "-s", sock, "--vhost-root", dir, "--vhost-root", filepath.Dir(venv), "-p", "2")
	for i := 0; i < 40; i++ {
		if code, body := e.get(t, "bare.test", "/n"); code != 200 || !strings.Contains(body, `"path": "/n"`) {
			t.Fatalf("request %d to the ASGI app: %d %q\n%s", i, code, body, d.Log())
		}
		if code, body := e.get(t, "hello.test", "/"); code != 200 || !strings.Contains(body, "hello app") {
			t.Fatalf("request %d to the WSGI app: %d %q\n%s", i, code, body, d.Log())
		}
	}
}

// TestASGIRecycle: -R N recycles an ASGI worker after N requests (its
// lifespan shut down, no request failed, no crash in the log).
func TestASGIRecycle(t *testing.T) {
	slow(t)
	e, d, app := serveASGI(t, "star.test", "starletteapp:app", "-R", "5", "-p", "1")
	pids := map[string]bool{}
	for i := 0; i < 20; i++ {
		code, body := e.get(t, "star.test", "/sleep?s=0")
		if code != 200 {
			t.Fatalf("request %d: %d %q\n%s", i, code, body, d.Log())
		}
		pids[body] = true
	}
	if len(pids) < 3 {
		t.Errorf("20 requests with -R 5 were served by %d workers", len(pids))
	}
	eventually(t, 10*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(app, "shutdown-*"))
		return len(m) >= 3
	})
	if log := d.Log(); strings.Contains(log, "Traceback") || strings.Contains(log, " died ") {
		t.Errorf("a recycled ASGI worker did not exit cleanly:\n%s", log)
	}
}

// TestASGIOnEveryPython: an ASGI app (lifespan state, HTTP, a WebSocket)
// under every Python 3.8+ found here, from one daemon: the worker is
// standard library only and Python 3.8+.
func TestASGIOnEveryPython(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	sub := filepath.Join(dir, "apps")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	app := daemontest.App(t, sub, "asgi")
	sock := freeAddr(t)
	want := map[string]string{}
	var sites []site
	for _, py := range daemontest.Pythons(t) {
		venv := filepath.Join(dir, "venv"+py.Version)
		if out, err := exec.Command(py.Path, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
			t.Fatalf("%s -m venv: %v\n%s", py.Path, err, out)
		}
		host := "asgi" + strings.ReplaceAll(py.Version, ".", "") + ".test"
		want[host] = py.Version
		sites = append(sites, site{host, []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: app, Module: "pyver:app"}}})
	}
	d := daemontest.Start(t, sock, append([]string{"-s", sock, "--vhost-root", dir}, rootAppArgs(t, app)...)...)
	e := startNginx(t, dir, sites...)
	_, port, _ := strings.Cut(e.listen, ":")
	for host, version := range want {
		if code, body := e.get(t, host, "/"); code != 200 || body != version+" "+version {
			t.Errorf("%s: %d %q, want Python %s with its lifespan state\n%s", host, code, body, version, d.Log())
		}
		out, err := exec.Command("/usr/bin/python3", filepath.Join("..", "..", "testdata", "asgi", "ws_cases.py"), port, "0", host).CombinedOutput()
		if err != nil || string(out) != version+" hello\n" {
			t.Errorf("%s: a WebSocket: %v %q", host, err, out)
		}
	}
	t.Logf("ASGI on Pythons %v", want)
}

// TestFaultASGIWorkerKilled: an ASGI worker killed (SIGKILL) with
// requests in flight: those get nginx's 502 (none hangs), the daemon logs
// the death and respawns the worker, and the next request is answered by
// the new one.
func TestFaultASGIWorkerKilled(t *testing.T) {
	slow(t)
	ctl := filepath.Join(daemontest.Dir(t), "ctl.sock")
	e, d, _ := serveASGI(t, "star.test", "starletteapp:app", "-p", "1", "--ctl", ctl)
	code, body := e.get(t, "star.test", "/sleep?s=0")
	var pid int
	if _, err := fmt.Sscanf(body, "slept %d", &pid); code != 200 || err != nil {
		t.Fatalf("warm-up: %d %q %v\n%s", code, body, err, d.Log())
	}
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	codes := make(chan int, 20)
	for i := 0; i < 20; i++ {
		go func() {
			code, _, _ := e.try("star.test", "/sleep?s=3")
			codes <- code
		}()
	}
	eventually(t, 5*time.Second, func() bool { // the worker has requests in hand
		apps, err := c.Apps()
		return err == nil && len(apps.Apps) == 1 && len(apps.Apps[0].Workers) == 1 && apps.Apps[0].Workers[0].State == "busy"
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := 0
	for i := 0; i < 20; i++ {
		switch code := <-codes; code {
		case 502:
			killed++
		case 200: // reached nginx after the kill: the new worker answered
		default:
			t.Errorf("a request across the kill: %d, want 502 (in flight) or 200 (after)", code)
		}
	}
	if killed == 0 {
		t.Error("no request was in flight on the killed worker")
	}
	d.WaitLog(t, fmt.Sprintf("worker pid %d died", pid), 5*time.Second)
	if code, body := e.get(t, "star.test", "/sleep?s=0"); code != 200 || strings.Contains(body, fmt.Sprint(pid)) {
		t.Errorf("after the kill: %d %q, want an answer from a new worker", code, body)
	}
}
