package daemon_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// wsClient runs testdata/asgi/SCRIPT (Debian's python3-websockets, a real
// client) against nginx's port; it prints one line per check.
func wsClient(t *testing.T, e *env, script string, args ...string) string {
	t.Helper()
	_, port, _ := strings.Cut(e.listen, ":")
	out, err := exec.Command("/usr/bin/python3", append([]string{filepath.Join("..", "..", "testdata", "asgi", script), port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// TestWebSocketEcho: through nginx's uwsgi_pass, a real client opens a
// WebSocket to an ASGI app: the subprotocol it asked for, text and binary
// messages (1 MB too), a fragmented message, ping and pong, and the app's
// close code and reason.
func TestWebSocketEcho(t *testing.T) {
	slow(t)
	e, d, _ := serveASGI(t, "ws.test", "wsapp:app")
	out := wsClient(t, e, "ws_echo_client.py")
	want := "subprotocol echo.v2\nhello\nb'\\x00\\x01\\x00\\x01\\x00\\x01\\x00\\x01\\x00\\x01\\x00\\x01\\x00\\x01\\x00\\x01\\x00\\x01\\x00\\x01'\n1MB 1048576 True\nfragmented\npong ok\nclosed 4001 asked to\n"
	if out != want {
		t.Errorf("the client saw:\n%s\nwant:\n%s\n%s", out, want, d.Log())
	}
}

// TestWebSocketFraming: a representative set of the Autobahn suite's
// cases (testdata/asgi/ws_cases.py, raw frames through nginx) against the
// worker's RFC 6455 codec: sizes, ping/pong, reserved bits and opcodes,
// fragmentation, UTF-8, close codes, masking, the size limit.
func TestWebSocketFraming(t *testing.T) {
	slow(t)
	const limit = 2 << 20
	e, d, _ := serveASGI(t, "ws.test", "wsapp:app", "--websocket-max-message", strconv.Itoa(limit))
	_, port, _ := strings.Cut(e.listen, ":")
	out, err := exec.Command("/usr/bin/python3", filepath.Join("..", "..", "testdata", "asgi", "ws_cases.py"), port, strconv.Itoa(limit)).CombinedOutput()
	if err != nil {
		t.Fatalf("framing cases: %v\n%s\n%s", err, out, d.Log())
	}
	t.Logf("%d cases passed", strings.Count(string(out), "ok   "))
}

// wsScenario runs one scenario of testdata/asgi/ws_scenarios.py.
func wsScenario(t *testing.T, e *env, d *daemontest.Daemon, name string, args ...string) string {
	t.Helper()
	_, port, _ := strings.Cut(e.listen, ":")
	cmd := exec.Command("/usr/bin/python3", append([]string{filepath.Join("..", "..", "testdata", "asgi", "ws_scenarios.py"), port, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scenario %s: %v\n%s\n%s", name, err, out, d.Log())
	}
	return string(out)
}

// TestWebSocketScenarios: 500 sockets open at once on one worker; a
// handshake denied with an HTTP answer, or by closing before accepting
// (403); the client's close code reaching the app; an oversized message
// refused with 1009; a reload while sockets are open: they get 1001, and
// a new one reaches the new code.
func TestWebSocketScenarios(t *testing.T) {
	slow(t)
	ctl := filepath.Join(daemontest.Dir(t), "ctl.sock")
	e, d, app := serveASGI(t, "ws.test", "wsapp:app", "-p", "1", "--websocket-max-message", "65536", "--ctl", ctl)
	e.tune(t, "worker_connections 256;", "worker_connections 4096;")

	if out := wsScenario(t, e, d, "many"); out != "echoed 500 of 500\n" {
		t.Errorf("500 sockets on one worker: %q", out)
	}
	if out := wsScenario(t, e, d, "denied"); out != "/deny refused 403\n/private refused 403\n" {
		t.Errorf("denied handshakes: %q", out)
	}
	if out := wsScenario(t, e, d, "client_close"); out != "closed 4321\n" {
		t.Errorf("the client's close: %q", out)
	}
	eventually(t, 5*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(app, "disconnects"))
		return strings.Contains(string(b), "4321\n")
	})
	if out := wsScenario(t, e, d, "too_big", "65536"); out != "closed 1009\n" {
		t.Errorf("an oversized message: %q", out)
	}

	// A reload with sockets open.
	_, port, _ := strings.Cut(e.listen, ":")
	cmd := exec.Command("/usr/bin/python3", filepath.Join("..", "..", "testdata", "asgi", "ws_scenarios.py"), port, "reload")
	stdin, _ := cmd.StdinPipe()
	var out strings.Builder
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, pw), &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pr)
	for sc.Scan() && sc.Text() != "open" {
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	src, _ := os.ReadFile(filepath.Join(app, "wsapp.py"))
	write(t, filepath.Join(app, "wsapp.py"), strings.Replace(string(src), `VERSION = "v1"`, `VERSION = "v2"`, 1))
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reload("ws.test"); err != nil {
		t.Fatalf("reload: %v\n%s", err, d.Log())
	}
	stdin.Write([]byte("\n"))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("reload scenario: %v\n%s\n%s", err, out.String(), d.Log())
	}
	pw.Close()
	if want := "before ['v1']\nopen\nclosed with [1001] 20\nafter v2\n"; out.String() != want {
		t.Errorf("across a reload:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestWebSocketIdle: an idle WebSocket outlives nginx's uwsgi_read_timeout
// (2 s here) because the worker pings it; with --websocket-ping 0 nginx
// closes it, which is what the pings are for; and an open socket keeps
// --idle from stopping its app.
func TestWebSocketIdle(t *testing.T) {
	slow(t)
	for _, tc := range []struct {
		ping, want string
		extra      []string
	}{
		{"0.5", "echo still there?\n", nil},
		{"0", "closed ConnectionClosedError\n", nil},
		// An open socket is activity: --idle does not stop the app under it.
		{"0.5", "echo still there?\n", []string{"--idle", "1"}},
	} {
		t.Run(strings.Join(append([]string{"ping", tc.ping}, tc.extra...), " "), func(t *testing.T) {
			e, d, _ := serveASGI(t, "ws.test", "wsapp:app", append([]string{"--websocket-ping", tc.ping}, tc.extra...)...)
			e.tune(t, "uwsgi_read_timeout 30s;", "uwsgi_read_timeout 2s;")
			out := wsScenario(t, e, d, "idle", "4")
			if out != tc.want {
				t.Errorf("a socket idle for 4 s: %q, want %q", out, tc.want)
			}
		})
	}
}
