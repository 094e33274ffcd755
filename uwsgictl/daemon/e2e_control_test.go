package daemon_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

func ctlClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
}

// TestControlSocket: status and apps over the control socket, which only
// the daemon's user can open.
func TestControlSocket(t *testing.T) {
	slow(t)
	ctl := filepath.Join(daemontest.Dir(t), "run", "ctl.sock")
	e, d, _ := wsgiEnv(t, []string{"--ctl", ctl}, "hello")
	for i := 0; i < 3; i++ {
		e.get(t, "hello.test", "/")
	}
	c := ctlClient(ctl)
	var st control.Status
	resp, err := c.Get("http://pyvhost/v1/status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, d.Log())
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.PID != d.PID() || st.Apps != 1 || st.Requests != 3 || st.RSS == 0 {
		t.Fatalf("status: %+v, %v", st, err)
	}
	resp.Body.Close()
	var apps control.Apps
	resp, err = c.Get("http://pyvhost/v1/apps")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&apps); err != nil || len(apps.Apps) != 1 || apps.Apps[0].State != "ready" || len(apps.Apps[0].Workers) == 0 {
		t.Fatalf("apps: %+v, %v", apps, err)
	}
	resp.Body.Close()
	if resp, err := c.Get("http://pyvhost/v1/nope"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("unknown endpoint: %v %v", resp, err)
	}

	for path, want := range map[string]os.FileMode{ctl: 0o600, filepath.Dir(ctl): 0o700} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), want)
		}
	}
	if os.Geteuid() == 0 {
		// Another user cannot connect.
		cmd := exec.Command("/usr/bin/python3", "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])", ctl)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("user nobody connected to the control socket: %s", out)
		}
	}
}

// TestControlSocketLeavesItsDirectory: a control socket put in an existing
// directory does not change that directory's mode (the bench puts it in
// the directory that holds the apps).
func TestControlSocketLeavesItsDirectory(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := freeAddr(t)
	daemontest.Start(t, sock, "-s", sock, "--ctl", filepath.Join(dir, "ctl.sock"), "--vhost-root", dir)
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("%s: mode %v after the daemon started, want it left at 0755", dir, st.Mode().Perm())
	}
}
