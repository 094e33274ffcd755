package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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

func ctlClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
}

// TestControlSocket: status and apps over the control socket, which only
// the daemon's user can open.
func TestControlSocket(t *testing.T) {
	slow(t)
	ctl := filepath.Join(daemontest.Dir(t), "run", "ctl.sock")
	e, d, _ := wsgiEnv(t, []string{"--ctl", ctl}, "hello")
	for i := 0; i < 3; i++ {
		e.get(t, "hello.test", "/")
	}
	c := ctlClient(ctl)
	var st control.Status
	eventually(t, 2*time.Second, func() bool {
		resp, err := c.Get("http://pyvhost/v1/status")
		if err != nil {
			t.Fatalf("status: %v\n%s", err, d.Log())
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st.Requests == 3 // counted right after each response
	})
	if st.PID != d.PID() || st.Apps != 1 || st.RSS == 0 {
		t.Fatalf("status: %+v", st)
	}
	var apps control.Apps
	resp, err := c.Get("http://pyvhost/v1/apps")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&apps); err != nil || len(apps.Apps) != 1 || apps.Apps[0].State != "ready" || len(apps.Apps[0].Workers) == 0 {
		t.Fatalf("apps: %+v, %v", apps, err)
	}
	resp.Body.Close()
	if resp, err := c.Get("http://pyvhost/v1/nope"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("unknown endpoint: %v %v", resp, err)
	}

	for path, want := range map[string]os.FileMode{ctl: 0o600, filepath.Dir(ctl): 0o700} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), want)
		}
	}
	if os.Geteuid() == 0 {
		// Another user cannot connect.
		cmd := exec.Command("/usr/bin/python3", "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])", ctl)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("user nobody connected to the control socket: %s", out)
		}
	}
}

// TestControlSocketLeavesItsDirectory: a control socket put in an existing
// directory does not change that directory's mode (the bench puts it in
// the directory that holds the apps).
func TestControlSocketLeavesItsDirectory(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := freeAddr(t)
	daemontest.Start(t, sock, "-s", sock, "--ctl", filepath.Join(dir, "ctl.sock"), "--vhost-root", dir)
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("%s: mode %v after the daemon started, want it left at 0755", dir, st.Mode().Perm())
	}
}

// TestControlOperations: load (good, broken, refused), zero-downtime reload
// of one app ten times under load with changed code, a reload with broken
// code that keeps the old code serving, stop, and shutdown.
func TestControlOperations(t *testing.T) {
	slow(t)
	ctl := filepath.Join(daemontest.Dir(t), "run", "ctl.sock")
	e, d, paths := wsgiEnv(t, []string{"--ctl", ctl, "-p", "2"}, "hello", "broken")
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	venv := daemontest.Venv(t)
	st, err := c.Load(control.LoadRequest{Pyhome: venv, Chdir: paths["hello"], Script: "hello"})
	if err != nil || st.State != "ready" {
		t.Fatalf("load hello: %+v %v\n%s", st, err, d.Log())
	}
	_, err = c.Load(control.LoadRequest{Pyhome: venv, Chdir: paths["broken"], Script: "broken"})
	var ae *control.APIError
	if !errors.As(err, &ae) || ae.Status != 422 || !strings.Contains(ae.Traceback, "No module named 'this_module_does_not_exist'") {
		t.Fatalf("load broken: %v (want a 422 with the traceback)", err)
	}
	if first := "Traceback (most recent call last):\n  File \"" + filepath.Join(paths["broken"], "broken.py") + "\", line 2"; !strings.HasPrefix(ae.Traceback, first) {
		t.Errorf("load broken: the traceback does not start at the app's code (%q):\n%s", first, ae.Traceback)
	}
	if _, err = c.Load(control.LoadRequest{Chdir: "/etc", Script: "passwd"}); !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("load outside the roots: %v, want 403", err)
	}

	// Ten reloads with changed code under load: nothing fails, and the
	// responses switch to each new version.
	l := startLoad(e, "hello.test", 6)
	uid, gid := daemontest.AppOwner()
	file := filepath.Join(paths["hello"], "hello.py")
	// Python trusts its bytecode cache while a source's mtime (in seconds)
	// and size are unchanged: give each version a later mtime.
	base := time.Now()
	writeApp := func(v int, src string) {
		write(t, file, src)
		_ = os.Chown(file, uid, gid)
		mt := base.Add(time.Duration(v) * time.Second)
		_ = os.Chtimes(file, mt, mt)
	}
	for v := 1; v <= 10; v++ {
		writeApp(v, fmt.Sprintf("def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'version %d\\n']\n", v))
		if _, err := c.Reload(st.ID); err != nil {
			t.Fatalf("reload %d: %v\n%s", v, err, d.Log())
		}
		if code, out := e.get(t, "hello.test", "/"); code != 200 || out != fmt.Sprintf("version %d\n", v) {
			t.Fatalf("after reload %d: %d %q", v, code, out)
		}
	}
	n := l.end(t, d, "during 10 reloads")
	t.Logf("%d requests during 10 reloads, none failed", n)

	// Broken new code: the reload reports the import error, the old code serves.
	writeApp(11, "import nope_not_here\n")
	if _, err := c.Reload(st.Name); !errors.As(err, &ae) || !strings.Contains(ae.Traceback, "nope_not_here") {
		t.Fatalf("reload with broken code: %v, want the import error", err)
	}
	if code, out := e.get(t, "hello.test", "/"); code != 200 || out != "version 10\n" {
		t.Fatalf("after a failed reload: %d %q, want the old code", code, out)
	}
	if _, err := c.Reload("no-such-app"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("reload of an unknown app: %v, want 404", err)
	}

	if st, err := c.Stop(st.ID); err != nil || st.State != "stopped" {
		t.Fatalf("stop: %+v %v", st, err)
	}
	writeApp(12, "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'back\\n']\n")
	if code, out := e.get(t, "hello.test", "/"); code != 200 || out != "back\n" {
		t.Fatalf("a stopped app's next request: %d %q", code, out)
	}

	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Wait(10 * time.Second); !ok {
		t.Fatal("the daemon did not exit after shutdown")
	}
}

// TestControlCurrentRequestAndRate: apps shows what a busy worker is doing
// (method and path, never the query string) and for how long; status has
// the request rate over the last 10 s.
func TestControlCurrentRequestAndRate(t *testing.T) {
	slow(t)
	ctl := filepath.Join(daemontest.Dir(t), "run", "ctl.sock")
	e, d, _ := wsgiEnv(t, []string{"--ctl", ctl, "-p", "2"}, "slow")
	for i := 0; i < 5; i++ {
		e.get(t, "slow.test", "/quick?s=0")
	}
	go e.try("slow.test", "/sleeping?s=1.5&secret=TOKEN123")
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	var busy string
	eventually(t, 3*time.Second, func() bool {
		apps, err := c.Apps()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range apps.Apps {
			for _, w := range a.Workers {
				if w.State == "busy" && w.RequestAgeMS > 0 && w.Request != "" {
					busy = w.Request
					return true
				}
			}
		}
		return false
	})
	if busy != "GET /sleeping" {
		t.Fatalf("busy worker's request %q, want %q\n%s", busy, "GET /sleeping", d.Log())
	}
	eventually(t, 3*time.Second, func() bool {
		st, err := c.Status()
		return err == nil && st.RPS > 0
	})
}

// TestControlReloadConfig: a site added to the nginx config after start
// gets its per-app socket on reload-config, with no restart.
func TestControlReloadConfig(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	hello := daemontest.App(t, dir, "hello")
	socks := filepath.Join(dir, "apps")
	ctl := filepath.Join(dir, "run", "ctl.sock")
	echo := daemontest.App(t, dir, "envecho")
	e := startNginx(t, dir, site{"early.test", []nginxconf.AppSpec{{Socket: "unix:" + socks + "/early.sock", Venv: venv, AppDir: echo, Module: "envecho"}}})
	d := daemontest.Start(t, socks+"/early.sock", "--app-sockets", socks, "--nginx-conf", e.conf, "--ctl", ctl)
	late, err := nginxconf.Render(nginxconf.SiteSpec{Domain: "late.test", Listen: e.listen,
		Apps: []nginxconf.AppSpec{{Socket: "unix:" + socks + "/late.sock", Venv: venv, AppDir: hello, Module: "hello"}}},
		nginxconf.RenderOptions{IncludeParams: true})
	if err != nil {
		t.Fatal(err)
	}
	sites, _ := os.ReadFile(filepath.Join(dir, "sites.conf"))
	write(t, filepath.Join(dir, "sites.conf"), string(sites)+"\n"+string(late))
	e.nginx.Reload(t)
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ReloadConfig(); err != nil {
		t.Fatalf("reload-config: %v\n%s", err, d.Log())
	}
	if code, out := e.get(t, "late.test", "/"); code != 200 || !strings.Contains(out, "hello app") {
		t.Fatalf("a site added after start: %d %q\n%s", code, out, d.Log())
	}
}
