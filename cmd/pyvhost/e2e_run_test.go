package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestRun: pyvhost run runs a command as the daemon runs the app — in its
// dir, as its dir's owner, with its venv's python first on PATH — and
// exits with the command's status; an unknown site or mount is refused.
func TestRun(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	dir := e.app("runapp", map[string]string{"runapp.py": helloPy})
	e.deploy("run.test", "--app-dir", dir, "--module", "runapp", "--venv", venv, "--listen", e.listen)
	code, out, errOut := e.run("run", "run.test", "--", "python", "-c",
		"import os, sys; print(os.getcwd(), sys.prefix, os.geteuid(), os.environ.get('VIRTUAL_ENV')); sys.exit(7)")
	uid, _ := daemontest.AppOwner()
	if want := fmt.Sprintf("%s %s %d %s\n", dir, venv, uid, venv); code != 7 || out != want {
		t.Fatalf("pyvhost run: exit %d, %q (stderr %q), want exit 7 and %q", code, out, errOut, want)
	}
	for _, args := range [][]string{{"run", "nope.test", "--", "true"}, {"run", "run.test", "--mount", "/blog", "--", "true"}, {"run", "run.test"}} {
		if code, _, errOut := e.run(args...); code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%v: exit %d %q, want a one-line refusal (exit 2)", args, code, errOut)
		}
	}
}
