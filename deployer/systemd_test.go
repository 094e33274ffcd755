package deployer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// fakeSystemctl stands in for systemctl on this machine, where systemd
// does not run: it records the calls, and `enable --now` starts what the
// installed unit's ExecStart says — so the test proves the unit really
// starts a working daemon.
type fakeSystemctl struct {
	unit   string
	calls  []string
	active bool // is-active answers yes
	cmd    *exec.Cmd
}

func (f *fakeSystemctl) Run(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	if name != "systemctl" {
		return ExecRunner{}.Run(ctx, name, args...)
	}
	f.calls = append(f.calls, strings.Join(args, " "))
	switch args[0] {
	case "is-active":
		if !f.active {
			return nil, nil, &exec.ExitError{}
		}
	case "enable":
		b, err := os.ReadFile(f.unit)
		if err != nil {
			return nil, nil, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if cmdline, ok := strings.CutPrefix(line, "ExecStart="); ok {
				words := strings.Fields(cmdline) // the test's paths need no quoting
				f.cmd = exec.Command(words[0], words[1:]...)
				return nil, nil, f.cmd.Start()
			}
		}
	}
	return nil, nil, nil
}

func TestStartSystemdInstallsAUnitThatRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon")
	}
	dir := daemontest.Dir(t)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxtest.MainConf(dir, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	setup := DaemonSetup{Exe: daemontest.Binary(t), Ctl: filepath.Join(dir, "ctl.sock"), StateDir: filepath.Join(dir, "state"),
		NginxConf: conf, AppSockets: filepath.Join(dir, "socks"), Listen: []string{"127.0.0.1:" + strconv.Itoa(nginxtest.FreePort(t))},
		UnitPath: filepath.Join(dir, "pyvhost.service")}
	fake := &fakeSystemctl{unit: setup.UnitPath}
	c, st, err := setup.StartSystemd(context.Background(), fake)
	if fake.cmd != nil {
		defer func() {
			_ = fake.cmd.Process.Signal(syscall.SIGTERM)
			_ = fake.cmd.Wait()
		}()
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fake.calls, " | "); got != "daemon-reload | enable --now pyvhost.service" {
		t.Fatalf("systemctl calls: %s", got)
	}
	if st.PID != fake.cmd.Process.Pid || st.NginxConf != conf || !strings.Contains(strings.Join(st.Sockets, " "), setup.Listen[0]) {
		t.Fatalf("the unit's daemon: %+v", st)
	}
	// A zombie (the fake's child, reaped by the deferred Wait) counts as gone.
	if err := StopDaemon(c, st.PID, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestNginxReloadThroughSystemd: where nginx is an active systemd unit,
// reload goes through systemctl (so systemd's view of nginx stays right).
func TestNginxReloadThroughSystemd(t *testing.T) {
	fake := &fakeSystemctl{active: true}
	n := &Nginx{Runner: fake, Bin: "/usr/sbin/nginx", Conf: "/etc/nginx/nginx.conf"}
	if err := n.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fake.calls, " | "); got != "is-active --quiet nginx | reload nginx" {
		t.Fatalf("systemctl calls: %s", got)
	}
	// With a private prefix (tests, demos) systemd's nginx is never asked.
	fake = &fakeSystemctl{active: true}
	n = &Nginx{Runner: fake, Bin: "/bin/true", Conf: "/x/nginx.conf", Prefix: "/x"}
	if err := n.Reload(context.Background()); err != nil || len(fake.calls) != 0 {
		t.Fatalf("private nginx: %v, systemctl calls %v", err, fake.calls)
	}
}
