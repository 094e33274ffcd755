package daemon

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pyvhost/pyvhost/templates"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// TestSpeedupsMatchPython builds the worker's C speedups once (abi3, with
// Debian's Python's headers) and, under every Python 3.8+ on this machine,
// checks them against their pure-Python twins: nginx's captured packets,
// 20,000 random and mutated packets, and whole requests through 20 WSGI
// apps (testdata/worker_selftest.py); ASGI scopes of random environs,
// response heads good and bad, and whole requests through Exchange
// (testdata/asgi_selftest.py).
func TestSpeedupsMatchPython(t *testing.T) {
	dir := t.TempDir()
	built := buildSpeedups(dir, "/usr/bin/python3", t.Logf)
	if built == "" {
		t.Fatal("C speedups did not build: make test installs gcc and python3-dev")
	}
	worker, err := templates.WriteWorker(dir)
	if err != nil {
		t.Fatal(err)
	}
	proto, err := json.Marshal(pool.WorkerProtocol())
	if err != nil {
		t.Fatal(err)
	}
	captures, _ := filepath.Abs("../../testdata/wire/nginx-1.22-uwsgi-packets.jsonl")
	selftests := [][]string{{"worker_selftest.py", captures}, {"asgi_selftest.py"}}
	for _, py := range daemontest.Pythons(t) {
		t.Run(py.Version, func(t *testing.T) {
			for _, st := range selftests {
				script, _ := filepath.Abs("../../testdata/" + st[0])
				cmd := exec.Command(py.Path, append([]string{script, built, worker}, st[1:]...)...)
				cmd.Env = append(os.Environ(), "PYVHOST_PROTOCOL="+string(proto))
				out, err := cmd.CombinedOutput()
				if err != nil || !strings.HasPrefix(string(out), "ok ") {
					t.Fatalf("%s %s: C and Python disagree: %v\n%s", py.Path, st[0], err, out)
				}
				t.Log(st[0], strings.TrimSpace(string(out)))
			}
		})
	}
}

// TestSpeedupsCompileCleanly: the C speedups compile without a warning
// (-Wall -Wextra), against the limited API they promise (abi3, 3.8).
func TestSpeedupsCompileCleanly(t *testing.T) {
	inc, err := exec.Command("/usr/bin/python3", "-c", "import sysconfig; print(sysconfig.get_paths()['include'])").Output()
	if err != nil {
		t.Fatal(err)
	}
	src, err := writeSources(t.TempDir(), speedupsSources())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("cc", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-I"+strings.TrimSpace(string(inc)), src).CombinedOutput()
	if err != nil {
		t.Fatalf("speedups.c: %v\n%s", err, out)
	}
}

// TestSpeedupsConcurrentBuilds: daemons starting at once build into the
// same directory; every one of them gets a whole module.
func TestSpeedupsConcurrentBuilds(t *testing.T) {
	dir := t.TempDir()
	got := make([]string, 3)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = buildSpeedups(dir, "/usr/bin/python3", t.Logf)
		}()
	}
	wg.Wait()
	for i, d := range got {
		if d == "" || d != got[0] {
			t.Fatalf("build %d: %q (first: %q)", i, d, got[0])
		}
	}
	out, err := exec.Command("/usr/bin/python3", "-c", "import sys; sys.path.insert(0, sys.argv[1]); import _pyvhost_speedups as c; print(c.Responder)", got[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("the module does not import: %v\n%s", err, out)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(got[0], ".build-*")); len(leftovers) > 0 {
		t.Errorf("build directories left behind: %v", leftovers)
	}
}
