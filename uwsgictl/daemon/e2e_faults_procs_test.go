package daemon_test

// Faults of the app's processes and of the peer: a worker or zygote
// SIGKILLed or SIGSTOPped, a client that leaves mid-download, a
// CONTENT_LENGTH that lies.

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
	"github.com/pyvhost/pyvhost/uwsgictl/wire"
)

// appOf is the one app the control socket lists, once it has workers
// (want of them, at least).
func appOf(t *testing.T, c *control.Client, want int) pool.AppStats {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		apps, err := c.Apps()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range apps.Apps {
			up := 0
			for _, w := range a.Workers {
				if w.PID > 0 && w.State != "starting" {
					up++
				}
			}
			if !a.Retiring && a.State == pool.Ready && up >= want {
				return a
			}
		}
	}
	t.Fatalf("no ready app with %d workers within 10 s", want)
	return pool.AppStats{}
}

// TestFaultWorkerAndZygoteSignals: a worker SIGKILLed between requests or
// in one, or SIGSTOPped in one (harakiri ends it), costs at most its
// request; a SIGKILLed zygote takes its workers with it and the next
// request starts the app again; a SIGSTOPped zygote does not stop its
// workers serving.
func TestFaultWorkerAndZygoteSignals(t *testing.T) {
	slow(t)
	ctl := filepath.Join(daemontest.Dir(t), "ctl.sock")
	e, d, _ := unixEnv(t, []string{"-p", "2", "-t", "2", "--ctl", ctl}, "crash")
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	serves := func(when string) {
		t.Helper()
		for i := 0; i < 5; i++ {
			if code, body := e.get(t, "crash.test", "/"); code != 200 {
				t.Fatalf("%s: %d %q\n%s", when, code, body, d.Log())
			}
		}
	}
	serves("at start")
	// Between requests: the client has its answer a moment before the
	// worker marks its slot idle (CI once killed it in that moment, and
	// the daemon rightly said "while serving").
	var victim int
	for end := time.Now().Add(10 * time.Second); victim == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no worker idle within 10 s\n%s", d.Log())
		}
		for _, w := range appOf(t, c, 1).Workers {
			if w.State == "idle" && w.PID > 0 {
				victim = w.PID
				break
			}
		}
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.WaitLog(t, fmt.Sprintf("worker pid %d died (signal killed between requests), respawning", victim), 5*time.Second)
	serves("after a worker was SIGKILLed between requests")

	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
		done := make(chan int, 1)
		go func() { code, _, _ := e.try("crash.test", "/slow/30"); done <- code }()
		busy := waitBusy(t, ctl, "GET /slow/30")
		if err := syscall.Kill(busy, sig); err != nil {
			t.Fatal(err)
		}
		serves(fmt.Sprintf("while a worker in a request got %v", sig))
		if code := <-done; code != 502 {
			t.Errorf("the request whose worker got %v: %d, want 502", sig, code)
		}
	}
	d.WaitLog(t, "HARAKIRI", time.Second) // the stopped one

	a := appOf(t, c, 1)
	zygote, workers := a.ZygotePID, a.Workers
	if err := syscall.Kill(zygote, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	serves("while the zygote is stopped")
	if err := syscall.Kill(zygote, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(zygote, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.WaitLog(t, "zygote exited unexpectedly", 5*time.Second)
	for _, w := range workers {
		waitExited(t, w.PID, "a worker of the SIGKILLed zygote")
	}
	serves("after the zygote was SIGKILLed")
}

// appVars name unixEnv's app as nginx does (the worker checks a request
// is for its app).
func appVars(t *testing.T, socks, name string) []wire.Var {
	return []wire.Var{{Key: "UWSGI_PYHOME", Value: daemontest.Venv(t)}, {Key: "UWSGI_CHDIR", Value: filepath.Join(filepath.Dir(socks), name)},
		{Key: "UWSGI_SCRIPT", Value: name}}
}

// waitExited waits until pid is gone (or a zombie nobody reaps).
func waitExited(t *testing.T, pid int, what string) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
	}
	t.Fatalf("%s (pid %d) still runs 5 s later", what, pid)
}

// TestFaultClientLeavesMidDownload: a client that goes away in the middle
// of an endless response frees its worker at once (the write fails; no
// waiting for --socket-timeout), the response's close() is called, and the
// worker serves the next request; on both request paths.
func TestFaultClientLeavesMidDownload(t *testing.T) {
	slow(t)
	for _, rp := range requestPaths {
		t.Run(rp.name, func(t *testing.T) {
			ctl := filepath.Join(daemontest.Dir(t), "ctl.sock")
			e, d, socks := unixEnv(t, append([]string{"-p", "1", "--socket-timeout", "30", "--ctl", ctl}, rp.args...), "stream")
			appDir := filepath.Join(filepath.Dir(socks), "stream")
			pkt, _ := wire.Encode(0, 0, append(appVars(t, socks, "stream"), wire.Var{Key: "REQUEST_METHOD", Value: "GET"},
				wire.Var{Key: "PATH_INFO", Value: "/forever"}, wire.Var{Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"}))
			conn, err := net.Dial("unix", socks+"/stream.sock")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(pkt); err != nil {
				t.Fatal(err)
			}
			if _, err := io.CopyN(io.Discard, conn, 4<<20); err != nil {
				t.Fatalf("the first 4 MB: %v", err)
			}
			conn.Close()
			for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if b, _ := os.ReadFile(filepath.Join(appDir, "forever.marker")); string(b) == "closed\n" {
					break
				}
				if time.Now().After(end) {
					t.Fatalf("close() was not called 5 s after the client left (--socket-timeout is 30 s)\n%s", d.Log())
				}
			}
			if code, body := e.get(t, "stream.test", "/"); code != 200 || !strings.HasPrefix(body, "chunk 0") {
				t.Fatalf("the next request on the one worker: %d %q", code, body)
			}
		})
	}
}

// TestFaultContentLengthLies: the app reads exactly CONTENT_LENGTH bytes
// whatever else the peer sends, and a CONTENT_LENGTH that is not a number
// of bytes (which Python's int() would take) gets a 400 without reaching
// the app; on both request paths.
func TestFaultContentLengthLies(t *testing.T) {
	slow(t)
	for _, rp := range requestPaths {
		t.Run(rp.name, func(t *testing.T) {
			_, d, socks := unixEnv(t, rp.args, "bigio")
			send := func(cl string, body string) string {
				pkt, _ := wire.Encode(0, 0, append(appVars(t, socks, "bigio"), wire.Var{Key: "REQUEST_METHOD", Value: "POST"},
					wire.Var{Key: "PATH_INFO", Value: "/upload"}, wire.Var{Key: "SERVER_PROTOCOL", Value: "HTTP/1.1"}, wire.Var{Key: "CONTENT_LENGTH", Value: cl}))
				return rawRequest(t, socks+"/bigio.sock", append(pkt, body...))
			}
			sum := sha256.Sum256([]byte("hello"))
			if r := send("5", "helloEXTRA BYTES THE APP MUST NOT SEE"); !strings.HasSuffix(r, fmt.Sprintf("\r\n\r\n5 %x\n", sum)) {
				t.Errorf("CONTENT_LENGTH 5 with more bytes after: %q, want the app to read 5", r)
			}
			for _, cl := range []string{"-5", "abc", "5_0", "+5", " 5", "5 ", "0x10", "\u0661\u0662", "99999999999999999999"} {
				if r := send(cl, "hello"); !strings.HasPrefix(r, "HTTP/1.1 400 ") {
					t.Errorf("CONTENT_LENGTH %q: %q, want a 400", cl, r)
				}
			}
			d.WaitLog(t, `refused a request with CONTENT_LENGTH '5_0': not a number of bytes (400)`, time.Second)
		})
	}
}
