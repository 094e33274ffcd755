package main

import (
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

const flaskFactory = `from flask import Flask


def create_app(test_config=None):
    app = Flask(__name__)

    @app.route("/")
    def index():
        return "flaskr factory ok"

    return app
`

// TestDeployAppFactory: --module pkg:create_app() deploys a Flask app
// factory (called once, where the app is imported); --module pkg without
// it is refused before nginx is touched, naming the factory to use.
func TestDeployAppFactory(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t) // Debian's python3-flask through --system-site-packages
	dir := e.app("flaskr", map[string]string{"flaskr/__init__.py": flaskFactory})
	before := e.snapshot(false)
	code, _, errOut := e.run("deploy", "flaskr.test", "--app-dir", dir, "--module", "flaskr", "--venv", venv, "--listen", e.listen, "--yes")
	if code == 0 || !strings.Contains(errOut, "no callable 'application' in flaskr; did you mean flaskr:create_app()?") {
		t.Fatalf("--module flaskr without the factory: exit %d: %s", code, errOut)
	}
	e.unchanged(before, false, "a deploy refused for a missing callable")
	out := e.deploy("flaskr.test", "--app-dir", dir, "--module", "flaskr:create_app()", "--venv", venv, "--listen", e.listen)
	if !strings.Contains(out, "is live") {
		t.Fatalf("deploy of the factory:\n%s", out)
	}
	e.want("flaskr.test", "/", 200, "flaskr factory ok")
}
