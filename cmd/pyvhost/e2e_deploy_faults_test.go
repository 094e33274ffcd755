package main

// Deploys under faults: the disk, nginx or the deploy itself failing.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needRoot skips a test only root can run, except in CI, where it fails:
// CI runs as root, and a skipped fault test there would hide a regression.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("needs root (%s), and CI runs as root", why)
	}
	t.Skipf("needs root: %s", why)
}

// readOnly makes dir read-only (a read-only bind mount: root ignores file
// modes) until the test ends.
func readOnly(t *testing.T, dir string) {
	t.Helper()
	needRoot(t, "a read-only bind mount")
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

// TestDeployReadOnlyConfigDir: a deploy that cannot write nginx's files
// fails with a message that is true (nothing was changed, so everything
// is as it was; no "restoring failed"), leaves no journal behind to block
// the next change, and the next deploy works once the dir is writable.
func TestDeployReadOnlyConfigDir(t *testing.T) {
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
