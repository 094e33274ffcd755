package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// terminal is a shell command running in a tmux pane of its own, for tests
// that need a real terminal. Each one has a private tmux server (its own
// socket, no user config): on the shared default server, one test's
// kill-session could stop the server while another test's new-session was
// connecting to it ("server exited unexpectedly", seen in CI).
type terminal struct {
	t      *testing.T
	tmux   string
	socket string
	done   string
}

// startTerminal runs script in a width×height pane. The script's exit
// status is written to a file that appears whole (written, then renamed),
// so a read never sees it half made.
func startTerminal(t *testing.T, width, height, script string) *terminal {
	t.Helper()
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatal("tmux is not installed: make test installs it")
	}
	dir := t.TempDir()
	term := &terminal{t: t, tmux: tmux, socket: filepath.Join(dir, "tmux.sock"), done: filepath.Join(dir, "status")}
	wrapped := script + "; echo $? > " + term.done + ".tmp && mv " + term.done + ".tmp " + term.done + "; sleep 60"
	if out, err := term.command("new-session", "-d", "-s", "test", "-x", width, "-y", height, wrapped).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { _ = term.command("kill-server").Run() })
	return term
}

func (term *terminal) command(args ...string) *exec.Cmd {
	return exec.Command(term.tmux, append([]string{"-f", "/dev/null", "-S", term.socket}, args...)...)
}

// screen is what the pane shows, with wrapped lines joined, plus up to 100
// lines of scrollback.
func (term *terminal) screen() string {
	b, _ := term.command("capture-pane", "-p", "-J", "-S", "-100", "-t", "test").Output()
	return string(b)
}

// keys types into the pane (tmux key names: "Enter", "q").
func (term *terminal) keys(keys ...string) {
	term.t.Helper()
	if out, err := term.command(append([]string{"send-keys", "-t", "test"}, keys...)...).CombinedOutput(); err != nil {
		term.t.Fatalf("tmux send-keys: %v %s", err, out)
	}
}

// waitFor waits until the screen shows want.
func (term *terminal) waitFor(want string, deadline time.Time) {
	term.t.Helper()
	for !strings.Contains(term.screen(), want) {
		if time.Now().After(deadline) {
			term.t.Fatalf("the terminal never showed %q:\n%s", want, term.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exitStatus waits for the script to end and returns its exit status.
func (term *terminal) exitStatus(deadline time.Time) string {
	term.t.Helper()
	for {
		if b, err := os.ReadFile(term.done); err == nil {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("the command did not finish:\n%s", term.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
