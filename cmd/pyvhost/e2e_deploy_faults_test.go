package main

// Deploys under faults: a read-only or full config dir, a full state dir,
// a first deploy that fails.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// readOnly makes dir read-only (a read-only bind mount: root ignores file
// modes) until the test ends.
func readOnly(t *testing.T, dir string) {
	t.Helper()
	daemontest.NeedRoot(t, "a read-only bind mount")
	for _, args := range [][]string{{"--bind", dir, dir}, {"-o", "remount,ro,bind", dir}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			exec.Command("umount", dir).Run()
			t.Fatalf("mount %v: %v %s", args, err, out)
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
}

// TestFaultDeployReadOnlyConfigDir: a deploy that cannot write nginx's files
// fails with a message that is true (nothing was changed, so everything
// is as it was; no "restoring failed"), leaves no journal behind to block
// the next change, and the next deploy works once the dir is writable.
func TestFaultDeployReadOnlyConfigDir(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := filepath.Join(e.dir, "venv")
	good := e.app("good", map[string]string{"good.py": helloPy})
	e.deploy("good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--python", "/usr/bin/python3", "--listen", e.listen)
	before := e.snapshot(true)
	avail := filepath.Join(e.dir, "sites-available")
	readOnly(t, avail)

	for _, args := range [][]string{
		{"deploy", "new.test", "--app-dir", good, "--module", "good", "--venv", venv, "--listen", e.listen, "--yes"},        // creates a file
		{"deploy", "good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--alias", "www.good.test", "--yes"}, // modifies one
	} {
		code, out, errOut := e.run(args...)
		if code == 0 || !strings.Contains(errOut, "read-only file system") || !strings.Contains(errOut, "everything was put back as it was") ||
			strings.Contains(errOut, "restor") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Fatalf("%s %s on a read-only config dir: exit %d\n%s\nstderr: %s\nwant one line: the write failed and everything was put back", args[0], args[1], code, out, errOut)
		}
		e.unchanged(before, true, args[1]+" on a read-only config dir")
		if p := filepath.Join(e.state, "nginx-transaction.json"); fileExists(p) {
			t.Fatalf("%s left its journal %s: every later change would be blocked", args[1], p)
		}
		e.want("good.test", "/", 200, "hello from good.test")
	}
	if _, _, errOut := e.run("sites"); strings.Contains(errOut, "warning") {
		t.Errorf("sites after the failed deploys warns: %s", errOut)
	}
}

// TestFaultDeployFailedFirstLeavesNoTrace: a first deploy that fails (the app
// answers 500, or fails to import in the daemon) leaves nothing behind: no
// release directory, no app in the daemon, no site in sites; both with the
// daemon already running and with the daemon this deploy started.
func TestFaultDeployFailedFirstLeavesNoTrace(t *testing.T) {
	skipShort(t)
	apps := map[string]string{
		"answers500": "def application(environ, start_response):\n    start_response('500 Internal Server Error', [])\n    return [b'no']\n",
		// imports in the preflight (python -c), fails in the daemon
		"failsInDaemon": "import sys\nif sys.argv[0] != '-c':\n    raise RuntimeError('not here')\n" + helloPy,
	}
	for _, daemonRunning := range []bool{true, false} {
		for name, src := range apps {
			t.Run(fmt.Sprintf("%s/daemon-running=%v", name, daemonRunning), func(t *testing.T) {
				e := newDeployEnv(t, true)
				venv := filepath.Join(e.dir, "venv")
				if daemonRunning {
					good := e.app("good", map[string]string{"good.py": helloPy})
					e.deploy("good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--python", "/usr/bin/python3", "--listen", e.listen)
				}
				bad := e.app("bad", map[string]string{"bad.py": src})
				before := e.snapshot(true)
				code, out, errOut := e.run("deploy", "bad.test", "--app-dir", bad, "--module", "bad", "--venv", venv, "--python", "/usr/bin/python3",
					"--listen", e.listen, "--yes")
				if code == 0 {
					t.Fatalf("the deploy succeeded:\n%s", out)
				}
				t.Logf("%s", errOut)
				if daemonRunning {
					e.unchanged(before, true, "a failed first deploy")
				}
				if _, err := os.Stat(filepath.Join(e.state, "releases", "bad.test")); !os.IsNotExist(err) {
					t.Errorf("releases/bad.test after a failed first deploy: %v, want none", err)
				}
				// With the daemon this deploy started stopped again, there is
				// no daemon to list anything.
				code, apps, errOut := e.run("ctl", "apps", "--json")
				if strings.Contains(apps, `"chdir": "`+bad+`"`) || (daemonRunning && code != 0) {
					t.Errorf("ctl apps lists the app whose first deploy failed: exit %d\n%s%s", code, apps, errOut)
				}
				if _, sites, _ := e.run("sites"); strings.Contains(sites, "bad.test") {
					t.Errorf("sites lists the site whose first deploy failed:\n%s", sites)
				}
			})
		}
	}
}

// TestFaultDeployFullStateDir: with no space left in the state dir a deploy
// fails before touching nginx's files, says why in one line, and the next
// deploy, once there is room, works.
func TestFaultDeployFullStateDir(t *testing.T) {
	skipShort(t)
	daemontest.NeedRoot(t, "a small tmpfs as the state dir")
	e := newDeployEnv(t, true)
	if err := os.MkdirAll(e.state, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", e.state).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v %s", e.state, err, out)
	}
	// Before newDeployEnv's cleanup stops the daemon (cleanups run last
	// first): the daemon's log is on it.
	t.Cleanup(func() {
		e.stopDaemon()
		if out, err := exec.Command("umount", e.state).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", e.state, err, out)
		}
	})
	venv := filepath.Join(e.dir, "venv")
	good := e.app("good", map[string]string{"good.py": helloPy})
	e.deploy("good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--python", "/usr/bin/python3", "--listen", e.listen)
	filler := filepath.Join(e.state, "filler")
	fill(t, filler)
	before := e.snapshot(false)
	code, out, errOut := e.run("deploy", "good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--alias", "www.good.test", "--yes")
	if code == 0 || !strings.Contains(errOut, "no space left on device") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
		t.Fatalf("deploy with a full state dir: exit %d\n%s\nstderr: %s\nwant one line naming the full disk", code, out, errOut)
	}
	t.Logf("%s", errOut)
	e.unchanged(before, false, "a deploy with a full state dir")
	e.want("good.test", "/", 200, "hello from good.test")
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	e.deploy("good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--alias", "www.good.test")
	e.want("www.good.test", "/", 200, "hello from www.good.test")
}

// TestFaultDeployFullConfigDir: with no space left where nginx's site
// files go, a deploy fails in one line naming the full disk, every file is
// as it was (a half-written file is never left to be loaded), and nginx
// serves on.
func TestFaultDeployFullConfigDir(t *testing.T) {
	skipShort(t)
	daemontest.NeedRoot(t, "a small tmpfs as nginx's sites-available")
	e := newDeployEnv(t, true)
	avail := filepath.Join(e.dir, "sites-available")
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", avail).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v %s", avail, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", avail).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", avail, err, out)
		}
	})
	venv := daemontest.Venv(t)
	good := e.app("good", map[string]string{"good.py": helloPy})
	e.deploy("good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--listen", e.listen)
	filler := filepath.Join(avail, ".filler") // a dot-file: nginx's include glob skips it
	fill(t, filler)
	before := e.snapshot(true)
	for _, args := range [][]string{
		{"deploy", "new.test", "--app-dir", good, "--module", "good", "--venv", venv, "--listen", e.listen, "--yes"},
		{"deploy", "good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--alias", "www.good.test", "--yes"},
	} {
		code, out, errOut := e.run(args...)
		if code == 0 || !strings.Contains(errOut, "no space left on device") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Fatalf("%s %s with a full config dir: exit %d\n%s\nstderr: %s\nwant one line naming the full disk", args[0], args[1], code, out, errOut)
		}
		e.unchanged(before, true, args[1]+" with a full config dir")
		e.want("good.test", "/", 200, "hello from good.test")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	e.deploy("good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--alias", "www.good.test")
	e.want("www.good.test", "/", 200, "hello from www.good.test")
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !strings.Contains(err.Error(), "no space left") {
				t.Fatal(err)
			}
			break
		}
	}
	for { // the last blocks, smaller than buf
		if _, err := f.Write(buf[:512]); err != nil {
			return
		}
	}
}
