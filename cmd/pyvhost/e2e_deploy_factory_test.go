package main

import (
	"fmt"
	"os"
	osuser "os/user"
	"path/filepath"
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

// flaskr is the Flask tutorial's shape: an app factory, a sqlite database
// in the instance folder, an init-db command, and an index that needs the
// tables (a 500 without them).
var flaskr = map[string]string{
	"flaskr/__init__.py": `import os
from flask import Flask


def create_app(test_config=None):
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DATABASE=os.path.join(app.instance_path, "flaskr.sqlite"))
    os.makedirs(app.instance_path, exist_ok=True)
    from . import db
    db.init_app(app)

    @app.route("/")
    def index():
        n = db.get_db().execute("SELECT count(*) FROM post").fetchone()[0]
        return "%d posts" % n

    return app
`,
	"flaskr/db.py": `import sqlite3
import click
from flask import current_app, g


def get_db():
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"])
    return g.db


def close_db(e=None):
    db = g.pop("db", None)
    if db is not None:
        db.close()


@click.command("init-db")
def init_db_command():
    db = get_db()
    db.executescript("DROP TABLE IF EXISTS post; CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT);")
    click.echo("Initialized the database.")


def init_app(app):
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
`,
}

// TestDeployReleaseCommands: a first deploy runs its release command
// (flaskr's init-db) before the app is first served, streaming its output;
// the commands are kept, so a redeploy runs them again; a failing one
// fails the deploy, puts everything back, and says its own effects stay.
func TestDeployReleaseCommands(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	dir := e.app("flaskr", flaskr)
	args := []string{"flaskr.test", "--app-dir", dir, "--module", "flaskr:create_app()", "--venv", venv, "--listen", e.listen}
	out := e.deploy(append(args, "--release", "flask --app flaskr init-db", "--release", "echo done, as $(id -un) in $PWD")...)
	uid, _ := daemontest.AppOwner()
	user := fmt.Sprint(uid)
	if u, err := osuser.LookupId(user); err == nil {
		user = u.Username
	}
	for _, want := range []string{"release command 1 of 2", "| Initialized the database.", "| done, as " + user + " in " + dir} {
		if !strings.Contains(out, want) {
			t.Errorf("the first deploy's output lacks %q:\n%s", want, out)
		}
	}
	e.want("flaskr.test", "/", 200, "0 posts")
	if b, err := os.ReadFile(filepath.Join(e.state, "logs", "flaskr.test-release.log")); err != nil || !strings.Contains(string(b), "Initialized the database.") {
		t.Errorf("release log: %v %q", err, b)
	}
	// Kept with the site: a plain redeploy runs them again.
	if out := e.deploy(args...); !strings.Contains(out, "Initialized the database.") {
		t.Errorf("a redeploy did not run the stored release commands:\n%s", out)
	}
	before := e.snapshot(true)
	code, out, errOut := e.run(append(append([]string{"deploy"}, args...), "--release", "echo migrating; exit 3", "--yes")...)
	if code == 0 || !strings.Contains(out, "| migrating") || !strings.Contains(errOut, "is not undone") || !strings.Contains(errOut, "everything was put back") {
		t.Fatalf("a failing release command: exit %d\n%s\n%s", code, out, errOut)
	}
	e.unchanged(before, true, "a deploy whose release command failed")
	e.want("flaskr.test", "/", 200, "0 posts")
}

// TestDeployPyprojectDependencies: an app dir with a pyproject.toml and no
// requirements.txt gets its [project] dependencies installed; one pip
// cannot install fails the deploy with pip's words, and nothing is left.
func TestDeployPyprojectDependencies(t *testing.T) {
	skipShort(t)
	t.Setenv("PIP_NO_INDEX", "1") // no PyPI here: pip fails at once instead of retrying the network
	e := newDeployEnv(t, true)
	dir := e.app("pyproj", map[string]string{"pyproj.py": helloPy,
		"pyproject.toml": "[project]\nname = \"pyproj\"\nversion = \"1.0\"\ndependencies = [\"flask>=1.0\", \"click\"]\n"})
	venv := filepath.Join(e.dir, "pyproj-venv")
	args := []string{"pyproj.test", "--app-dir", dir, "--module", "pyproj", "--venv", venv, "--python", "/usr/bin/python3", "--system-site-packages", "--listen", e.listen}
	out := e.deploy(args...)
	if !strings.Contains(out, "pip install the [project] dependencies of "+filepath.Join(dir, "pyproject.toml")) {
		t.Errorf("the plan does not install the pyproject's dependencies:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(e.state, "logs", "pyproj.test-pip.log")); err != nil || !strings.Contains(string(b), "Requirement already satisfied: flask>=1.0") {
		t.Errorf("pip log: %v\n%s", err, b)
	}
	e.want("pyproj.test", "/", 200, "hello from pyproj.test")
	if out := e.deploy(args...); strings.Contains(out, "pip install") {
		t.Errorf("an unchanged pyproject.toml was installed again:\n%s", out)
	}
	// No index here: a dependency that is not installed cannot be.
	write(t, filepath.Join(dir, "pyproject.toml"), "[project]\nname = \"pyproj\"\nversion = \"1.1\"\ndependencies = [\"pyvhost-no-such-package==9.9\"]\n")
	before := e.snapshot(false)
	code, _, errOut := e.run(append(append([]string{"deploy"}, args...), "--yes")...)
	if code == 0 || !strings.Contains(errOut, "pyvhost-no-such-package") {
		t.Fatalf("an uninstallable dependency: exit %d\n%s", code, errOut)
	}
	e.unchanged(before, false, "a deploy whose dependencies failed")
	e.want("pyproj.test", "/", 200, "hello from pyproj.test")
}
