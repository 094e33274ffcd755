package deployer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
)

func TestLockExcludesASecondDeploy(t *testing.T) {
	state := t.TempDir()
	l, err := TakeLock(state)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TakeLock(state); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("another deploy is running (pid %d", os.Getpid())) {
		t.Fatalf("second lock: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	r, err := TakeLockFor(state, "the daemon's certificate renewal")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TakeLock(state); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("the daemon's certificate renewal is running (pid %d", os.Getpid())) {
		t.Fatalf("a deploy during a renewal: %v", err)
	}
	r.Release()
	l2, err := TakeLock(state)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

func TestReleasesKeepTheLastTen(t *testing.T) {
	state := t.TempDir()
	for i := 1; i <= 13; i++ {
		r, err := RecordRelease(state, Release{Spec: nginxconf.SiteSpec{Domain: "*.example.com"}, File: "/etc/x.conf", Config: []byte(fmt.Sprintf("config %d\r\n", i))})
		if err != nil || r.N != i {
			t.Fatalf("release %d: %+v %v", i, r, err)
		}
	}
	all, err := Releases(state, "*.example.com")
	if err != nil || len(all) != KeepReleases || all[0].N != 4 || string(all[9].Config) != "config 13\r\n" {
		t.Fatalf("releases: %d %v", len(all), err)
	}
	if none, err := Releases(state, "other.test"); err != nil || len(none) != 0 {
		t.Fatalf("no releases: %v %v", none, err)
	}
}

func TestSmokeTest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nginx")
	}
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", nginxtest.FreePort(t))
	conf := filepath.Join(dir, "nginx.conf")
	body := fmt.Sprintf(`server { listen %[1]s; server_name ok.test; location / { return 200 "fine"; } }
server { listen %[1]s; server_name broken.test; location / { uwsgi_pass unix:%[2]s/none.sock; } }
server { listen %[1]s; server_name redir.test;
    location = / { return 301 /a; } location = /a { return 302 http://redir.test/b; } location = /b { return 200 "at b"; }
    location = /loop { return 302 /loop; } location = /bad { return 301 /oops; } location = /oops { return 500 "boom"; }
    location = /away { return 302 https://sso.example/login; } location = /denied { return 400 "DisallowedHost"; } }`, addr, dir)
	if err := os.WriteFile(conf, []byte(nginxtest.MainConf(dir, body)), 0o644); err != nil {
		t.Fatal(err)
	}
	nginxtest.Start(t, conf, addr)
	ctx := context.Background()
	smoke := func(host, path string, strict bool, timeout time.Duration, served ServedCount) (int, error) {
		return Smoke{Addr: addr, Host: host, Path: path, Timeout: timeout, Served: served, Strict: strict}.Run(ctx)
	}
	for _, tc := range []struct {
		host, path string
		strict     bool
		wantCode   int
		wantErr    string // "" = passes
	}{
		{"ok.test", "/", false, 200, ""},
		{"redir.test", "/", false, 200, ""},                // 301 -> /a -> 302 (absolute, same site) -> /b: 200
		{"redir.test", "/away", false, 302, ""},            // off the site: the app answered sanely
		{"redir.test", "/away", true, 302, "off the site"}, // a --smoke-path must end in a 2xx
		{"redir.test", "/loop", false, 302, "more than 5 redirects"},
		{"redir.test", "/bad", false, 500, "/oops, then 500 Internal Server Error: boom"},
		{"redir.test", "/denied", false, 400, "answered 400 Bad Request: DisallowedHost"},
	} {
		n := uint64(0)
		app := func() (uint64, error) { n++; return n, nil } // every answer counts as the app's
		code, err := smoke(tc.host, tc.path, tc.strict, 2*time.Second, app)
		var se *SmokeError
		switch {
		case tc.wantErr == "" && err != nil, tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &se)):
			t.Errorf("%s%s (strict %v): %v, want error %q", tc.host, tc.path, tc.strict, err, tc.wantErr)
		case code != tc.wantCode:
			t.Errorf("%s%s: code %d, want %d", tc.host, tc.path, code, tc.wantCode)
		}
	}
	// No app (a static location): nginx's own answer below 500 passes.
	if code, err := smoke("redir.test", "/denied", false, time.Second, nil); err != nil || code != 400 {
		t.Errorf("a static location answering 400: %d %v, want a pass", code, err)
	}
	if _, err := smoke("broken.test", "/", false, 500*time.Millisecond, nil); err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("site whose upstream is down: %v, want the 502", err)
	}
	// An answer that did not come from the app (the counter stays) is not
	// a pass: another server block may be catching the Host.
	never := func() (uint64, error) { return 7, nil }
	if _, err := smoke("ok.test", "/", false, 300*time.Millisecond, never); err == nil || !strings.Contains(err.Error(), "something other than the app") {
		t.Fatalf("answer not from the app: %v", err)
	}
	n := uint64(0)
	counting := func() (uint64, error) { n++; return n, nil }
	if _, err := smoke("ok.test", "/", false, 2*time.Second, counting); err != nil {
		t.Fatalf("answer from the app: %v", err)
	}
}

// TestClearBytecode: the app's __pycache__ dirs go; the venv's, dot-dirs'
// and node_modules' stay.
func TestClearBytecode(t *testing.T) {
	app := t.TempDir()
	for _, d := range []string{"__pycache__", "pkg/__pycache__", ".venv/lib/__pycache__", "env/lib/__pycache__", "node_modules/x/__pycache__"} {
		if err := os.MkdirAll(filepath.Join(app, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(app, d, "m.cpython-311.pyc"), []byte("stale"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(app, "env", "pyvenv.cfg"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := clearBytecode(app); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{"__pycache__": false, "pkg/__pycache__": false, ".venv/lib/__pycache__": true, "env/lib/__pycache__": true, "node_modules/x/__pycache__": true} {
		if _, err := os.Stat(filepath.Join(app, d)); (err == nil) != want {
			t.Errorf("%s: present=%v, want %v", d, err == nil, want)
		}
	}
}

// TestCheckDaemonServes: deploy refuses, before changing anything, a
// daemon that would never serve the site.
func TestCheckDaemonServes(t *testing.T) {
	st := control.Status{PID: 7, NginxConf: "/etc/nginx/nginx.conf", AppSockets: "/run/pyvhost/apps", Sockets: []string{":9090", "/run/x.sock"}}
	noConf := st
	noConf.NginxConf = ""
	for _, tc := range []struct {
		st     control.Status
		conf   string
		socket string
		want   string // "" = fine
	}{
		{st, "/etc/nginx/nginx.conf", "unix:/run/pyvhost/apps/a.test.sock", ""},
		{st, "/etc/nginx/nginx.conf", "127.0.0.1:9090", ""},
		{st, "/etc/nginx/nginx.conf", "unix:/run/x.sock", ""},
		{st, "/etc/nginx/nginx.conf", "127.0.0.1:9091", "does not serve --socket 127.0.0.1:9091"},
		{st, "/etc/nginx/nginx.conf", "unix:/srv/other/a.sock", "does not serve --socket unix:/srv/other/a.sock"},
		{st, "/srv/nginx.conf", "127.0.0.1:9090", "reads its apps from /etc/nginx/nginx.conf, not /srv/nginx.conf"},
		{noConf, "/etc/nginx/nginx.conf", "unix:/run/pyvhost/apps/a.test.sock", "reads no nginx config"},
		{noConf, "/etc/nginx/nginx.conf", "127.0.0.1:9090", ""},
	} {
		err := checkDaemonServes(tc.st, "/run/pyvhost/ctl.sock", tc.conf, tc.socket)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s with %s: %v, want %q", tc.socket, tc.conf, err, tc.want)
		}
	}
}
