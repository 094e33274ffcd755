package daemon_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestSeedTwoSitesOnePort is the seed's set-up: two sites sharing one venv,
// one daemon and one TCP port, started with uWSGI's classic line.
func TestSeedTwoSitesOnePort(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	hello := daemontest.App(t, dir, "hello")
	echo := daemontest.App(t, dir, "envecho")
	sock := freeAddr(t)
	d := daemontest.Start(t, sock, "-s", sock, "-M", "-p", "4", "-t", "30", "--limit-as", "512", "-R", "10000", "--vhost", "--vhost-root", dir, "--vhost-root", filepath.Dir(venv))
	e := startNginx(t, dir,
		site{"app1.example.com", []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: hello, Module: "hello"}}},
		site{"app2.example.com", []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: echo, Module: "envecho"}}},
	)
	for i := 0; i < 3; i++ {
		if code, body := e.get(t, "app1.example.com", "/"); code != 200 || body != "Hello from pyvhost's hello app\n" {
			t.Fatalf("app1: %d %q\n%s", code, body, d.Log())
		}
		code, body := e.get(t, "app2.example.com", "/some/path?q=1")
		if code != 200 {
			t.Fatalf("app2: %d %q\n%s", code, body, d.Log())
		}
		var env map[string]any
		if err := json.Unmarshal([]byte(body), &env); err != nil {
			t.Fatalf("app2 body: %v: %q", err, body)
		}
		for k, want := range map[string]any{"PATH_INFO": "/some/path", "QUERY_STRING": "q=1", "SCRIPT_NAME": "",
			"UWSGI_CHDIR": echo, "wsgi.url_scheme": "http", "wsgi.multiprocess": true, "wsgi.multithread": false, "cwd": echo} {
			if env[k] != want {
				t.Errorf("app2 environ %s = %v, want %v", k, env[k], want)
			}
		}
		if uid, _ := daemontest.AppOwner(); int(env["uid"].(float64)) != uid {
			t.Errorf("app runs as uid %v, want the app directory's owner %d", env["uid"], uid)
		}
	}
	// uWSGI-style request lines, naming the app that served them (here its
	// identity: no nginx config declares it), never the request's Host.
	d.WaitLog(t, hello+":hello (venv "+venv+") [pid: ", 5*time.Second)
	d.WaitLog(t, "GET /some/path?q=1 => generated", 5*time.Second)
}

// TestMountsOnPerAppSockets: one server with apps at / and /blog, each on
// its own unix socket that the daemon creates from the nginx config.
func TestMountsOnPerAppSockets(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	hello := daemontest.App(t, dir, "hello")
	echo := daemontest.App(t, dir, "envecho")
	socks := filepath.Join(dir, "apps")
	e := startNginx(t, dir, site{"example.com", []nginxconf.AppSpec{
		{Mount: "/", Socket: "unix:" + socks + "/site.sock", Venv: venv, AppDir: hello, Module: "hello"},
		{Mount: "/blog", Socket: "unix:" + socks + "/blog.sock", Venv: venv, AppDir: echo, Module: "envecho:application"},
	}})
	d := daemontest.Start(t, socks+"/blog.sock", "--app-sockets", socks, "--nginx-conf", e.conf, "-p", "2")
	if code, body := e.get(t, "example.com", "/"); code != 200 || !strings.Contains(body, "hello app") {
		t.Fatalf("/: %d %q\n%s", code, body, d.Log())
	}
	code, body := e.get(t, "example.com", "/blog/2026/post")
	var env map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &env) != nil {
		t.Fatalf("/blog/2026/post: %d %q\n%s", code, body, d.Log())
	}
	if env["SCRIPT_NAME"] != "/blog" || env["PATH_INFO"] != "/2026/post" {
		t.Errorf("SCRIPT_NAME %q PATH_INFO %q, want /blog and /2026/post", env["SCRIPT_NAME"], env["PATH_INFO"])
	}
}
