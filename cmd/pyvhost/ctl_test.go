package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestCtlCommands drives a real daemon with pyvhost ctl.
func TestCtlCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the daemon and Python (make test runs it)")
	}
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	hello := daemontest.App(t, dir, "hello")
	broken := daemontest.App(t, dir, "broken")
	ctl := filepath.Join(dir, "run", "ctl.sock")
	sock := "127.0.0.1:" + strconv.Itoa(nginxtest.FreePort(t))
	daemontest.Start(t, sock, "-s", sock, "--ctl", ctl, "--vhost-root", dir, "--vhost-root", filepath.Dir(venv))

	code, out, errOut := pyvhost(t, "ctl", "load", "--ctl", ctl, "--app-dir", hello, "--module", "hello", "--venv", venv)
	if code != 0 || !strings.Contains(out, "is ready") {
		t.Fatalf("ctl load: %d %q %q", code, out, errOut)
	}
	code, _, errOut = pyvhost(t, "ctl", "load", "--ctl", ctl, "--app-dir", broken, "--module", "broken", "--venv", venv)
	if code != 1 || !strings.Contains(errOut, "ModuleNotFoundError") || !strings.Contains(errOut, "pyvhost: app ") {
		t.Fatalf("ctl load of a broken app: %d %q", code, errOut)
	}
	code, out, _ = pyvhost(t, "ctl", "apps", "--json", "--ctl", ctl)
	var apps control.Apps
	if code != 0 || json.Unmarshal([]byte(out), &apps) != nil || len(apps.Apps) != 2 {
		t.Fatalf("ctl apps --json: %d %q", code, out)
	}
	code, out, _ = pyvhost(t, "ctl", "apps", "--ctl", ctl)
	if code != 0 || !strings.Contains(out, "STATE") || !strings.Contains(out, "ready") || !strings.Contains(out, "failed") {
		t.Fatalf("ctl apps: %d\n%s", code, out)
	}
	code, out, _ = pyvhost(t, "ctl", "status", "--ctl", ctl)
	if code != 0 || !strings.Contains(out, "apps:     2") || !strings.Contains(out, sock) {
		t.Fatalf("ctl status: %d\n%s", code, out)
	}
	var id string
	for _, a := range apps.Apps {
		if a.State == "ready" {
			id = a.ID
		}
	}
	if code, out, errOut = pyvhost(t, "ctl", "reload", id, "--ctl", ctl); code != 0 || !strings.Contains(out, "reloaded") {
		t.Fatalf("ctl reload: %d %q %q", code, out, errOut)
	}
	// Without an APP every running app reloads (the broken one is not running).
	if code, out, errOut = pyvhost(t, "ctl", "reload", "--ctl", ctl); code != 0 || !strings.Contains(out, "reloaded every running app (1 serving)") {
		t.Fatalf("ctl reload (all): %d %q %q", code, out, errOut)
	}
	if code, _, errOut = pyvhost(t, "ctl", "stop", "nope", "--ctl", ctl); code != 1 || !strings.Contains(errOut, `no such app "nope"`) {
		t.Fatalf("ctl stop of an unknown app: %d %q", code, errOut)
	}
	if code, out, _ = pyvhost(t, "ctl", "stop", id, "--ctl", ctl); code != 0 || !strings.Contains(out, "stopped") {
		t.Fatalf("ctl stop: %d %q", code, out)
	}
	if code, _, errOut = pyvhost(t, "ctl", "status", "--ctl", filepath.Join(dir, "absent.sock")); code != 1 || !strings.Contains(errOut, "no daemon at") {
		t.Fatalf("ctl without a daemon: %d %q", code, errOut)
	}
	if code, out, _ = pyvhost(t, "ctl", "shutdown", "--ctl", ctl); code != 0 || !strings.Contains(out, "shutting down") {
		t.Fatalf("ctl shutdown: %d %q", code, out)
	}
}

// TestCtlPermissionDenied: another user gets a clear one-line error.
func TestCtlPermissionDenied(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the daemon (make test runs it)")
	}
	daemontest.NeedRoot(t, "to run the client as another user")
	ctl, _ := startDaemonWithApp(t)
	cmd := exec.Command(daemontest.Binary(t), "ctl", "status", "--ctl", ctl)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "permission denied on "+ctl) || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Fatalf("ctl as nobody: %v %q", err, out)
	}
}
