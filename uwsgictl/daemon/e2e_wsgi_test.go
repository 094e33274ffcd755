package daemon_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
	"github.com/pyvhost/pyvhost/uwsgictl/wire"
)

// wsgiEnv starts a daemon and nginx serving the named test apps, one site
// each (NAME.test), all on the shared port.
func wsgiEnv(t *testing.T, daemonArgs []string, apps ...string) (*env, *daemontest.Daemon, map[string]string) {
	t.Helper()
	return wsgiEnvWith(t, nil, daemonArgs, apps...)
}

// wsgiEnvWith is wsgiEnv with environ added to the daemon's environment.
func wsgiEnvWith(t *testing.T, environ, daemonArgs []string, apps ...string) (*env, *daemontest.Daemon, map[string]string) {
	t.Helper()
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	sock := freeAddr(t)
	paths := map[string]string{}
	var sites []site
	for _, name := range apps {
		module := name
		if name == "flaskapp" {
			module = "flaskapp:app"
		}
		p := daemontest.App(t, dir, name)
		paths[name] = p
		sites = append(sites, site{name + ".test", []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: p, Module: module}}})
	}
	args := append([]string{"-s", sock, "--vhost-root", dir, "--vhost-root", filepath.Dir(venv)}, daemonArgs...)
	d := daemontest.StartEnv(t, environ, sock, args...)
	return startNginx(t, dir, sites...), d, paths
}

// requestPaths are the workers' two request paths: the C one, and the pure
// Python one they run without a C compiler (or with --no-speedups).
var requestPaths = []struct {
	name string
	args []string
}{
	{"C", nil},
	{"python", []string{"--no-speedups"}},
}

// wantRequestPath fails t unless the daemon's workers ran the request path
// named (requestPaths).
func wantRequestPath(t *testing.T, d *daemontest.Daemon, name string) {
	t.Helper()
	log := d.Log()
	usedC := (strings.Contains(log, "C speedups built in ") || strings.Contains(log, "C speedups in ")) &&
		!strings.Contains(log, "C speedups not")
	if usedC != (name == "C") {
		t.Errorf("the workers did not run the %s request path:\n%s", name, log)
	}
}

// TestWSGIValidated: requests through nginx to an app wrapped in
// wsgiref.validate.validator, GET and POST, on both request paths.
func TestWSGIValidated(t *testing.T) {
	slow(t)
	for _, rp := range requestPaths {
		t.Run(rp.name, func(t *testing.T) {
			e, d, _ := wsgiEnv(t, rp.args, "envecho")
			body := strings.Repeat("posted body ", 1000)
			code, out := e.do(t, "POST", "envecho.test", "/form?x=1", strings.NewReader(body))
			var env map[string]any
			if code != 200 || json.Unmarshal([]byte(out), &env) != nil {
				t.Fatalf("POST: %d %q\n%s", code, out, d.Log())
			}
			sum := sha256.Sum256([]byte(body))
			if env["body_len"].(float64) != float64(len(body)) || env["body_sha256"] != hex.EncodeToString(sum[:]) {
				t.Errorf("the app read %v bytes (%v), want %d", env["body_len"], env["body_sha256"], len(body))
			}
			if env["REQUEST_METHOD"] != "POST" || env["CONTENT_LENGTH"] != fmt.Sprint(len(body)) || env["QUERY_STRING"] != "x=1" {
				t.Errorf("environ: %v", env)
			}
			if code, _ := e.get(t, "envecho.test", "/get"); code != 200 {
				t.Errorf("GET: %d", code)
			}
			d.WaitLog(t, "GET /get => generated", 5*time.Second) // the workers' lines before it are in too
			if strings.Contains(d.Log(), "AssertionError") || strings.Contains(d.Log(), "WSGIWarning") {
				t.Errorf("the validator complained:\n%s", d.Log())
			}
			wantRequestPath(t, d, rp.name)
		})
	}
}

// TestLargeBodiesStreamingAndFiles: a 100 MB upload read in chunks, a
// 50 MB streamed download, wsgi.file_wrapper, write(), and a generator
// whose chunks arrive as produced and whose close() is always called, on
// both request paths.
func TestLargeBodiesStreamingAndFiles(t *testing.T) {
	slow(t)
	for _, rp := range requestPaths {
		t.Run(rp.name, func(t *testing.T) { testLargeBodiesStreamingAndFiles(t, rp.args) })
	}
}

func testLargeBodiesStreamingAndFiles(t *testing.T, daemonArgs []string) {
	e, d, paths := wsgiEnv(t, daemonArgs, "bigio", "stream")
	up := make([]byte, 100<<20)
	if _, err := rand.Read(up); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(up)
	code, out := e.do(t, "POST", "bigio.test", "/upload", bytes.NewReader(up))
	if want := fmt.Sprintf("%d %s\n", len(up), hex.EncodeToString(sum[:])); code != 200 || out != want {
		t.Fatalf("upload: %d %q, want %q\n%s", code, out, want, d.Log())
	}
	code, out = e.get(t, "bigio.test", "/download?mb=50")
	if code != 200 || len(out) != 50<<20 || out[:16] != "0123456789abcdef" {
		t.Fatalf("download: %d, %d bytes", code, len(out))
	}
	if code, out = e.get(t, "bigio.test", "/file"); code != 200 || out != strings.Repeat("file-wrapper ", 10000) {
		t.Fatalf("file_wrapper: %d, %d bytes", code, len(out))
	}
	if code, out = e.get(t, "bigio.test", "/write"); code != 200 || out != "written then returned\n" {
		t.Fatalf("write(): %d %q", code, out)
	}
	if code, out = e.get(t, "stream.test", "/"); code != 200 || out != "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n" {
		t.Fatalf("stream: %d %q", code, out)
	}
	checkFirstChunkFirst(t, e, paths["stream"])
	deadline := time.Now().Add(2 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(paths["stream"], "closed.marker")); err == nil && string(b) == "closed\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the response's close() was not called")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkFirstChunkFirst: a generator's first chunk reaches the client
// while the generator is still running — it waits for the client to say it
// has the chunk — not once it ends.
func checkFirstChunkFirst(t *testing.T, e *env, appDir string) {
	t.Helper()
	marker := filepath.Join(appDir, "go.marker")
	os.Remove(marker)
	req, _ := http.NewRequest("GET", "http://"+e.listen+"/gated", nil)
	req.Host = "stream.test"
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("first\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first\n" {
		t.Fatalf("the first chunk: %q %v", first, err)
	}
	write(t, marker, "go\n") // only now may the generator go on
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "released\n" {
		t.Fatalf("after the first chunk: %q %v, want \"released\" (the chunk came only when the generator had timed out)", rest, err)
	}
}

// TestFlaskAndDjango: real frameworks from Debian's packages, through a
// venv made with --system-site-packages.
func TestFlaskAndDjango(t *testing.T) {
	slow(t)
	e, d, _ := wsgiEnv(t, nil, "flaskapp")
	if code, out := e.get(t, "flaskapp.test", "/"); code != 200 || out != "Hello from Flask at flaskapp.test/\n" {
		t.Fatalf("flask: %d %q\n%s", code, out, d.Log())
	}
	if code, out := e.do(t, "POST", "flaskapp.test", "/echo", strings.NewReader("round trip")); code != 200 || out != "round trip" {
		t.Fatalf("flask POST: %d %q", code, out)
	}

	// Django: a fresh project, as a user would make it.
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	cmd := exec.Command(filepath.Join(venv, "bin", "python"), "-m", "django", "startproject", "mysite", filepath.Join(dir, "mysite"))
	if err := os.MkdirAll(filepath.Join(dir, "mysite"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("django startproject: %v\n%s (make test installs python3-django)", err, out)
	}
	settings := filepath.Join(dir, "mysite", "mysite", "settings.py")
	b, _ := os.ReadFile(settings)
	write(t, settings, strings.Replace(string(b), "ALLOWED_HOSTS = []", "ALLOWED_HOSTS = ['django.test']", 1))
	uid, gid := daemontest.AppOwner()
	_ = filepath.Walk(filepath.Join(dir, "mysite"), func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
	sock := freeAddr(t)
	dd := daemontest.Start(t, sock, "-s", sock, "--vhost-root", dir, "--vhost-root", filepath.Dir(venv))
	de := startNginx(t, dir, site{"django.test", []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: filepath.Join(dir, "mysite"), Module: "mysite.wsgi:application"}}})
	code, out := de.get(t, "django.test", "/admin/login/")
	if code != 200 || !strings.Contains(out, "Django") {
		t.Fatalf("django admin login: %d %.300q\n%s", code, out, dd.Log())
	}
}

// TestWSGIErrorPaths: exceptions and protocol misuse get proper answers and
// a traceback in the log, and the worker keeps serving, on both request paths.
func TestWSGIErrorPaths(t *testing.T) {
	slow(t)
	for _, rp := range requestPaths {
		t.Run(rp.name, func(t *testing.T) { testWSGIErrorPaths(t, rp.args) })
	}
}

func testWSGIErrorPaths(t *testing.T, daemonArgs []string) {
	e, d, paths := wsgiEnv(t, daemonArgs, "errors")
	tests := []struct {
		path   string
		status int
		body   string // prefix
	}{
		{"/raise", 500, "500 Internal Server Error"},
		{"/excinfo", 503, "replaced"},
		{"/nostart", 500, "500 Internal Server Error"},
		{"/empty", 204, ""},
		{"/", 200, "ok"},
	}
	for _, tc := range tests {
		code, out := e.get(t, "errors.test", tc.path)
		if code != tc.status || !strings.HasPrefix(out, tc.body) {
			t.Errorf("%s: %d %q, want %d %q\n%s", tc.path, code, out, tc.status, tc.body, d.Log())
		}
	}
	// After the headers went out the response can only be cut short, and
	// the client must see it cut: the worker resets the connection, so
	// nginx never ends the chunked body (what arrived is a prefix).
	req, _ := http.NewRequest("GET", "http://"+e.listen+"/after", nil)
	req.Host = "errors.test"
	if resp, err := e.client.Do(req); err == nil {
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || err == nil || !strings.HasPrefix("partial ", string(b)) {
			t.Errorf("/after: %d %q (read error %v), want a 200 cut short after at most %q", resp.StatusCode, b, err, "partial ")
		}
	}
	for _, want := range []string{"boom before start_response", "boom after the headers", "the app did not call start_response"} {
		d.WaitLog(t, want, 5*time.Second)
	}
	// The app's traceback starts at its own code, not in pyvhost's worker.
	d.WaitLog(t, " raised:\nTraceback (most recent call last):\n  File \""+filepath.Join(paths["errors"], "errors.py")+"\"", time.Second)
	if strings.Contains(d.Log(), "pyvhost_worker") {
		t.Errorf("a traceback shows pyvhost's worker frames:\n%s", d.Log())
	}
	if code, _ := e.get(t, "errors.test", "/"); code != 200 {
		t.Fatalf("worker no longer serves: %d", code)
	}
}

// TestAppsOnEveryPython: one daemon serves the same app under each Python
// 3.8+ on the machine, each from a venv of that interpreter, side by side
// through nginx, and every worker runs the one abi3 build of the C path.
func TestAppsOnEveryPython(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	app := daemontest.App(t, dir, "envecho")
	sock := freeAddr(t)
	want := map[string]string{} // host -> Python version
	var sites []site
	pythons := daemontest.Pythons(t)
	for _, py := range pythons {
		venv := filepath.Join(dir, "venv"+py.Version)
		if out, err := exec.Command(py.Path, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
			t.Fatalf("%s -m venv: %v\n%s", py.Path, err, out)
		}
		host := "py" + strings.ReplaceAll(py.Version, ".", "") + ".test"
		want[host] = py.Version
		sites = append(sites, site{host, []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: app, Module: "envecho"}}})
	}
	// A Python under /root (pyenv's): nobody may not run it.
	private := ""
	if os.Geteuid() == 0 {
		for _, py := range pythons {
			if real, err := filepath.EvalSymlinks(py.Path); err == nil && strings.HasPrefix(real, "/root/") {
				venv := filepath.Join(dir, "venv-private")
				if out, err := exec.Command(py.Path, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
					t.Fatalf("%s -m venv: %v\n%s", py.Path, err, out)
				}
				private = real
				sub := filepath.Join(dir, "nobody")
				if err := os.Mkdir(sub, 0o755); err != nil {
					t.Fatal(err)
				}
				sites = append(sites, site{"private.test", []nginxconf.AppSpec{{Socket: sock, Venv: venv,
					AppDir: daemontest.App(t, sub, "envecho"), Module: "envecho"}}})
				break
			}
		}
	}
	// pyenv's interpreters live under /root (mode 0700): apps that run them
	// must run as root, so the app directory is root's.
	d := daemontest.Start(t, sock, append([]string{"-s", sock, "--vhost-root", dir}, rootAppArgs(t, app)...)...)
	e := startNginx(t, dir, sites...)
	for host, version := range want {
		code, out := e.get(t, host, "/")
		var env map[string]any
		if code != 200 || json.Unmarshal([]byte(out), &env) != nil {
			t.Fatalf("%s: %d %.200q\n%s", host, code, out, d.Log())
		}
		if env["python"] != version {
			t.Errorf("%s answered from Python %v, want %s", host, env["python"], version)
		}
	}
	if log := d.Log(); strings.Contains(log, "C speedups not") || strings.Contains(log, "WSGIWarning") {
		t.Errorf("a worker did not load the C path, or the validator complained:\n%s", log)
	}
	if private != "" {
		// The same app as nobody, from a venv whose interpreter lies under
		// /root: a 500, and a log line that says why.
		code, _ := e.get(t, "private.test", "/")
		if code != 500 {
			t.Errorf("an app whose user cannot run its interpreter: %d, want 500", code)
		}
		d.WaitLog(t, "may not run it (it is "+private, 5*time.Second)
	}
}

// TestSlowClientLeavesAppThreadsRunning: while a worker waits for a slow
// client's packet, the app's own threads keep running (the C path lets go
// of the GIL around the socket calls), on both request paths.
func TestSlowClientLeavesAppThreadsRunning(t *testing.T) {
	slow(t)
	for _, rp := range requestPaths {
		t.Run(rp.name, func(t *testing.T) {
			dir := daemontest.Dir(t)
			venv := daemontest.Venv(t)
			app := daemontest.App(t, dir, "ticker")
			sock := freeAddr(t)
			d := daemontest.Start(t, sock, append([]string{"-s", sock, "--vhost-root", dir, "--vhost-root", filepath.Dir(venv)}, rp.args...)...)
			pkt, _ := wire.Encode(0, 0, []wire.Var{{Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"},
				{Key: "UWSGI_PYHOME", Value: venv}, {Key: "UWSGI_CHDIR", Value: app}, {Key: "UWSGI_SCRIPT", Value: "ticker"}})
			ticks := func(r string) int {
				_, body, _ := strings.Cut(r, "\r\n\r\n")
				n, err := strconv.Atoi(body)
				if err != nil || !strings.HasPrefix(r, "HTTP/1.1 200") {
					t.Fatalf("ticker: %q\n%s", r, d.Log())
				}
				return n
			}
			ticks(rawRequest(t, sock, pkt)) // starts the thread
			time.Sleep(100 * time.Millisecond)
			before := ticks(rawRequest(t, sock, pkt))
			// A client that sends half its packet, then waits 500 ms.
			c, err := net.Dial("tcp", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(pkt[:len(pkt)/2]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			if _, err := c.Write(pkt[len(pkt)/2:]); err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(c)
			during := ticks(string(b)) - before
			// ~500 ticks of 1 ms (fewer on a busy machine); a held GIL
			// would leave a handful.
			if during < 150 {
				t.Errorf("the app's thread ticked %d times while the worker waited 500 ms for the client", during)
			}
		})
	}
}

// rootAppArgs gives app to root when the tests run as root, and returns
// the daemon flag that lets root-owned apps run: pyenv's interpreters live
// under /root (mode 0700), so only root can run the apps that use them.
func rootAppArgs(t *testing.T, app string) []string {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	if err := filepath.WalkDir(app, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 0, 0)
	}); err != nil {
		t.Fatal(err)
	}
	return []string{"--allow-root-apps"}
}
