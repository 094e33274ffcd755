package main

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// slowPy sleeps ?N seconds, then says which process answered.
const slowPy = `import os, time

def application(environ, start_response):
    q = environ.get("QUERY_STRING", "")
    if q:
        time.sleep(float(q))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"pid %d\n" % os.getpid()]
`

// TestDeployPerAppPools: --processes, --harakiri and --idle differ between
// two apps of one daemon and each is honoured; nginx's uwsgi_read_timeout
// follows the app's harakiri; changing an app's pool under load (up past
// what its pool has room for, then down) drops no request and needs no
// daemon restart.
func TestDeployPerAppPools(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	dir := e.app("slow", map[string]string{"slow.py": slowPy})
	dirB := e.app("slowb", map[string]string{"slow.py": slowPy})
	argsA := []string{"pools-a.test", "--app-dir", dir, "--module", "slow", "--venv", venv, "--listen", e.listen}
	argsB := []string{"pools-b.test", "--app-dir", dirB, "--module", "slow", "--venv", venv, "--listen", e.listen}
	e.deploy(append(argsA, "--processes", "3", "--harakiri", "20")...)
	e.deploy(append(argsB, "--processes", "1", "--harakiri", "2", "--idle", "3")...)
	daemon := e.daemonPID()
	for site, want := range map[string]string{"pools-a.test": "uwsgi_read_timeout 25s;", "pools-b.test": "uwsgi_read_timeout 7s;"} {
		if b, _ := os.ReadFile(e.dir + "/sites-available/" + site + ".conf"); !strings.Contains(string(b), want) {
			t.Errorf("%s's nginx file lacks %q:\n%s", site, want, b)
		}
	}
	c, err := control.Dial(e.ctl)
	if err != nil {
		t.Fatal(err)
	}
	a, b := e.ctlApp(c, dir), e.ctlApp(c, dirB)
	if a.Processes != 3 || a.HarakiriSec != 20 || a.Own != "processes=3 harakiri=20s" || b.Processes != 1 || b.HarakiriSec != 2 || b.IdleSec != 3 {
		t.Fatalf("ctl apps: A %+v\nB %+v", a, b)
	}
	for _, cmd := range [][]string{{"ctl", "apps"}, {"sites"}} {
		if _, out, _ := e.run(cmd...); !strings.Contains(out, "processes=3 harakiri=20s") || !strings.Contains(out, "processes=1 harakiri=2s idle=3s") {
			t.Errorf("pyvhost %v does not show each app's own settings:\n%s", cmd, out)
		}
	}

	// Harakiri: B's 4 s request is killed at 2 s; A's 3 s one is served.
	var wg sync.WaitGroup
	var codeA, codeB int
	var tookB time.Duration
	wg.Add(2)
	go func() { defer wg.Done(); codeA, _ = e.get("pools-a.test", "/?3") }()
	go func() {
		defer wg.Done()
		start := time.Now()
		codeB, _ = e.get("pools-b.test", "/?4")
		tookB = time.Since(start)
	}()
	// Processes: 5 slow requests to A run on 3 workers at most.
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); e.get("pools-a.test", "/?2") }()
	}
	most := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		st := e.ctlApp(c, dir)
		most = max(most, len(st.Workers))
		if busy(st) == 3 {
			break
		}
	}
	wg.Wait()
	if codeA != 200 || codeB < 500 || tookB > 3900*time.Millisecond {
		t.Errorf("harakiri: A's 3 s request got %d (want 200), B's 4 s one got %d after %s (want a 5xx at ~2 s)", codeA, codeB, tookB)
	}
	if st := e.ctlApp(c, dir); most != 3 || len(st.Workers) > 3 {
		t.Errorf("A ran %d workers at most (now %d), want 3 (--processes 3)", most, len(st.Workers))
	}
	// Idle: B stops after 3 s without requests; A (the daemon's --idle) does not.
	waitFor(t, 15*time.Second, "B stops after --idle 3", func() bool { return e.ctlApp(c, dirB).State == pool.IdleStopped })
	if st := e.ctlApp(c, dir).State; st != pool.Ready {
		t.Errorf("A is %s, want ready: its idle is the daemon's", st)
	}

	// Under load: more processes than A's pool has room for (a new pool
	// takes over), then fewer (in place).
	load := startSoakLoad(e, []string{"pools-a.test"}, 4)
	start := time.Now()
	e.deploy(append(argsA, "--processes", "8")...)
	up := time.Since(start)
	if st := e.ctlApp(c, dir); st.Processes != 8 || st.HarakiriSec != 20 {
		t.Errorf("after --processes 8: %+v", st)
	}
	if !strings.Contains(e.daemonLog(), "need a larger pool") {
		t.Error("--processes 8 on a pool made for 3 should have had a new pool take over")
	}
	e.onlyCurrentPoolServes(c, dir)
	start = time.Now()
	e.deploy(append(argsA, "--processes", "2")...)
	down := time.Since(start)
	ok, bad := load.stop()
	if len(bad) > 0 || ok == 0 {
		t.Fatalf("%d requests failed while A's pool changed (%d ok): %v", len(bad), ok, bad[:min(len(bad), 5)])
	}
	if st := e.ctlApp(c, dir); st.Processes != 2 || len(st.Workers) > 2 {
		t.Errorf("after --processes 2: %d processes, %d workers", st.Processes, len(st.Workers))
	}
	if e.daemonPID() != daemon {
		t.Error("the daemon was restarted")
	}
	t.Logf("pool changes under load: up to 8 in %s, down to 2 in %s, %d requests ok", up, down, ok)

	// Each change is a release: rollback gives the app its pool back.
	for _, tc := range []struct {
		args      []string
		processes int
	}{{[]string{"rollback", "pools-a.test", "--yes"}, 8}, {[]string{"rollback", "pools-a.test", "--to", "1", "--yes"}, 3}} {
		if code, out, errOut := e.run(tc.args...); code != 0 || !strings.Contains(out, "its settings as the release had them") {
			t.Fatalf("%v: exit %d\n%s%s", tc.args, code, out, errOut)
		}
		if st := e.ctlApp(c, dir); st.Processes != tc.processes || st.HarakiriSec != 20 {
			t.Errorf("after %v: %d processes, harakiri %d; want %d and 20", tc.args, st.Processes, st.HarakiriSec, tc.processes)
		}
		e.onlyCurrentPoolServes(c, dir)
	}
}

// ctlApp is the daemon's view of the app in dir (the current pool, not
// one retiring).
func (e *deployEnv) ctlApp(c *control.Client, dir string) pool.AppStats {
	e.t.Helper()
	apps, err := c.Apps()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range apps.Apps {
		if a.Chdir == dir && !a.Retiring {
			return a
		}
	}
	e.t.Fatalf("no app for %s in ctl apps: %+v", dir, apps)
	return pool.AppStats{}
}

// onlyCurrentPoolServes fails if a pool that was replaced still has
// workers when the command that replaced it has returned: its settings
// would still be serving.
func (e *deployEnv) onlyCurrentPoolServes(c *control.Client, dir string) {
	e.t.Helper()
	apps, err := c.Apps()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range apps.Apps {
		if a.Chdir == dir && a.Retiring && len(a.Workers) > 0 {
			e.t.Errorf("a replaced pool (processes %d) still has %d workers", a.Processes, len(a.Workers))
		}
	}
}

func busy(st pool.AppStats) int {
	n := 0
	for _, w := range st.Workers {
		if w.State == "busy" {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds, failing after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
