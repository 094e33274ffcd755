package main

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

func startDaemonWithApp(t *testing.T) (ctl string, appID string) {
	t.Helper()
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	hello := daemontest.App(t, dir, "hello")
	ctl = filepath.Join(dir, "run", "ctl.sock")
	sock := "127.0.0.1:" + strconv.Itoa(nginxtest.FreePort(t))
	daemontest.Start(t, sock, "-s", sock, "--ctl", ctl, "--vhost-root", dir, "--vhost-root", filepath.Dir(venv))
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Load(control.LoadRequest{Pyhome: venv, Chdir: hello, Script: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	return ctl, st.ID
}

// TestTopPlain: without a terminal, top prints a plain table per refresh.
func TestTopPlain(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the daemon (make test runs it)")
	}
	ctl, _ := startDaemonWithApp(t)
	code, out, errOut := pyvhost(t, "ctl", "top", "--ctl", ctl, "--iterations", "2", "--interval", "100ms")
	if code != 0 || strings.Count(out, "APP / WORKER") != 2 || !strings.Contains(out, "hello") || !strings.Contains(out, "  pid ") {
		t.Fatalf("ctl top: %d %q\n%s", code, errOut, out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Fatalf("escape codes without a terminal:\n%q", out)
	}
}

// TestTopReadsUwsgiStats: --stats reads a real uWSGI's stats server.
func TestTopReadsUwsgiStats(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs uWSGI (make test runs it)")
	}
	uwsgi, err := exec.LookPath("uwsgi")
	if err != nil {
		t.Fatal("uwsgi is not installed: make test installs uwsgi-core")
	}
	stats := "127.0.0.1:" + strconv.Itoa(nginxtest.FreePort(t))
	sock := "127.0.0.1:" + strconv.Itoa(nginxtest.FreePort(t))
	cmd := exec.Command(uwsgi, "--master", "-s", sock, "--stats", stats, "-p", "2")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for {
		var code int
		code, out, _ = pyvhost(t, "ctl", "top", "--stats", stats, "--iterations", "1")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ctl top --stats never read uWSGI's stats: %q", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out, "uWSGI 2.") || strings.Count(out, "  pid ") != 2 {
		t.Fatalf("ctl top --stats:\n%s", out)
	}
}

// TestTopFullScreenInTmux: in a terminal (tmux), top draws full screen
// and q quits, restoring the screen.
func TestTopFullScreenInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the daemon and tmux (make test runs it)")
	}
	ctl, _ := startDaemonWithApp(t)
	term := startTerminal(t, "140", "20", daemontest.Binary(t)+" ctl top --ctl "+ctl)
	deadline := time.Now().Add(10 * time.Second)
	term.waitFor("q quits", deadline)
	if screen := term.screen(); !strings.Contains(screen, "hello") || !strings.Contains(screen, "APP / WORKER") {
		t.Fatalf("top's screen:\n%s", screen)
	}
	term.keys("q")
	if code := term.exitStatus(deadline); code != "0" {
		t.Fatalf("top exited with %s", code)
	}
	if screen := term.screen(); strings.Contains(screen, "APP / WORKER") {
		t.Fatalf("the screen was not restored after q:\n%s", screen)
	}
}
