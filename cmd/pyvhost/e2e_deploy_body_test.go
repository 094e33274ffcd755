package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

const uploadPy = `def application(environ, start_response):
    n = 0
    inp = environ["wsgi.input"]
    while True:
        b = inp.read(65536)
        if not b:
            break
        n += len(b)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"got %d bytes\n" % n]
`

// TestDeployMaxBody: a site takes ordinary uploads by default (16m, not
// nginx's 1m); --max-body raises it; a redeploy without the flag keeps it.
func TestDeployMaxBody(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	dir := e.app("upload", map[string]string{"upload.py": uploadPy})
	post := func(mb int) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+e.listen+"/", bytes.NewReader(make([]byte, mb<<20)))
		req.Host = "up.test"
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	want := func(mb, code int) {
		t.Helper()
		got, body := post(mb)
		if got != code || (code == 200 && body != fmt.Sprintf("got %d bytes\n", mb<<20)) {
			t.Fatalf("a %d MB upload: %d %q, want %d", mb, got, trim(body), code)
		}
	}
	e.deploy("up.test", "--app-dir", dir, "--module", "upload", "--venv", venv, "--listen", e.listen)
	want(5, 200) // nginx's own default would refuse it
	want(20, 413)
	out := e.deploy("up.test", "--app-dir", dir, "--module", "upload", "--venv", venv, "--max-body", "32m")
	if !strings.Contains(out, "+    client_max_body_size 32m;") {
		t.Errorf("the diff should show the new limit:\n%s", out)
	}
	want(20, 200)
	e.deploy("up.test", "--app-dir", dir, "--module", "upload", "--venv", venv) // keeps 32m
	want(20, 200)
	if code, _, errOut := e.run("deploy", "up.test", "--app-dir", dir, "--module", "upload", "--max-body", "16mb", "--yes"); code != 2 || !strings.Contains(errOut, `--max-body "16mb": want a size as nginx writes it`) {
		t.Fatalf("--max-body 16mb: %d %s", code, errOut)
	}
}

// TestDeployRefusesHandEdits: a line added by hand to pyvhost's file (the
// client_max_body_size of the issue) is shown and the deploy refused, the
// file untouched; --force overwrites it.
func TestDeployRefusesHandEdits(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	dir := e.app("edited", map[string]string{"edited.py": helloPy})
	args := []string{"edited.test", "--app-dir", dir, "--module", "edited", "--venv", venv, "--listen", e.listen}
	e.deploy(args...)
	site := filepath.Join(e.dir, "sites-available", "edited.test.conf")
	b, err := os.ReadFile(site)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b), "    location / {", "    add_header X-Hand-Edit yes;\n\n    location / {", 1)
	write(t, site, edited)
	before := e.snapshot(true)
	code, _, errOut := e.run(append([]string{"deploy"}, append(args, "--alias", "www.edited.test", "--yes")...)...)
	if code == 0 || !strings.Contains(errOut, "edited by hand since pyvhost wrote it (release 1)") || !strings.Contains(errOut, "+    add_header X-Hand-Edit yes;") {
		t.Fatalf("a deploy over a hand edit: exit %d\n%s", code, errOut)
	}
	e.unchanged(before, true, "a deploy refused for a hand edit")
	e.deploy(append(args, "--alias", "www.edited.test", "--force")...)
	if b, _ := os.ReadFile(site); strings.Contains(string(b), "X-Hand-Edit") {
		t.Fatalf("--force kept the hand edit:\n%s", b)
	}
	e.want("www.edited.test", "/", 200, "hello from www.edited.test")

	// Rollback and undeploy would lose a hand edit just the same.
	write(t, site, strings.Replace(mustRead(t, site), "    location / {", "    add_header X-Hand-Edit again;\n\n    location / {", 1))
	before = e.snapshot(true)
	for _, cmd := range [][]string{{"rollback", "edited.test", "--yes"}, {"undeploy", "edited.test", "--yes"}} {
		code, _, errOut := e.run(cmd...)
		if code == 0 || !strings.Contains(errOut, "edited by hand since pyvhost wrote it (release 2)") || !strings.Contains(errOut, "+    add_header X-Hand-Edit again;") {
			t.Errorf("%v over a hand edit: exit %d\n%s", cmd, code, errOut)
		}
		e.unchanged(before, true, cmd[0]+" refused for a hand edit")
	}
	if code, out, errOut := e.run("undeploy", "edited.test", "--yes", "--force"); code != 0 {
		t.Fatalf("undeploy --force: exit %d\n%s%s", code, out, errOut)
	}
	e.want("edited.test", "/", 200, "other site")
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
