package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
	"github.com/pyvhost/pyvhost/uwsgictl/wire"
)

// TestFaultMaxApps: apps a peer names under a --vhost-root are bounded by
// --max-apps. Past it the idlest cold app is evicted (and everything it
// held released: the daemon's descriptors come back to where they were),
// and when every held app is in use the new one gets a 503 and a log line.
func TestFaultMaxApps(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	sock := freeAddr(t)
	ctl := filepath.Join(dir, "ctl.sock")
	d := daemontest.Start(t, sock, "-s", sock, "--ctl", ctl, "--max-apps", "2", "-p", "1",
		"--vhost-root", dir, "--vhost-root", filepath.Dir(venv))
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	chdirs := map[string]string{}
	for _, n := range []string{"a", "b", "c"} {
		chdirs[n] = daemontest.App(t, filepath.Join(dir, n), "hello")
	}
	get := func(n string) string {
		pkt, _ := wire.Encode(0, 0, []wire.Var{{Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"}, {Key: "REQUEST_METHOD", Value: "GET"},
			{Key: "PATH_INFO", Value: "/"}, {Key: "UWSGI_PYHOME", Value: venv}, {Key: "UWSGI_CHDIR", Value: chdirs[n]}, {Key: "UWSGI_SCRIPT", Value: "hello"}})
		r := rawRequest(t, sock, pkt)
		return strings.SplitN(r, "\r\n", 2)[0]
	}
	stop := func(n string) {
		t.Helper()
		if _, err := c.Stop(appID(t, c, chdirs[n])); err != nil {
			t.Fatalf("stop %s: %v", n, err)
		}
	}
	const ok, full = "HTTP/1.1 200 OK", "HTTP/1.1 503 Service Unavailable"
	for _, step := range []struct{ app, want string }{{"a", ok}, {"b", ok}, {"c", full}} {
		if got := get(step.app); got != step.want {
			t.Fatalf("app %s with a and b in use and --max-apps 2: %q, want %q\n%s", step.app, got, step.want, d.Log())
		}
	}
	d.WaitLog(t, "--max-apps 2 apps from --vhost-root are held and all had requests", 5*time.Second)

	// Cycle: stop one (it is cold now), ask for the third, which evicts it.
	stop("a")
	if got := get("c"); got != ok {
		t.Fatalf("c after a was stopped: %q, want it to evict a and serve\n%s", got, d.Log())
	}
	d.WaitLog(t, "evicted", 5*time.Second)
	// An evicted app is released at the daemon's next prune: its scoreboard
	// is unmapped (the garbage collector never does that) and its
	// descriptors closed. Wait for the one, then count the other.
	settled := func(what string) int {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if apps, err := c.Apps(); err == nil && len(apps.Apps) == 2 && scoreboardMaps(t, d.PID()) == 2 {
				return countFDs(t, d.PID())
			}
		}
		t.Fatalf("%s: %d scoreboards still mapped 5 s on, want 2 (one per app held): an evicted app's was not released\n%s",
			what, scoreboardMaps(t, d.PID()), d.Log())
		return 0
	}
	base := settled("the first eviction")
	for i, cycle := range [][2]string{{"b", "a"}, {"c", "b"}, {"a", "c"}, {"b", "a"}} {
		stop(cycle[0])
		if got := get(cycle[1]); got != ok {
			t.Fatalf("cycle %d: %s after %s was stopped: %q\n%s", i, cycle[1], cycle[0], got, d.Log())
		}
		if n := settled(fmt.Sprintf("cycle %d", i)); n != base {
			t.Fatalf("cycle %d: the daemon holds %d descriptors, %d before: an evicted app's were not released", i, n, base)
		}
	}
}

// appID is the control socket's id of the app in chdir.
func appID(t *testing.T, c *control.Client, chdir string) string {
	t.Helper()
	apps, err := c.Apps()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range apps.Apps {
		if a.Chdir == chdir {
			return a.ID
		}
	}
	t.Fatalf("no app in %s among %+v", chdir, apps.Apps)
	return ""
}

func countFDs(t *testing.T, pid int) int {
	t.Helper()
	es, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// scoreboardMaps counts the scoreboard mappings in a process.
func scoreboardMaps(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "maps"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "memfd:pyvhost-scoreboard")
}

// retireGraceHalf is half the daemon's retireGrace: a request held until a
// replaced pool's grace ran out takes longer.
const retireGraceHalf = 5 * time.Second

// TestFaultOneAppTwoDomains: one app (same venv, dir and module) under two
// domains, each with its per-app socket, is one pool serving both sockets;
// removing one domain and adding it back keeps the other serving, by a new
// pool alone once the re-read returns (the replaced one kept taking the
// shared socket's requests for 10 s, so a deploy waited that long).
func TestFaultOneAppTwoDomains(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	socks := filepath.Join(dir, "socks")
	ctl := filepath.Join(dir, "ctl.sock")
	hello := daemontest.App(t, dir, "hello")
	spec := func(name string) site {
		return site{name + ".test", []nginxconf.AppSpec{{Socket: "unix:" + socks + "/" + name + ".sock", Venv: venv, AppDir: hello, Module: "hello"}}}
	}
	e := startNginx(t, dir, spec("x1"), spec("x2"))
	d := daemontest.Start(t, socks+"/x1.sock", "--app-sockets", socks, "--nginx-conf", e.conf, "--ctl", ctl)
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	both := func(when string, hosts ...string) {
		t.Helper()
		for _, h := range hosts {
			if code, out := e.get(t, h, "/"); code != 200 || !strings.Contains(out, "hello app") {
				t.Fatalf("%s: %s answered %d %q\n%s", when, h, code, out, d.Log())
			}
		}
	}
	both("one app under two domains", "x1.test", "x2.test")
	if apps, err := c.Apps(); err != nil || len(apps.Apps) != 1 {
		t.Fatalf("ctl apps: %+v %v, want one app serving both sockets", apps, err)
	}
	reconfigure := func(sites ...site) {
		t.Helper()
		var blocks []string
		for _, s := range sites {
			b, err := nginxconf.Render(nginxconf.SiteSpec{Domain: s.domain, Listen: e.listen, Apps: s.apps}, nginxconf.RenderOptions{IncludeParams: true})
			if err != nil {
				t.Fatal(err)
			}
			blocks = append(blocks, string(b))
		}
		write(t, filepath.Join(dir, "sites.conf"), strings.Join(blocks, "\n"))
		if err := c.ReloadConfig(); err != nil {
			t.Fatalf("reload-config: %v\n%s", err, d.Log())
		}
		e.nginx.Reload(t)
	}
	// Only the current pool serves once the re-read has returned.
	current := func(when string, hosts ...string) {
		t.Helper()
		apps, err := c.Apps()
		if err != nil {
			t.Fatal(err)
		}
		var cur pool.AppStats
		for _, a := range apps.Apps {
			if a.Retiring && len(a.Workers) > 0 {
				t.Fatalf("%s: the replaced pool %d still has %d workers\n%s", when, a.Num, len(a.Workers), d.Log())
			}
			if !a.Retiring {
				cur = a
			}
		}
		start := time.Now()
		both(when, hosts...)
		if took := time.Since(start); took > retireGraceHalf {
			t.Fatalf("%s: the requests took %s: held for the replaced pool's grace", when, took)
		}
		// A worker counts a request just after its answer went out.
		eventually(t, 5*time.Second, func() bool {
			apps, err := c.Apps()
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range apps.Apps {
				if a.Num == cur.Num && a.Requests == cur.Requests+uint64(len(hosts)) {
					return true
				}
			}
			return false
		})
	}
	reconfigure(spec("x1"))
	current("x2 removed", "x1.test")
	if _, err := os.Stat(socks + "/x2.sock"); !os.IsNotExist(err) {
		t.Fatalf("x2.sock after x2 left the config: %v, want it gone", err)
	}
	reconfigure(spec("x1"), spec("x2"))
	current("x2 added back", "x1.test", "x2.test")
}
