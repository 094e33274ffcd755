package daemon_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
	"github.com/pyvhost/pyvhost/uwsgictl/wire"
)

// TestFailingImport: an app that fails to import gets a 500 and its
// traceback in the log on every request, never another app's code, and
// serves once fixed, with no daemon restart.
func TestFailingImport(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	broken := daemontest.App(t, dir, "broken")
	hello := daemontest.App(t, dir, "hello")
	sock := freeAddr(t)
	d := daemontest.Start(t, sock, "-s", sock, "--vhost-root", dir, "--vhost-root", filepath.Dir(venv))
	e := startNginx(t, dir,
		site{"hello.test", []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: hello, Module: "hello"}}},
		site{"broken.test", []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: broken, Module: "broken"}}},
	)
	if code, _ := e.get(t, "hello.test", "/"); code != 200 {
		t.Fatalf("hello: %d", code)
	}
	for i := 0; i < 2; i++ {
		code, body := e.get(t, "broken.test", "/")
		if code != 500 || strings.Contains(body, "hello") {
			t.Fatalf("broken app: %d %q, want a 500 of its own", code, body)
		}
	}
	if n := strings.Count(d.Log(), "No module named 'this_module_does_not_exist'"); n < 2 {
		t.Fatalf("traceback logged %d times, want every time:\n%s", n, d.Log())
	}
	uid, gid := daemontest.AppOwner()
	fixed := filepath.Join(broken, "broken.py")
	write(t, fixed, "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'fixed\\n']\n")
	_ = os.Chown(fixed, uid, gid)
	time.Sleep(1100 * time.Millisecond) // a failed app retries its import at most once a second
	if code, body := e.get(t, "broken.test", "/"); code != 200 || body != "fixed\n" {
		t.Fatalf("after the fix: %d %q\n%s", code, body, d.Log())
	}
}

// TestRefusals sends hostile and broken packets straight to the socket:
// each is refused cleanly, nothing runs, and the daemon keeps serving.
func TestRefusals(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	hello := daemontest.App(t, dir, "hello")
	sock := freeAddr(t)
	d := daemontest.Start(t, sock, "-s", sock, "--vhost-root", dir, "--vhost-root", filepath.Dir(venv))
	appVars := []wire.Var{{Key: "REQUEST_METHOD", Value: "GET"}, {Key: "PATH_INFO", Value: "/"}, {Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"},
		{Key: "UWSGI_PYHOME", Value: venv}, {Key: "UWSGI_CHDIR", Value: hello}, {Key: "UWSGI_SCRIPT", Value: "hello"}}
	packet := func(mod1 uint8, vars ...wire.Var) []byte {
		b, err := wire.Encode(mod1, 0, vars)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ok := func() {
		t.Helper()
		if r := rawRequest(t, sock, packet(0, appVars...)); !strings.HasPrefix(r, "HTTP/1.1 200 OK") || !strings.Contains(r, "hello app") {
			t.Fatalf("a normal request is not served: %q\n%s", r, d.Log())
		}
	}
	ok()
	marker := filepath.Join(dir, "pwned")
	tests := []struct {
		name   string
		packet []byte
		want   string // status line prefix; "" = connection closed without a reply is fine
	}{
		{"outside every root", packet(0, wire.Var{Key: "UWSGI_CHDIR", Value: "/etc"}, wire.Var{Key: "UWSGI_SCRIPT", Value: "passwd"}), "HTTP/1.1 403"},
		{"exec scheme in UWSGI_FILE", packet(0, wire.Var{Key: "UWSGI_FILE", Value: "exec://touch " + marker + "; echo application=1"}), "HTTP/1.1 403"},
		{"UWSGI_FILE beside a real app", packet(0, append(appVars, wire.Var{Key: "UWSGI_FILE", Value: "exec://touch " + marker})...), "HTTP/1.1 403"},
		{"UWSGI_SETENV", packet(0, append(appVars, wire.Var{Key: "UWSGI_SETENV", Value: "LD_PRELOAD=/tmp/x.so"})...), "HTTP/1.1 403"},
		{"UWSGI_POSTFILE", packet(0, append(appVars, wire.Var{Key: "UWSGI_POSTFILE", Value: "/etc/shadow"})...), "HTTP/1.1 403"},
		{"scheme as script", packet(0, wire.Var{Key: "UWSGI_CHDIR", Value: hello}, wire.Var{Key: "UWSGI_SCRIPT", Value: "exec://id"}), "HTTP/1.1 403"},
		{"venv outside the roots", packet(0, wire.Var{Key: "UWSGI_PYHOME", Value: "/tmp"}, wire.Var{Key: "UWSGI_CHDIR", Value: hello}, wire.Var{Key: "UWSGI_SCRIPT", Value: "hello"}), "HTTP/1.1 403"},
		{"no app named", packet(0, wire.Var{Key: "REQUEST_METHOD", Value: "GET"}), "HTTP/1.1 500"},
		{"var runs past the block", []byte{0, 8, 0, 0, 3, 0, 'A', 'B', 'C', 9, 0, 'x'}, "HTTP/1.1 400"},
		{"empty key", []byte{0, 4, 0, 0, 0, 0, 0, 0}, "HTTP/1.1 400"},
		{"block over --buffer-size", packet(0, append(appVars, wire.Var{Key: "HTTP_COOKIE", Value: strings.Repeat("c", 5000)})...), "HTTP/1.1 431"},
		{"HTTP spoken to the uwsgi port", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 431"},
		{"unknown modifier1", packet(7, appVars...), "HTTP/1.1 400"},
		{"truncated packet", []byte{0, 100, 0, 0, 1, 0}, ""},
		{"empty connection", nil, ""},
	}
	for _, tc := range tests {
		r := rawRequest(t, sock, tc.packet)
		if tc.want != "" && !strings.HasPrefix(r, tc.want) {
			t.Errorf("%s: reply %q, want %s", tc.name, r, tc.want)
		}
		if strings.Contains(r, "hello app") {
			t.Errorf("%s: the app ran: %q", tc.name, r)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("a request's UWSGI_FILE ran a command")
	}
	ok()
	d.WaitLog(t, "refused a request carrying UWSGI_FILE", 5*time.Second)
	d.WaitLog(t, "not declared in the nginx config", 5*time.Second)
}

// TestRootOwnedAppRefused: as root, an app whose directory root owns does
// not run (it would run as root) unless --allow-root-apps.
func TestRootOwnedAppRefused(t *testing.T) {
	slow(t)
	daemontest.NeedRoot(t, "the daemon drops privileges only when it has them")
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	hello := daemontest.App(t, dir, "hello")
	if err := os.Chown(hello, 0, 0); err != nil {
		t.Fatal(err)
	}
	sock := freeAddr(t)
	d := daemontest.Start(t, sock, "-s", sock, "--vhost-root", dir, "--vhost-root", filepath.Dir(venv))
	pkt, _ := wire.Encode(0, 0, []wire.Var{{Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"}, {Key: "UWSGI_PYHOME", Value: venv}, {Key: "UWSGI_CHDIR", Value: hello}, {Key: "UWSGI_SCRIPT", Value: "hello"}})
	if r := rawRequest(t, sock, pkt); !strings.HasPrefix(r, "HTTP/1.1 500") {
		t.Fatalf("root-owned app: %q", r)
	}
	d.WaitLog(t, "is owned by root", time.Second)

	sock2 := freeAddr(t)
	daemontest.Start(t, sock2, "-s", sock2, "--allow-root-apps", "--vhost-root", dir, "--vhost-root", filepath.Dir(venv))
	if r := rawRequest(t, sock2, pkt); !strings.HasPrefix(r, "HTTP/1.1 200") {
		t.Fatalf("with --allow-root-apps: %q", r)
	}
}

// TestSingleAppMode: the seed's `uwsgi -s :9090 -w myapp`: every request
// runs the one app, whatever its vars.
func TestSingleAppMode(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	hello := daemontest.App(t, dir, "hello")
	sock := freeAddr(t)
	daemontest.Start(t, sock, "-s", sock, "-w", "hello", "--chdir", hello, "-H", venv)
	pkt, _ := wire.Encode(0, 0, []wire.Var{{Key: "REQUEST_METHOD", Value: "GET"}, {Key: "SERVER_PROTOCOL", Value: "HTTP/1.0"}, {Key: "PATH_INFO", Value: "/"}})
	for i := 0; i < 3; i++ {
		if r := rawRequest(t, sock, pkt); !strings.HasPrefix(r, "HTTP/1.0 200 OK") || !strings.Contains(r, "hello app") {
			t.Fatalf("single-app request: %q", r)
		}
	}
}

// TestSharedUnixSocket: -s with a unix path serves like a TCP port, and
// the socket is given to nginx's user alone.
func TestSharedUnixSocket(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	hello := daemontest.App(t, dir, "hello")
	sock := filepath.Join(dir, "run", "uwsgi.sock")
	daemontest.Start(t, sock, "-s", sock, "--vhost-root", dir, "--vhost-root", filepath.Dir(venv))
	pkt, _ := wire.Encode(0, 0, []wire.Var{{Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"},
		{Key: "UWSGI_PYHOME", Value: venv}, {Key: "UWSGI_CHDIR", Value: hello}, {Key: "UWSGI_SCRIPT", Value: "hello"}})
	if r := rawRequest(t, sock, pkt); !strings.HasPrefix(r, "HTTP/1.1 200 OK") {
		t.Fatalf("request on the unix socket: %q", r)
	}
	if os.Geteuid() == 0 {
		st, err := os.Stat(sock)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("socket mode %v, want 0600 (owned by nginx's user)", st.Mode().Perm())
		}
	}
}

// TestPortTaken: a -s port another program holds is a one-line error and
// exit 1, with nothing left behind (it once panicked releasing what the
// failed start had taken).
func TestPortTaken(t *testing.T) {
	slow(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := daemontest.Dir(t)
	cmd := exec.Command(daemontest.Binary(t), "uwsgi", "-s", taken.Addr().String(), "--vhost-root", dir, "--ctl", filepath.Join(dir, "ctl.sock"))
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "address already in use") || strings.Contains(string(out), "panic") {
		t.Fatalf("exit %v:\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "ctl.sock")); !os.IsNotExist(err) {
		t.Fatalf("the control socket was left behind: %v", err)
	}
}
