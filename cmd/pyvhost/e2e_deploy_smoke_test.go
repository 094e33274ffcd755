package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// smokeApps answer the smoke test in the ways that used to pass it.
var smokeApps = map[string]string{
	// Django's answer to a Host not in ALLOWED_HOSTS: a 400, and a log line.
	"s400.py": `import sys
def application(environ, start_response):
    sys.stderr.write("Invalid HTTP_HOST header: %r. You may need to add it to ALLOWED_HOSTS.\n" % environ["HTTP_HOST"])
    start_response("400 Bad Request", [("Content-Type", "text/html")])
    return [b"<h1>Bad Request (400)</h1>"]
`,
	// A redirect to a page that raises.
	"s301.py": `def application(environ, start_response):
    if environ["PATH_INFO"] == "/":
        start_response("301 Moved Permanently", [("Location", "/home")])
        return [b""]
    raise RuntimeError("boom in the app's /home")
`,
	// A healthy root and a broken health check.
	"sok.py": `def application(environ, start_response):
    if environ["PATH_INFO"] == "/healthz":
        raise RuntimeError("the database is down")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"root ok"]
`,
}

// TestDeploySmokeTellsTheTruth: a first deploy whose app answers 400, or
// 301 to a 500, or whose --smoke-path fails, is refused with what the app
// answered and its log lines (the traceback) shown, and everything put
// back; --smoke-path none deploys the 400 app anyway.
func TestDeploySmokeTellsTheTruth(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	dir := e.app("smoke", smokeApps)
	e.deploy("good.test", "--app-dir", dir, "--module", "sok", "--venv", venv, "--listen", e.listen) // the daemon runs
	before := e.snapshot(false)
	for _, tc := range []struct {
		module string
		extra  []string
		want   []string
	}{
		{"s400", nil, []string{"answered 400 Bad Request: <h1>Bad Request (400)</h1>", "Invalid HTTP_HOST header: 'bad.test'"}},
		{"s301", nil, []string{"answered 301 -> /home, then 500 Internal Server Error", "RuntimeError: boom in the app's /home"}},
		{"sok", []string{"--smoke-path", "/healthz"}, []string{"/healthz (Host bad.test) answered 500 Internal Server Error", "RuntimeError: the database is down"}},
	} {
		args := append([]string{"deploy", "bad.test", "--app-dir", dir, "--module", tc.module, "--venv", venv, "--listen", e.listen, "--yes"}, tc.extra...)
		code, _, errOut := e.run(args...)
		if code == 0 {
			t.Fatalf("%s: the deploy passed its smoke test", tc.module)
		}
		t.Logf("%s:\n%s", tc.module, errOut)
		for _, w := range append(tc.want, "everything was put back as it was", "the app's log meanwhile ("+filepath.Join(e.dir, "applogs")) {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.module, w, errOut)
			}
		}
		e.unchanged(before, false, "a deploy whose smoke test failed ("+tc.module+")")
		e.want("bad.test", "/", 200, "other site")
	}
	e.deploy("bad.test", "--app-dir", dir, "--module", "s400", "--venv", venv, "--listen", e.listen, "--smoke-path", "none")
	e.want("bad.test", "/", 400, "Bad Request (400)")
	// Kept with the app: a redeploy without --smoke-path skips it too.
	if out := e.deploy("bad.test", "--app-dir", dir, "--module", "s400", "--venv", venv); strings.Contains(out, "must be answered") {
		t.Errorf("a redeploy smoke-tested an app deployed with --smoke-path none:\n%s", out)
	}
}
