package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// starPy is a Starlette app that says which version and process answered.
const starPy = `import os
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

VERSION = "v1"


async def home(request):
    return PlainTextResponse("%s %s pid %d\n" % (VERSION, request.url.scheme, os.getpid()))

app = Starlette(routes=[Route("/", home)])
`

// failStartPy is an ASGI app whose lifespan startup fails.
const failStartPy = `from starlette.applications import Starlette


async def connect():
    raise ConnectionRefusedError("cannot reach the database at 127.0.0.1:1")

app = Starlette(on_startup=[connect])
`

// TestDeployASGI: a Starlette app goes from nothing to live with one
// deploy (the callable's being async is enough); a redeploy with new code
// and more processes (a new pool takes over) and a rollback, under load,
// fail no request; --interface wsgi on it is
// refused at the preflight in one line, and so is an app whose lifespan
// startup fails, with its traceback — both changing nothing.
func TestDeployASGI(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	dir := e.app("star", map[string]string{"star.py": starPy})
	args := []string{"star.test", "--app-dir", dir, "--module", "star:app", "--venv", venv, "--listen", e.listen}
	e.deploy(args...)
	e.want("star.test", "/", 200, "v1 http pid")
	if _, out, _ := e.run("ctl", "apps"); !strings.Contains(out, "star.test") || !strings.Contains(out, "ready (asgi)") {
		t.Errorf("ctl apps does not list the ASGI app:\n%s", out)
	}

	load := startSoakLoad(e, []string{"star.test"}, 4)
	if err := os.WriteFile(dir+"/star.py", []byte(strings.Replace(starPy, `"v1"`, `"v2"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	e.deploy(append(args, "--processes", "3")...)
	e.want("star.test", "/", 200, "v2 http pid") // the first request after the deploy: the new code
	if code, out, errOut := e.run("rollback", "star.test", "--yes"); code != 0 {
		t.Fatalf("rollback: %d\n%s%s", code, out, errOut)
	}
	after := load.ok.Load()
	waitFor(t, 10*time.Second, "requests after the rollback", func() bool { return load.ok.Load() > after+20 })
	ok, bad := load.stop()
	if len(bad) > 0 || ok == 0 {
		t.Fatalf("%d requests failed across the redeploy and rollback (%d ok): %v", len(bad), ok, bad[:min(len(bad), 5)])
	}
	t.Logf("redeploy and rollback of an ASGI site under load: %d requests, none failed", ok)

	before := e.snapshot(true)
	code, _, errOut := e.run(append(append([]string{"deploy"}, args...), "--interface", "wsgi", "--yes")...)
	if code == 0 || !strings.Contains(errOut, "star:app is an ASGI app (async, taking scope, receive, send), not WSGI as --interface wsgi says") {
		t.Fatalf("--interface wsgi on an ASGI app: exit %d\n%s", code, errOut)
	}
	e.unchanged(before, true, "a deploy refused for its --interface")

	bad2 := e.app("failstart", map[string]string{"failstart.py": failStartPy})
	code, _, errOut = e.run("deploy", "fail.test", "--app-dir", bad2, "--module", "failstart:app", "--venv", venv, "--listen", e.listen, "--yes")
	if code == 0 || !strings.Contains(errOut, "ConnectionRefusedError: cannot reach the database") {
		t.Fatalf("an app whose lifespan startup fails: exit %d\n%s", code, errOut)
	}
	e.unchanged(before, true, "a deploy refused for its lifespan startup")
}
