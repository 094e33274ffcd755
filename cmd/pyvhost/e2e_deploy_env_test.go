package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// envPy answers with the variables the test gives it, as the app sees them.
const envPy = `import os

if os.environ.get("IMPORT_FAIL"):
    raise RuntimeError("IMPORT_FAIL is set")

def application(environ, start_response):
    if os.environ.get("BREAK"):
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"broken by BREAK\n"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    names = environ.get("QUERY_STRING", "").split(",")
    return [("|".join("%s=%s" % (n, os.environ.get(n, "-")) for n in names) + "\n").encode()]
`

// secretMarker is a value that must never show anywhere but in the app.
const secretMarker = "s3cr3t-marker-9f1c"

// TestDeployAppEnvironment: --env-file and --env give the app its own
// environment (dotenv quoting, multi-line values), stored root-only in
// the state dir and never in nginx's files, ctl's JSON, the daemon's log
// or the environment and command line of pyvhost's own processes; it
// survives a daemon restart (found by the app's identity), and a redeploy
// that changes a secret under load drops no request and is in force when
// the deploy returns.
func TestDeployAppEnvironment(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	dir := e.app("envapp", map[string]string{"envapp.py": envPy})
	envFile := filepath.Join(e.dir, "prod.env")
	write(t, envFile, "# production\nexport SECRET_KEY='"+secretMarker+"-1'\nDEBUG=False # not True\nMULTI=\"line one\\nline two\"\n")
	args := []string{"env.test", "--app-dir", dir, "--module", "envapp", "--venv", venv, "--listen", e.listen}
	out := e.deploy(append(args, "--env-file", envFile, "--env", "LANG=de_DE.UTF-8")...)
	if !strings.Contains(out, "set DEBUG, LANG, MULTI, SECRET_KEY (values not shown)") || strings.Contains(out, secretMarker) {
		t.Fatalf("the plan should name the variables and no value:\n%s", out)
	}
	e.want("env.test", "/?SECRET_KEY,DEBUG,MULTI,LANG,PYVHOST_WORKER", 200,
		"SECRET_KEY="+secretMarker+"-1|DEBUG=False|MULTI=line one\nline two|LANG=de_DE.UTF-8|PYVHOST_WORKER=")
	files, err := filepath.Glob(filepath.Join(appconf.Dir(e.state), "*.json"))
	if err != nil || len(files) != 1 {
		t.Fatalf("settings files: %v %v, want one", files, err)
	}
	if st, _ := os.Stat(files[0]); st.Mode().Perm() != 0o600 {
		t.Errorf("settings file mode %v, want 0600", st.Mode().Perm())
	}
	e.noSecretAnywhere(secretMarker)

	// Found again by the app's identity after a daemon restart.
	e.stopDaemon()
	e.deploy(args...)
	e.want("env.test", "/?SECRET_KEY", 200, "SECRET_KEY="+secretMarker+"-1\n")

	// A changed secret under load: nothing dropped, in force at once.
	load := startSoakLoad(e, []string{"env.test"}, 4)
	start := time.Now()
	out = e.deploy(append(args, "--env", "SECRET_KEY="+secretMarker+"-2")...)
	took := time.Since(start)
	e.want("env.test", "/?SECRET_KEY,DEBUG", 200, "SECRET_KEY="+secretMarker+"-2|DEBUG=False\n")
	ok, bad := load.stop()
	if len(bad) > 0 || ok == 0 {
		t.Fatalf("%d requests failed during the redeploy (%d ok): %v", len(bad), ok, bad[:min(len(bad), 5)])
	}
	if !strings.Contains(out, "change SECRET_KEY (values not shown)") {
		t.Errorf("the plan should say SECRET_KEY changes:\n%s", out)
	}
	t.Logf("redeploy with a changed secret under load: %s, %d requests ok", took, ok)
	e.noSecretAnywhere(secretMarker)

	// A deploy whose new settings break the app fails, and the old ones
	// are back, in the files and in the running app.
	before := e.snapshot(true)
	if code, _, errOut := e.run(append(append([]string{"deploy"}, args...), "--env", "BREAK=1", "--yes")...); code == 0 || !strings.Contains(errOut, "everything was put back") {
		t.Fatalf("deploy --env BREAK=1: exit %d: %s", code, errOut)
	}
	e.unchanged(before, true, "a deploy whose settings failed the smoke test")
	e.want("env.test", "/?SECRET_KEY,BREAK", 200, "SECRET_KEY="+secretMarker+"-2|BREAK=-\n")

	// Bad input changes nothing, with a one-line error naming file and line.
	write(t, envFile, "GOOD=1\nBAD LINE\n")
	before = e.snapshot(true)
	for _, bad := range [][]string{{"--env-file", envFile}, {"--env", "1X=2"}, {"--env", "PYVHOST_WORKER=x"}, {"--env", "NOEQUALS"}} {
		code, _, errOut := e.run(append(append([]string{"deploy"}, args...), append(bad, "--yes")...)...)
		if code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("deploy %v: exit %d %q, want a one-line refusal (exit 2)", bad, code, errOut)
		}
	}
	if _, _, errOut := e.run(append(append([]string{"deploy"}, args...), "--env-file", envFile, "--yes")...); !strings.Contains(errOut, envFile+":2:") {
		t.Errorf("a bad dotenv line: %q, want it named as %s:2", errOut, envFile)
	}
	e.unchanged(before, true, "a deploy refused for a bad --env")
}

// noSecretAnywhere fails if marker is in nginx's files, ctl's JSON, the
// daemon's log, or the environment or command line of the daemon and its
// master-side helpers (the app's own processes hold it: that is the point).
func (e *deployEnv) noSecretAnywhere(marker string) {
	e.t.Helper()
	err := filepath.WalkDir(e.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if rel, _ := filepath.Rel(e.dir, p); strings.HasPrefix(rel, "state/apps/") || strings.HasPrefix(rel, "apps/") || filepath.Ext(rel) == ".env" && filepath.Dir(rel) == "." {
			return nil // the settings themselves, the app's code, the test's dotenv files
		}
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), marker) {
			e.t.Errorf("the secret is in %s", p)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, args := range [][]string{{"ctl", "apps", "--json"}, {"ctl", "status", "--json"}, {"sites", "--json"}, {"ctl", "apps"}} {
		if _, out, _ := e.run(args...); strings.Contains(out, marker) {
			e.t.Errorf("pyvhost %v shows the secret", args)
		}
	}
	pid := e.daemonPID()
	for _, f := range []string{"environ", "cmdline"} {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f)); err != nil || strings.Contains(string(b), marker) {
			e.t.Errorf("the daemon's /proc/%d/%s holds the secret (or cannot be read: %v)", pid, f, err)
		}
	}
	c, err := control.Dial(e.ctl)
	if err != nil {
		e.t.Fatal(err)
	}
	apps, err := c.Apps()
	if err != nil || len(apps.Apps) == 0 {
		e.t.Fatalf("ctl apps: %v", err)
	}
	if b, _ := json.Marshal(apps); strings.Contains(string(b), marker) {
		e.t.Error("the control API's apps hold the secret")
	}
	if apps.Apps[0].EnvVars == 0 {
		e.t.Errorf("ctl apps says the app has no environment: %+v", apps.Apps[0])
	}
}

// TestConfigCommand: pyvhost config sets, unsets, lists (masked unless
// --show-values) and imports an app's environment, reloading the app; a
// change the app cannot import with is put back and the old code serves
// on; --no-reload only stores; pyvhost run and the preflight import get
// the environment too.
func TestConfigCommand(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	dir := e.app("envapp", map[string]string{"envapp.py": envPy})
	args := []string{"env.test", "--app-dir", dir, "--module", "envapp", "--venv", venv, "--listen", e.listen}
	e.deploy(args...)
	config := func(wantCode int, args ...string) string {
		t.Helper()
		code, out, errOut := e.run(append([]string{"config", "env.test"}, args...)...)
		if code != wantCode || (code != 0 && strings.Count(strings.TrimSpace(errOut), "\n") > 0) {
			t.Fatalf("config %v: exit %d (want %d)\n%s%s", args, code, wantCode, out, errOut)
		}
		return out + errOut
	}
	if out := config(0, "set", "A=1", "SECRET_KEY="+secretMarker); !strings.Contains(out, "reloaded with the new environment") {
		t.Errorf("config set: %q", out)
	}
	e.want("env.test", "/?A,SECRET_KEY", 200, "A=1|SECRET_KEY="+secretMarker+"\n")
	if out := config(0, "list"); !strings.Contains(out, "SECRET_KEY") || !strings.Contains(out, "********") || strings.Contains(out, secretMarker) {
		t.Errorf("config list should mask the values:\n%s", out)
	}
	if out := config(0, "list", "--json"); strings.Contains(out, secretMarker) || !strings.Contains(out, `"A": "********"`) {
		t.Errorf("config list --json should mask the values:\n%s", out)
	}
	if out := config(0, "list", "--show-values"); !strings.Contains(out, secretMarker) {
		t.Errorf("config list --show-values:\n%s", out)
	}
	code, out, errOut := e.run("run", "env.test", "--", "python", "-c", "import os; print(os.environ['SECRET_KEY'], os.environ['A'])")
	if code != 0 || out != secretMarker+" 1\n" {
		t.Errorf("pyvhost run: exit %d %q %q, want the app's environment", code, out, errOut)
	}
	config(0, "unset", "A")
	e.want("env.test", "/?A", 200, "A=-\n")

	envFile := filepath.Join(e.dir, "bad.env")
	write(t, envFile, "OK=1\n'oops\n")
	before := e.snapshot(true)
	config(2, "unset", "NOPE")
	config(2, "set", "1BAD=x")
	config(2, "frobnicate")
	if out := config(2, "import", envFile); !strings.Contains(out, envFile+":2:") {
		t.Errorf("config import of a bad file: %q", out)
	}
	// The app does not import with it: refused, the old environment put
	// back, the old code still serving.
	if out := config(1, "set", "IMPORT_FAIL=1"); !strings.Contains(out, "IMPORT_FAIL is set") || !strings.Contains(out, "the old settings are stored again") {
		t.Errorf("config set IMPORT_FAIL=1: %q", out)
	}
	e.want("env.test", "/?SECRET_KEY,IMPORT_FAIL", 200, "SECRET_KEY="+secretMarker+"|IMPORT_FAIL=-\n")
	// The preflight import sees a deploy's environment too.
	if code, _, errOut := e.run(append(append([]string{"deploy"}, args...), "--env", "IMPORT_FAIL=1", "--yes")...); code == 0 || !strings.Contains(errOut, "IMPORT_FAIL is set") {
		t.Errorf("deploy --env IMPORT_FAIL=1: exit %d %q, want the preflight to fail", code, errOut)
	}
	e.unchanged(before, true, "refused config changes")

	write(t, envFile, "B=2\nexport C=\"three\"\n")
	if out := config(0, "import", envFile, "--no-reload"); !strings.Contains(out, "next reload or deploy") {
		t.Errorf("config import --no-reload: %q", out)
	}
	e.want("env.test", "/?B", 200, "B=-\n")
	e.deploy(args...)
	e.want("env.test", "/?B,C,SECRET_KEY", 200, "B=2|C=three|SECRET_KEY="+secretMarker+"\n")
	e.noSecretAnywhere(secretMarker)
}
