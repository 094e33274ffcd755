package daemon_test

// The fault suite (make faults; make test runs it with one round): each
// test is a fault a fault-injection run found, kept fixed. FAULT_ROUNDS
// repeats the ones that hit races by chance.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
	"github.com/pyvhost/pyvhost/uwsgictl/wire"
)

// unixEnv is nginx in front of a daemon serving apps on per-app unix
// sockets (the default set-up), one site per app.
func unixEnv(t *testing.T, daemonArgs []string, apps ...string) (*env, *daemontest.Daemon, string) {
	t.Helper()
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	socks := filepath.Join(dir, "socks")
	var sites []site
	for _, name := range apps {
		p := daemontest.App(t, dir, name)
		sites = append(sites, site{name + ".test", []nginxconf.AppSpec{{Socket: "unix:" + socks + "/" + name + ".sock", Venv: venv, AppDir: p, Module: name}}})
	}
	e := startNginx(t, dir, sites...)
	args := append([]string{"--app-sockets", socks, "--nginx-conf", e.conf}, daemonArgs...)
	d := daemontest.Start(t, socks+"/"+apps[0]+".sock", args...)
	return e, d, socks
}

// TestFaultAppExitStatus: a request that ends its worker, whatever the
// exit status, costs that request only: no other request fails, the app
// is not taken for one that failed to import (an exit status is the app's,
// not a message to the daemon), and the log names the death and its cause.
func TestFaultAppExitStatus(t *testing.T) {
	slow(t)
	for _, mode := range [][]string{nil, {"--lazy-apps"}} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			e, d, _ := unixEnv(t, append([]string{"-p", "2"}, mode...), "crash")
			for _, path := range []string{"/exit/3", "/sysexit/3", "/exit/0", "/sysexit/0"} {
				var wg sync.WaitGroup
				wg.Add(1)
				var slowCode int
				var slowErr error
				go func() { // a request on the other worker, in flight meanwhile
					defer wg.Done()
					slowCode, _, slowErr = e.try("crash.test", "/slow/0.3")
				}()
				if code, _ := e.get(t, "crash.test", path); code != 502 {
					t.Errorf("%s: %d, want 502 (the worker died)", path, code)
				}
				for i := 0; i < 5; i++ {
					if code, body := e.get(t, "crash.test", "/"); code != 200 {
						t.Fatalf("after %s: %d %q, want 200 at once\n%s", path, code, body, d.Log())
					}
				}
				wg.Wait()
				if slowErr != nil || slowCode != 200 {
					t.Errorf("a request on another worker during %s: %d %v", path, slowCode, slowErr)
				}
				status := strings.TrimPrefix(strings.TrimPrefix(path, "/sysexit/"), "/exit/")
				d.WaitLog(t, fmt.Sprintf("died (exit status %s while serving \"GET %s\")", status, path), 5*time.Second)
			}
			if strings.Contains(d.Log(), "failed to import") {
				t.Fatalf("an exit status was taken for an import failure:\n%s", d.Log())
			}
		})
	}
}

// TestFaultMasterKilledWhileForking: the master SIGKILLed at a random
// moment while workers are forked all the time (-R 1): every worker and
// zygote goes with it (none orphaned, none spinning on a dead socket), and
// a new daemon starts on the same sockets at once. nginx sees errors only
// in the gap: none before the kill, none once the new daemon is up.
func TestFaultMasterKilledWhileForking(t *testing.T) {
	slow(t)
	e, d, socks := unixEnv(t, []string{"-p", "4", "-R", "1"}, "hello")
	args := []string{"--app-sockets", socks, "--nginx-conf", e.conf}
	for round := 0; round < daemontest.FaultRounds(3); round++ {
		l := startLoad(e, "hello.test", 4)
		time.Sleep(time.Duration(50+rand.IntN(300)) * time.Millisecond) // the random point of the kill
		master, pids := d.PID(), daemontest.Descendants(d.PID())
		if n := l.failed.Load(); n > 0 {
			t.Fatalf("round %d: %d requests failed before the kill (-R 1 recycling must cost nothing)\n%s", round, n, d.Log())
		}
		d.Signal(t, syscall.SIGKILL)
		if _, ok := d.Wait(5 * time.Second); !ok {
			t.Fatal("master survived SIGKILL")
		}
		close(l.stop)
		l.wg.Wait()
		waitGone(t, master, pids, 5*time.Second)
		d = daemontest.Start(t, socks+"/hello.sock", args...)
		if code, body := e.get(t, "hello.test", "/"); code != 200 {
			t.Fatalf("round %d: new daemon: %d %q\n%s", round, code, body, d.Log())
		}
		after := startLoad(e, "hello.test", 4)
		for start := time.Now(); after.ok.Load() < 200 && time.Since(start) < 10*time.Second; {
			time.Sleep(5 * time.Millisecond) // until 200 requests were answered (the load runs meanwhile)
		}
		after.end(t, d, fmt.Sprintf("round %d: after the new daemon was up", round))
	}
}

// waitGone waits until none of pids runs, nor any orphan of a test's
// daemon (a worker forked after pids was taken, its parent gone).
func waitGone(t *testing.T, master int, pids []int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, p := range append(pids, daemontest.Descendants(master)...) {
			if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p)); err == nil && !strings.Contains(string(stat), ") Z ") {
				cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
				left = append(left, fmt.Sprintf("%d (%s)", p, strings.ReplaceAll(string(cmd), "\x00", " ")))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range append(pids, daemontest.Descendants(master)...) {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			t.Fatalf("processes outlived the master: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFaultAppChildHoldsNoSockets: a process an app starts (os.system("sleep
// ... &")) holds none of the daemon's descriptors, so a master crash
// leaves no socket behind and a new daemon starts on the same paths.
func TestFaultAppChildHoldsNoSockets(t *testing.T) {
	slow(t)
	e, d, socks := unixEnv(t, nil, "crash")
	code, body := e.get(t, "crash.test", "/spawn")
	child, err := strconv.Atoi(strings.TrimSpace(body))
	if code != 200 || err != nil {
		t.Fatalf("/spawn: %d %q", code, body)
	}
	defer syscall.Kill(child, syscall.SIGKILL)
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", child))
	for _, f := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", child, f.Name()))
		if strings.HasPrefix(target, "socket:") || strings.Contains(target, "memfd:") {
			t.Errorf("the app's child holds fd %s -> %s\n%s", f.Name(), target, d.Log())
		}
	}
	d.Signal(t, syscall.SIGKILL)
	d.Wait(5 * time.Second)
	d = daemontest.Start(t, socks+"/crash.sock", "--app-sockets", socks, "--nginx-conf", e.conf)
	if code, _ := e.get(t, "crash.test", "/"); code != 200 {
		t.Fatalf("new daemon: %d\n%s", code, d.Log())
	}
}

// TestFaultIdlePeers: a thousand connections that send nothing and twenty
// that stop halfway through their vars cannot starve a two-worker app:
// nginx's requests are answered meanwhile, and the silent ones are dropped
// after --socket-timeout.
func TestFaultIdlePeers(t *testing.T) {
	slow(t)
	e, d, socks := unixEnv(t, []string{"-p", "2", "--socket-timeout", "2"}, "hello")
	if code, _ := e.get(t, "hello.test", "/"); code != 200 {
		t.Fatal("not serving")
	}
	half, err := wire.Encode(0, 0, []wire.Var{{Key: "REQUEST_METHOD", Value: "GET"}, {Key: "PATH_INFO", Value: "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < 1020; i++ {
		c, err := net.Dial("unix", socks+"/hello.sock")
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if i < 20 {
			_, _ = c.Write(half[:len(half)/2])
		}
		idle = append(idle, c)
	}
	start := time.Now()
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		if code, _ := e.get(t, "hello.test", "/"); code != 200 {
			t.Fatalf("request %d among idle peers: %d\n%s", i, code, d.Log())
		}
		if dt := time.Since(t0); dt > time.Second {
			t.Fatalf("request %d among idle peers took %s", i, dt)
		}
	}
	// Every silent connection is closed by the deadline (2 s, and the
	// daemon's, counted from when it took the connection over).
	for i, c := range idle {
		_ = c.SetReadDeadline(start.Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("idle connection %d still open after 10 s (read %d, %v)", i, n, err)
		}
	}
	d.WaitLog(t, "did not arrive within --socket-timeout", time.Second)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestFaultShortAndStalledBodies: a body that ends before CONTENT_LENGTH,
// or stops arriving, reaches the app as an OSError naming the bytes
// expected and received (never as a short body passed off as whole, never
// as BlockingIOError), on both request paths.
func TestFaultShortAndStalledBodies(t *testing.T) {
	slow(t)
	for _, rp := range requestPaths {
		t.Run(rp.name, func(t *testing.T) {
			_, d, socks := unixEnv(t, append([]string{"--socket-timeout", "1"}, rp.args...), "bigio")
			sock := socks + "/bigio.sock"
			vars := []wire.Var{{Key: "REQUEST_METHOD", Value: "POST"}, {Key: "PATH_INFO", Value: "/upload"},
				{Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"}, {Key: "CONTENT_LENGTH", Value: "1000000"},
				{Key: "UWSGI_PYHOME", Value: daemontest.Venv(t)}, {Key: "UWSGI_CHDIR", Value: filepath.Join(filepath.Dir(socks), "bigio")},
				{Key: "UWSGI_SCRIPT", Value: "bigio"}}
			pkt, err := wire.Encode(0, 0, vars)
			if err != nil {
				t.Fatal(err)
			}
			pkt = append(pkt, "0123456789"...)
			if r := rawRequest(t, sock, pkt); !strings.HasPrefix(r, "HTTP/1.1 500") {
				t.Errorf("short body: %q, want a 500", r)
			}
			d.WaitLog(t, "the request body ended after 10 of 1000000 bytes", 5*time.Second)

			c, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, _ = c.Write(pkt) // and then nothing: the body stalls
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			b := make([]byte, 4096)
			n, _ := c.Read(b)
			if !strings.HasPrefix(string(b[:n]), "HTTP/1.1 500") {
				t.Errorf("stalled body: %q, want a 500 after --socket-timeout", b[:n])
			}
			d.WaitLog(t, "timed out after 1 s waiting for the request body: got 10 of 1000000 bytes", 5*time.Second)
			if strings.Contains(d.Log(), "BlockingIOError") {
				t.Errorf("the app saw BlockingIOError:\n%s", d.Log())
			}
		})
	}
}

// TestFaultAppHeaders: an app whose header would split the response, or
// that sends a hop-by-hop header, gets a 500 and a log line; nothing it
// sent reaches the client.
func TestFaultAppHeaders(t *testing.T) {
	slow(t)
	for _, rp := range requestPaths {
		t.Run(rp.name, func(t *testing.T) {
			e, d, _ := unixEnv(t, rp.args, "crash")
			for _, path := range []string{"/inject", "/hop"} {
				req := "GET " + path + " HTTP/1.1\r\nHost: crash.test\r\nConnection: close\r\n\r\n"
				c, err := net.Dial("tcp", e.listen)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = c.Write([]byte(req))
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				var got []byte
				b := make([]byte, 4096)
				for {
					n, err := c.Read(b)
					got = append(got, b[:n]...)
					if err != nil {
						break
					}
				}
				c.Close()
				if !strings.HasPrefix(string(got), "HTTP/1.1 500") || strings.Contains(strings.ToLower(string(got)), "evil") {
					t.Errorf("%s: %q, want a 500 with nothing of the app's header", path, got)
				}
			}
			d.WaitLog(t, "has CR, LF or NUL in its value", 5*time.Second)
			d.WaitLog(t, "is hop-by-hop: PEP 3333 leaves it to the server", 5*time.Second)
		})
	}
}

// TestFaultAppClosesStderr: an app that closes fd 2 does not silence the
// worker: its next traceback and request lines still reach the log.
func TestFaultAppClosesStderr(t *testing.T) {
	slow(t)
	for _, rp := range requestPaths {
		t.Run(rp.name, func(t *testing.T) {
			e, d, _ := unixEnv(t, rp.args, "crash")
			if code, _ := e.get(t, "crash.test", "/closestderr"); code != 500 {
				t.Fatalf("/closestderr: %d, want 500", code)
			}
			d.WaitLog(t, "RuntimeError: raised after closing fd 2", 5*time.Second)
			e.get(t, "crash.test", "/logged-after-close")
			d.WaitLog(t, "GET /logged-after-close =>", 5*time.Second)
		})
	}
}

// TestFaultPinnedStatusPage: two thousand connections held open on the
// status page cost the daemon at most its cap of descriptors, and the
// control socket and the apps keep working meanwhile.
func TestFaultPinnedStatusPage(t *testing.T) {
	slow(t)
	status := freeAddr(t)
	ctl := filepath.Join(daemontest.Dir(t), "ctl.sock")
	e, d, _ := unixEnv(t, []string{"--status-http", status, "--ctl", ctl, "--state-dir", daemontest.Dir(t)}, "hello")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 2000; i++ {
		c, err := net.DialTimeout("tcp", status, 2*time.Second)
		if err != nil {
			break // the backlog is full: that is the point
		}
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) // kept alive after its 401
		held = append(held, c)
	}
	c, err := net.DialTimeout("unix", ctl, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("GET /v1/status HTTP/1.1\r\nHost: ctl\r\nConnection: close\r\n\r\n"))
	b := make([]byte, 64)
	if n, err := c.Read(b); err != nil || !strings.HasPrefix(string(b[:n]), "HTTP/1.1 200") {
		t.Fatalf("control socket while the status page is pinned: %q %v", b[:n], err)
	}
	if code, _ := e.get(t, "hello.test", "/"); code != 200 {
		t.Fatalf("app while the status page is pinned: %d", code)
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.PID()))
	if len(fds) > 256+100 {
		t.Fatalf("the daemon holds %d descriptors with the status page pinned (cap 256)", len(fds))
	}
}
