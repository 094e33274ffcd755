package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
	"github.com/pyvhost/pyvhost/uwsgictl/wire"
)

// TestHarakiri: a request stuck past -t is killed (nginx answers 502), the
// log says harakiri, and the app keeps serving.
func TestHarakiri(t *testing.T) {
	slow(t)
	e, d, _ := wsgiEnv(t, []string{"-t", "1", "-p", "2"}, "slow")
	start := time.Now()
	code, _ := e.get(t, "slow.test", "/?s=20")
	if code < 500 || time.Since(start) > 5*time.Second {
		t.Fatalf("stuck request: %d after %s, want a 5xx within a few seconds", code, time.Since(start))
	}
	d.WaitLog(t, "HARAKIRI", 2*time.Second)
	if code, out := e.get(t, "slow.test", "/?s=0"); code != 200 || out != "slept 0\n" {
		t.Fatalf("after harakiri: %d %q\n%s", code, out, d.Log())
	}
}

// TestCrashRespawn: a worker that dies mid-request costs that request
// only; the next one is served by a respawned worker.
func TestCrashRespawn(t *testing.T) {
	slow(t)
	e, d, _ := wsgiEnv(t, nil, "crash")
	_, first := e.get(t, "crash.test", "/")
	if code, _ := e.get(t, "crash.test", "/crash"); code != 502 {
		t.Fatalf("crashing request: %d, want 502", code)
	}
	code, again := e.get(t, "crash.test", "/")
	if code != 200 || again == first {
		t.Fatalf("after the crash: %d %q (before: %q)\n%s", code, again, first, d.Log())
	}
	d.WaitLog(t, `died (exit status 7 while serving "GET /crash"), respawning`, time.Second)
}

// TestCrashLoopBacksOff: a worker that dies on every request is not
// respawned in a tight loop.
func TestCrashLoopBacksOff(t *testing.T) {
	slow(t)
	e, d, _ := wsgiEnv(t, nil, "crash")
	for i := 0; i < 6; i++ {
		e.get(t, "crash.test", "/crash")
	}
	d.WaitLog(t, "crash loop", 3*time.Second)
}

// TestRecycle: -R N replaces a worker after N requests without failing one.
func TestRecycle(t *testing.T) {
	slow(t)
	e, d, _ := wsgiEnv(t, []string{"-R", "3"}, "crash")
	pids := map[string]bool{}
	for i := 0; i < 10; i++ {
		code, out := e.get(t, "crash.test", "/")
		if code != 200 {
			t.Fatalf("request %d: %d\n%s", i, code, d.Log())
		}
		pids[out] = true
	}
	if len(pids) < 3 {
		t.Fatalf("10 requests with -R 3 were served by %d workers, want at least 3", len(pids))
	}
	// A recycled worker exits, cleanly: it does not fall back into its
	// zygote's loop (it once did, and died there on a closed descriptor).
	if log := d.Log(); strings.Contains(log, "Traceback") || strings.Contains(log, " died ") {
		t.Errorf("a recycled worker did not exit cleanly:\n%s", log)
	}
}

// TestIdleStopsAndRestarts: --idle stops an app's processes; the next
// request starts them again.
func TestIdleStopsAndRestarts(t *testing.T) {
	slow(t)
	e, d, _ := wsgiEnv(t, []string{"--idle", "1"}, "hello")
	if code, _ := e.get(t, "hello.test", "/"); code != 200 {
		t.Fatal(code)
	}
	d.WaitLog(t, "stopping its processes (--idle)", 5*time.Second)
	deadline := time.Now().Add(3 * time.Second)
	for len(daemontest.Descendants(d.PID())) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("app processes still running after --idle: %v", daemontest.Descendants(d.PID()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	if code, _ := e.get(t, "hello.test", "/"); code != 200 {
		t.Fatalf("after idle stop: %d\n%s", code, d.Log())
	}
	t.Logf("first request after the idle stop answered in %s", time.Since(start))
}

// TestLimitAS: --limit-as caps each app process; an app that asks for more
// gets MemoryError (a 500) and the app keeps serving.
func TestLimitAS(t *testing.T) {
	slow(t)
	e, d, _ := wsgiEnv(t, []string{"--limit-as", "256"}, "memhog")
	if code, out := e.get(t, "memhog.test", "/hog?mb=16"); code != 200 {
		t.Fatalf("small allocation: %d %q\n%s", code, out, d.Log())
	}
	if code, _ := e.get(t, "memhog.test", "/hog?mb=1024"); code != 500 {
		t.Fatalf("1 GB under --limit-as 256: %d, want 500", code)
	}
	d.WaitLog(t, "MemoryError", 5*time.Second)
	if code, _ := e.get(t, "memhog.test", "/hog?mb=1"); code != 200 {
		t.Fatalf("after MemoryError: %d", code)
	}
}

// TestSIGHUPUnderLoad: graceful reloads under load drop no request, and the
// new code serves afterwards.
func TestSIGHUPUnderLoad(t *testing.T) {
	slow(t)
	e, d, paths := wsgiEnv(t, []string{"-p", "2"}, "hello")
	if code, _ := e.get(t, "hello.test", "/"); code != 200 {
		t.Fatal(code)
	}
	l := startLoad(e, "hello.test", 8)
	uid, gid := daemontest.AppOwner()
	for i := 0; i < 3; i++ {
		time.Sleep(400 * time.Millisecond) // the pace of the reloads (the load runs meanwhile), not synchronisation
		if i == 2 {
			f := filepath.Join(paths["hello"], "hello.py")
			write(t, f, "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'new code\\n']\n")
			_ = os.Chown(f, uid, gid)
		}
		d.Signal(t, syscall.SIGHUP)
	}
	// The last reload is done when the new code answers (the load keeps
	// checking that nothing fails meanwhile).
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if code, out := e.get(t, "hello.test", "/"); code == 200 && out == "new code\n" {
			break
		} else if time.Now().After(end) {
			t.Fatalf("10 s after the last reload: %d %q, want the new code", code, out)
		}
	}
	n := l.end(t, d, "during SIGHUP reloads")
	t.Logf("%d requests, none failed, across 3 reloads", n)
}

// waitBusy waits until a worker serves a request starting with req (as
// the control socket reports it) and returns its pid.
func waitBusy(t *testing.T, ctl, req string) int {
	t.Helper()
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		apps, err := c.Apps()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range apps.Apps {
			for _, w := range a.Workers {
				if w.State == "busy" && strings.HasPrefix(w.Request, req) {
					return w.PID
				}
			}
		}
	}
	t.Fatalf("no worker busy with %q within 10 s", req)
	return 0
}

// TestSignalsStopGracefully: SIGTERM lets an in-flight request finish.
func TestSignalsStopGracefully(t *testing.T) {
	slow(t)
	ctl := filepath.Join(daemontest.Dir(t), "ctl.sock")
	e, d, _ := wsgiEnv(t, []string{"--ctl", ctl}, "slow")
	if code, _ := e.get(t, "slow.test", "/?s=0"); code != 200 {
		t.Fatal(code)
	}
	done := make(chan string, 1)
	go func() {
		code, out, err := e.try("slow.test", "/inflight?s=1")
		done <- fmt.Sprintf("%d %s%v", code, out, err)
	}()
	// Its own path: the warm-up's slot may still read busy for a moment
	// after its answer went out (the name is the path, without the query).
	waitBusy(t, ctl, "GET /inflight")
	d.Signal(t, syscall.SIGTERM)
	if got := <-done; got != "200 slept 1\n<nil>" {
		t.Fatalf("in-flight request during SIGTERM: %q\n%s", got, d.Log())
	}
	if _, ok := d.Wait(10 * time.Second); !ok {
		t.Fatal("daemon did not exit after SIGTERM")
	}
}

// TestSIGQUITStopsNow and SIGUSR1 reopens the log file.
func TestSIGQUITAndLogReopen(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	sock := freeAddr(t)
	logFile := filepath.Join(dir, "uwsgi.log")
	d := daemontest.Start(t, sock, "-s", sock, "--logto", logFile, "--vhost-root", dir)
	st, err := os.Stat(logFile)
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("log file: %v, mode %v, want 0640", err, st.Mode().Perm())
	}
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	d.Signal(t, syscall.SIGUSR1)
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, err := os.Stat(logFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGUSR1 did not reopen the log file")
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.Signal(t, syscall.SIGQUIT)
	if _, ok := d.Wait(5 * time.Second); !ok {
		t.Fatal("daemon did not exit on SIGQUIT")
	}
}

// TestDaemonizeAndPidfile: -d returns once the daemon serves, writes the
// pidfile, and logs to the file.
func TestDaemonizeAndPidfile(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	sock := freeAddr(t)
	logFile := filepath.Join(dir, "uwsgi.log")
	pidFile := filepath.Join(dir, "uwsgi.pid")
	d := daemontest.Start(t, "", "-s", sock, "-d", logFile, "--pidfile", pidFile, "--vhost-root", dir)
	if err, ok := d.Wait(10 * time.Second); !ok || err != nil {
		t.Fatalf("-d did not return success: %v\n%s", err, d.Log())
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("no pidfile: %v\n%s", err, d.Log())
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	defer syscall.Kill(pid, syscall.SIGTERM)
	if c, err := net.Dial("tcp", sock); err != nil {
		t.Fatalf("daemonized daemon not listening: %v", err)
	} else {
		c.Close()
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && !zombie(pid) {
		if time.Now().After(deadline) {
			t.Fatal("daemonized daemon did not stop on SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if log, _ := os.ReadFile(logFile); !strings.Contains(string(log), "stopped") {
		st, _ := os.Stat(logFile)
		t.Errorf("log file lacks the daemon's lines (%v, %d bytes):\n%s\nharness log:\n%s", st.Mode(), st.Size(), log, d.Log())
	}
}

// TestStatsServer: --stats serves uWSGI's stats JSON with the fields
// uwsgitop reads, and no request vars.
func TestStatsServer(t *testing.T) {
	slow(t)
	statsAddr := freeAddr(t)
	e, d, _ := wsgiEnv(t, []string{"--stats", statsAddr, "-p", "2"}, "hello")
	for i := 0; i < 5; i++ {
		e.get(t, "hello.test", "/")
	}
	var st struct {
		Version string           `json:"version"`
		PID     int              `json:"pid"`
		Workers []map[string]any `json:"workers"`
		Apps    []map[string]any `json:"pyvhost_apps"`
	}
	var b []byte
	// Workers count a request right after its response went out: wait for
	// the fifth to show.
	eventually(t, 2*time.Second, func() bool {
		c, err := net.Dial("tcp", statsAddr)
		if err != nil {
			t.Fatalf("stats: %v\n%s", err, d.Log())
		}
		b, _ = io.ReadAll(c)
		c.Close()
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("stats are not JSON: %v\n%s", err, b)
		}
		return len(st.Apps) == 1 && st.Apps[0]["requests"].(float64) == 5
	})
	if st.PID != d.PID() || len(st.Workers) == 0 || len(st.Apps) != 1 {
		t.Fatalf("stats: %s", b)
	}
	for _, k := range []string{"id", "pid", "requests", "exceptions", "status", "avg_rt", "rss", "vsz", "tx", "respawn_count", "harakiri_count", "running_time", "last_spawn"} {
		if _, ok := st.Workers[0][k]; !ok {
			t.Errorf("worker stats lack %q (uwsgitop needs it)", k)
		}
	}
	if st.Apps[0]["requests"].(float64) != 5 || st.Apps[0]["state"] != "ready" {
		t.Errorf("app stats: %v", st.Apps[0])
	}
	if strings.Contains(string(b), "HTTP_") {
		t.Errorf("stats leak request vars: %s", b)
	}
}

// TestLazyApps: --lazy-apps imports the app in each worker, not once.
func TestLazyApps(t *testing.T) {
	slow(t)
	e, d, _ := wsgiEnv(t, []string{"--lazy-apps", "-p", "2"}, "envecho", "broken")
	if code, out := e.get(t, "envecho.test", "/"); code != 200 || !strings.Contains(out, `"PATH_INFO": "/"`) {
		t.Fatalf("lazy app: %d %q\n%s", code, out, d.Log())
	}
	if code, _ := e.get(t, "broken.test", "/"); code != 500 {
		t.Fatalf("lazy broken app: %d, want 500", code)
	}
	d.WaitLog(t, "No module named 'this_module_does_not_exist'", 3*time.Second)
}

// TestQueueLimit: requests held for an app that is starting are bounded;
// past --queue-limit they get a 503 instead of waiting without end.
func TestQueueLimit(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	app := daemontest.App(t, dir, "slowimport") // imports for 1.5 s
	sock := freeAddr(t)
	daemontest.Start(t, sock, "-s", sock, "-p", "1", "--queue-limit", "2", "--vhost-root", dir, "--vhost-root", filepath.Dir(venv))
	pkt, _ := wire.Encode(0, 0, []wire.Var{{Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"},
		{Key: "UWSGI_PYHOME", Value: venv}, {Key: "UWSGI_CHDIR", Value: app}, {Key: "UWSGI_SCRIPT", Value: "slowimport"}})
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := rawTry(sock, pkt)
			if err != nil {
				r = err.Error()
			}
			mu.Lock()
			codes[strings.SplitN(r, "\r\n", 2)[0]]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes["HTTP/1.1 200 OK"] != 2 || codes["HTTP/1.1 503 Service Unavailable"] != 6 {
		t.Fatalf("8 requests to an app importing for 1.5 s with --queue-limit 2: %v, want 2 served and 6 refused with 503", codes)
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// zombie reports whether a process has exited and waits to be reaped (a
// daemonized process's parent is init, which may reap it late).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+1:])
	return len(f) > 0 && f[0] == "Z"
}

// TestSharedPortScalesOnlyTheBusyApp: on the shared port, every app's
// workers accept; a quiet app whose workers mostly hand another app's
// requests to the daemon must not grow workers for that traffic.
func TestSharedPortScalesOnlyTheBusyApp(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	hello := daemontest.App(t, dir, "hello")
	quiet := daemontest.App(t, dir, "envecho")
	sock := freeAddr(t)
	ctl := filepath.Join(dir, "ctl.sock")
	d := daemontest.Start(t, sock, "-s", sock, "-p", "3", "--ctl", ctl, "--vhost-root", dir, "--vhost-root", filepath.Dir(venv))
	e := startNginx(t, dir,
		site{"hello.test", []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: hello, Module: "hello"}}},
		site{"quiet.test", []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: quiet, Module: "envecho"}}},
	)
	for _, h := range []string{"hello.test", "quiet.test"} {
		if code, _ := e.get(t, h, "/"); code != 200 {
			t.Fatalf("%s: %d", h, code)
		}
	}
	l := startLoad(e, "hello.test", 12)
	time.Sleep(2 * time.Second)
	l.end(t, d, "under load on one app")
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := c.Apps()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range apps.Apps {
		switch a.Script {
		case "hello":
			if len(a.Workers) < 2 {
				t.Errorf("the busy app has %d workers, want it scaled up", len(a.Workers))
			}
		case "envecho":
			if len(a.Workers) > 1 {
				t.Errorf("the quiet app grew to %d workers for another app's traffic", len(a.Workers))
			}
		}
	}
}
