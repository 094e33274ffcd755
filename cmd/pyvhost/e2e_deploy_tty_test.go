package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestDeployAsksOnATerminal: without --yes, deploy asks on a terminal (in
// tmux here) — "n" changes nothing, "y" deploys with a ✓ per step — and
// refuses outright when there is no terminal to ask on.
func TestDeployAsksOnATerminal(t *testing.T) {
	skipShort(t)
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatal("tmux is not installed: make test installs it")
	}
	e := newDeployEnv(t, true)
	app := e.app("tty", map[string]string{"tty.py": helloPy})
	args := []string{"deploy", "tty.test", "--app-dir", app, "--module", "tty", "--venv", daemontest.Venv(t), "--listen", e.listen}

	before := e.snapshot(true)
	code, out, errOut := e.run(args...)
	if code != 2 || !strings.Contains(errOut, "pass --yes (there is no terminal to ask on)") || !strings.Contains(out, "Plan for tty.test") {
		t.Fatalf("no terminal, no --yes: %d\n%s\n%s", code, out, errOut)
	}
	e.unchanged(before, true, "a refused deploy")

	done := filepath.Join(t.TempDir(), "done")
	env := strings.Join(e.vars(), " ")
	session := "pyvhost-deploy-" + strconv.Itoa(os.Getpid())
	answer := func(key, want string) string {
		os.Remove(done)
		// the exit status appears whole (a rename): a read between the shell's
		// create and its write would see an empty file
		script := fmt.Sprintf("env -u NO_COLOR %s %s %s; echo $? > %s.tmp && mv %s.tmp %s; sleep 60", env, daemontest.Binary(t), strings.Join(args, " "), done, done, done)
		if out, err := exec.Command(tmux, "new-session", "-d", "-s", session, "-x", "250", "-y", "60", script).CombinedOutput(); err != nil {
			t.Fatalf("tmux: %v %s", err, out)
		}
		defer exec.Command(tmux, "kill-session", "-t", session).Run()
		capture := func() string {
			b, _ := exec.Command(tmux, "capture-pane", "-p", "-J", "-S", "-100", "-t", session).Output()
			return string(b)
		}
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(capture(), "Deploy tty.test? [y/N]") {
			if time.Now().After(deadline) {
				t.Fatalf("deploy did not ask:\n%s", capture())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := exec.Command(tmux, "send-keys", "-t", session, key, "Enter").Run(); err != nil {
			t.Fatal(err)
		}
		for {
			if b, err := os.ReadFile(done); err == nil {
				screen := capture()
				if strings.TrimSpace(string(b)) != want {
					t.Fatalf("answered %q: exit %s, want %s\n%s", key, b, want, screen)
				}
				return screen
			}
			if time.Now().After(deadline) {
				t.Fatalf("deploy did not finish:\n%s", capture())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if screen := answer("n", "1"); !strings.Contains(screen, "cancelled: nothing was changed") {
		t.Fatalf("answered n:\n%s", screen)
	}
	e.unchanged(before, true, "a cancelled deploy")
	screen := answer("y", "0")
	if !strings.Contains(screen, "✓ import tty") || !strings.Contains(screen, "✓ reload nginx") || !strings.Contains(screen, "is live") {
		t.Fatalf("answered y:\n%s", screen)
	}
	e.want("tty.test", "/", 200, "hello from tty.test")
}
