package main

import (
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestDeployNginxTestBeside: with nginx -t beside the reload (what a deploy
// does on its own where nginx -t is slow: thousands of sites), a site goes
// live; a config nginx rejects fails the deploy with nginx's words, leaves
// the files byte for byte and nginx serving what it served; a value that
// is not one of the flag's is refused before anything is touched.
func TestDeployNginxTestBeside(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	app := e.app("beside", map[string]string{"beside.py": helloPy})
	out := e.deploy("beside.test", "--app-dir", app, "--module", "beside", "--venv", venv, "--listen", e.listen, "--nginx-test", "beside")
	for _, want := range []string{"start nginx -t, beside nginx's reload and the daemon's re-read", "wait for nginx -t's verdict"} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan lacks %q:\n%s", want, out)
		}
	}
	e.want("beside.test", "/", 200, "hello from beside.test")

	// A name longer than nginx's server_names_hash_bucket_size: nginx -t
	// rejects the config, and so would the master's reload.
	long := e.app("long", map[string]string{"long.py": helloPy})
	before := e.snapshot(false)
	start := time.Now()
	code, _, errOut := e.run("deploy", "long.test", "--alias", strings.Repeat("a", 60)+".example.com", "--app-dir", long, "--module", "long",
		"--venv", venv, "--listen", e.listen, "--nginx-test", "beside", "--yes")
	if code != 1 || !strings.Contains(errOut, "server_names_hash_bucket_size") || !strings.Contains(errOut, "nginx -t rejects the new config") {
		t.Fatalf("a config nginx rejects: exit %d\n%s", code, errOut)
	}
	t.Logf("failed deploy took %s", time.Since(start))
	e.unchanged(before, false, "a deploy whose nginx -t beside the reload failed")
	e.want("beside.test", "/", 200, "hello from beside.test")
	e.want("long.test", "/", 200, "other site")

	code, _, errOut = e.run("deploy", "never.test", "--app-dir", long, "--module", "long", "--venv", venv, "--listen", e.listen, "--nginx-test", "sometimes", "--yes")
	if code != 2 || !strings.Contains(errOut, `--nginx-test "sometimes": want before, beside or auto`) {
		t.Fatalf("--nginx-test sometimes: exit %d\n%s", code, errOut)
	}
	e.unchanged(before, false, "a refused --nginx-test")
}
