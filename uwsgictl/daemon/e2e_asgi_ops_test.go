package daemon_test

import (
	"fmt"
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
