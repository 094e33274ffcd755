package main

// Deploys racing each other, killed half-way, or losing nginx half-way.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestFaultDeployKilled: a deploy SIGKILLed at a random point, then run
// again, leaves nginx's files exactly as an uninterrupted deploy does (the
// repair puts the half-done change back first), the site live; an
// undeploy then leaves them exactly as before the site existed.
func TestFaultDeployKilled(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	good := e.app("good", map[string]string{"good.py": helloPy})
	e.deploy("good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--listen", e.listen)
	app := e.app("killed", map[string]string{"killed.py": helloPy})
	args := []string{"deploy", "killed.test", "--app-dir", app, "--module", "killed", "--venv", venv, "--alias", "www.killed.test", "--listen", e.listen, "--yes"}

	without := e.snapshot(false)
	start := time.Now()
	e.deploy(args[1:]...)
	took := time.Since(start)
	with := e.snapshot(false)
	undeploy := func(round int) {
		t.Helper()
		if code, out, errOut := e.run("undeploy", "killed.test", "--yes"); code != 0 {
			t.Fatalf("round %d: undeploy: %d\n%s\n%s", round, code, out, errOut)
		}
		if now := e.snapshot(false); now != without {
			t.Fatalf("round %d: after the undeploy nginx's files differ from before the site existed:\n%s\nwant:\n%s", round, now, without)
		}
	}
	undeploy(0)

	rounds := daemontest.FaultRounds(4)
	for r := 1; r <= rounds; r++ {
		cmd := e.command(args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rand.Int64N(int64(took)))
		timer := time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		err := cmd.Wait()
		timer.Stop()
		killed := err != nil
		t0 := time.Now()
		code, out, errOut := e.run(args...)
		t.Logf("round %d: killed after %v (exited by the kill: %v); the next deploy took %v", r, delay, killed, time.Since(t0))
		if code != 0 {
			t.Fatalf("round %d (killed after %v: %v): the deploy after: %d\n%s\n%s\n%s", r, delay, killed, code, out, errOut, e.daemonLog())
		}
		if now := e.snapshot(false); now != with {
			t.Fatalf("round %d (killed after %v): nginx's files differ from an uninterrupted deploy's:\n%s\nwant:\n%s", r, delay, now, with)
		}
		e.want("www.killed.test", "/", 200, "hello from www.killed.test")
		e.want("good.test", "/", 200, "hello from good.test")
		undeploy(r)
	}
	t.Logf("%d deploys SIGKILLed at random points within the %v a deploy takes: each repaired", rounds, took)
}

// TestFaultDeployNginxKilled: nginx SIGKILLed (master and workers) at a
// random point of a deploy. The deploy either completes or puts
// everything back — nginx's files are one whole state or the other, never
// half — and the next deploy starts nginx again and is live.
func TestFaultDeployNginxKilled(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, false) // the deploy starts nginx, in the background
	venv := daemontest.Venv(t)
	good := e.app("good", map[string]string{"good.py": helloPy})
	e.deploy("good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--listen", e.listen)
	app := e.app("nk", map[string]string{"nk.py": helloPy})
	args := []string{"deploy", "nk.test", "--app-dir", app, "--module", "nk", "--venv", venv, "--listen", e.listen, "--yes"}
	without := e.snapshot(false)
	start := time.Now()
	e.deploy(args[1:]...)
	took := time.Since(start)
	with := e.snapshot(false)

	for r := 1; r <= daemontest.FaultRounds(3); r++ {
		if code, out, errOut := e.run("undeploy", "nk.test", "--yes"); code != 0 {
			t.Fatalf("round %d: undeploy: %d\n%s\n%s", r, code, out, errOut)
		}
		cmd := e.command(args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rand.Int64N(int64(took)))
		killed := make(chan struct{})
		timer := time.AfterFunc(delay, func() { e.killNginx(); close(killed) })
		err := cmd.Wait()
		if !timer.Stop() {
			<-killed // the kill has happened: it must not land in the next deploy
		}
		switch now := e.snapshot(false); {
		case err == nil && now != with:
			t.Fatalf("round %d (nginx killed after %v): the deploy succeeded but the files are not the deployed ones:\n%s", r, delay, now)
		case err != nil && now != without:
			t.Fatalf("round %d (nginx killed after %v): the deploy failed (%s) but the files are not as before:\n%s", r, delay, stderr.String(), now)
		}
		if code, out, errOut := e.run(args...); code != 0 {
			t.Fatalf("round %d (nginx killed after %v): the next deploy: %d\n%s\n%s", r, delay, code, out, errOut)
		}
		e.want("nk.test", "/", 200, "hello from nk.test")
		e.want("good.test", "/", 200, "hello from good.test")
		t.Logf("round %d: nginx killed after %v; the deploy then: %v", r, delay, firstLine(stderr.String(), "ok"))
	}
}

// killNginx SIGKILLs nginx's master and its workers, as the OOM killer or
// a crash would: its whole process group at once (nginx in the background
// leads a session of its own), so the master cannot respawn a worker
// between the kills and leave it holding the port.
func (e *deployEnv) killNginx() {
	b, err := os.ReadFile(filepath.Join(e.dir, "nginx.pid"))
	if err != nil {
		return
	}
	master, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if master <= 0 {
		return
	}
	_ = syscall.Kill(-master, syscall.SIGKILL)
}

func firstLine(s, empty string) string {
	if s = strings.TrimSpace(s); s == "" {
		return empty
	}
	return strings.SplitN(s, "\n", 2)[0]
}

// TestFaultRacingDeploys: deploys of four sites started at once. The lock
// lets one change nginx's files at a time: each deploy either succeeds or
// is refused in one line naming the deploy that runs; the files end up
// holding exactly the sites that succeeded, each live, and a refused
// deploy run again succeeds.
func TestFaultRacingDeploys(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	good := e.app("good", map[string]string{"good.py": helloPy})
	e.deploy("good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--listen", e.listen)
	const n = 4
	argsOf := func(i int) []string {
		app := filepath.Join(e.dir, "apps", fmt.Sprintf("race%d", i))
		return []string{"deploy", fmt.Sprintf("race%d.test", i), "--app-dir", app, "--module", "race", "--venv", venv, "--listen", e.listen, "--yes"}
	}
	for i := 0; i < n; i++ {
		e.app(fmt.Sprintf("race%d", i), map[string]string{"race.py": helloPy})
	}
	type result struct {
		code   int
		stderr string
		err    error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, errOut, err := e.try(argsOf(i)...)
			results[i] = result{code, errOut, err}
		}()
	}
	wg.Wait()
	won := 0
	for i, r := range results {
		host := fmt.Sprintf("race%d.test", i)
		switch {
		case r.err != nil:
			t.Fatalf("%s: run pyvhost: %v", host, r.err)
		case r.code == 0:
			won++
			e.want(host, "/", 200, "hello from "+host)
		case strings.Contains(r.stderr, "another deploy is running (pid") && strings.Count(strings.TrimSpace(r.stderr), "\n") == 0:
			e.want(host, "/", 200, "other site")
		default:
			t.Fatalf("%s: exit %d: %s, want success or a one-line refusal naming the running deploy", host, r.code, r.stderr)
		}
	}
	if won == 0 {
		t.Fatal("no racing deploy succeeded")
	}
	for i, r := range results {
		if r.code != 0 {
			e.deploy(argsOf(i)[1:]...)
		}
		host := fmt.Sprintf("race%d.test", i)
		e.want(host, "/", 200, "hello from "+host)
	}
	e.want("good.test", "/", 200, "hello from good.test")
	t.Logf("%d of %d racing deploys won the lock; the others were refused and then succeeded", won, n)
}
