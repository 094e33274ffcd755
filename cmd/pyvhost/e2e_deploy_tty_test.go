package main

import (
	"fmt"
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
	e := newDeployEnv(t, true)
	app := e.app("tty", map[string]string{"tty.py": helloPy})
	args := []string{"deploy", "tty.test", "--app-dir", app, "--module", "tty", "--venv", daemontest.Venv(t), "--listen", e.listen}

	before := e.snapshot(true)
	code, out, errOut := e.run(args...)
	if code != 2 || !strings.Contains(errOut, "pass --yes (there is no terminal to ask on)") || !strings.Contains(out, "Plan for tty.test") {
		t.Fatalf("no terminal, no --yes: %d\n%s\n%s", code, out, errOut)
	}
	e.unchanged(before, true, "a refused deploy")

	env := strings.Join(e.vars(), " ")
	answer := func(key, want string) string {
		term := startTerminal(t, "250", "60", fmt.Sprintf("env -u NO_COLOR %s %s %s", env, daemontest.Binary(t), strings.Join(args, " ")))
		deadline := time.Now().Add(20 * time.Second)
		term.waitFor("Deploy tty.test? [y/N]", deadline)
		term.keys(key, "Enter")
		if code := term.exitStatus(deadline); code != want {
			t.Fatalf("answered %q: exit %s, want %s\n%s", key, code, want, term.screen())
		}
		return term.screen()
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
