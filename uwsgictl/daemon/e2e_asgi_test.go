package daemon_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
// with JSON answers. On both request paths (exchange.py's Exchange in C
// and in Python).
func TestASGIStarletteAndFastAPI(t *testing.T) {
	slow(t)
	for _, rp := range requestPaths {
		t.Run(rp.name, func(t *testing.T) { testASGIStarletteAndFastAPI(t, rp.args) })
	}
}

func testASGIStarletteAndFastAPI(t *testing.T, daemonArgs []string) {
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	app := daemontest.App(t, dir, "asgi")
	socks := filepath.Join(dir, "socks")
	e := startNginx(t, dir, asgiSite("star.test", socks, venv, app, "starletteapp:app"),
		asgiSite("fast.test", socks, venv, app, "fastapiapp:app"))
	ctl := filepath.Join(dir, "ctl.sock")
	d := daemontest.Start(t, socks+"/star.test.sock", append([]string{"--app-sockets", socks, "--nginx-conf", e.conf, "-p", "2", "--ctl", ctl}, daemonArgs...)...)

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
// query string and raw path as bytes, the body, and the lifespan state;
// on both request paths (the scope made in C and in Python).
func TestASGIScope(t *testing.T) {
	slow(t)
	for _, rp := range requestPaths {
		t.Run(rp.name, func(t *testing.T) { testASGIScope(t, rp.name, rp.args) })
	}
}

func testASGIScope(t *testing.T, name string, daemonArgs []string) {
	e, d, _ := serveASGI(t, "bare.test", "bare:app", daemonArgs...)
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
	wantRequestPath(t, d, name)
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
