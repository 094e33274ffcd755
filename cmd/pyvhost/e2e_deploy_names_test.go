package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestDeployPastNginxNameHash: with a few hundred sites (two names each)
// nginx can no longer size its server names' hash as it wants and warns.
// The deploy that crosses that line succeeds — the site is live — and says
// which settings fix it; once they are in nginx.conf, no note.
func TestDeployPastNginxNameHash(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	// Sites up to just below the line: the last one added crossed it.
	warns := func() bool {
		out, err := exec.Command(nginxtest.Binary(t), "-t", "-p", e.dir, "-c", e.conf).CombinedOutput()
		if err != nil {
			t.Fatalf("nginx -t: %v\n%s", err, out)
		}
		return strings.Contains(string(out), "could not build optimal server_names_hash")
	}
	sites := 0
	for ; !warns(); sites++ {
		if sites == 2000 {
			t.Fatal("2,000 sites and nginx never warned about its server names' hash")
		}
		name := fmt.Sprintf("site%d.example.com", sites)
		write(t, filepath.Join(e.dir, "sites-enabled", name+".conf"),
			fmt.Sprintf("server {\n    listen %s;\n    server_name %s www.%s;\n    return 200;\n}\n", e.listen, name, name))
	}
	if err := os.Remove(filepath.Join(e.dir, "sites-enabled", fmt.Sprintf("site%d.example.com.conf", sites-1))); err != nil {
		t.Fatal(err)
	}
	e.nginx.Reload(t)
	venv := daemontest.Venv(t)
	app := e.app("hello", map[string]string{"hello.py": helloPy})
	args := []string{"hello.test", "--app-dir", app, "--module", "hello", "--venv", venv, "--listen", e.listen}
	// The names of the site that crossed the line, and many more: nginx's
	// hash is not monotonic in its names, but twice as many never fit.
	last := fmt.Sprintf("site%d.example.com", sites-1)
	args = append(args, "--alias", last, "--alias", "www."+last)
	for i := range 2 * sites {
		args = append(args, "--alias", fmt.Sprintf("a%d.hello.test", i))
	}
	out := e.deploy(args...)
	names := 2*(sites-1) + 3 + 2*sites
	want := fmt.Sprintf(`note: nginx could not build an optimal server_names_hash (names are still found, a little slower): set "server_names_hash_bucket_size 128;" and "server_names_hash_max_size %d;"`, nextPow2(4*names))
	if !strings.Contains(out, want) {
		t.Fatalf("deploy output lacks\n%s\n%s", want, out)
	}
	if code, body := e.get("hello.test", "/"); code != 200 || !strings.Contains(body, "hello") {
		t.Fatalf("hello.test: %d %q", code, body)
	}
	conf, err := os.ReadFile(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	write(t, e.conf, strings.Replace(string(conf), "http {", fmt.Sprintf("http {\n    server_names_hash_bucket_size 128; server_names_hash_max_size %d;", nextPow2(4*names)), 1))
	out = e.deploy(append(args, "--alias", "one-more.hello.test")...)
	if strings.Contains(out, "note:") {
		t.Errorf("a note with the settings in place:\n%s", out)
	}
}

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}
