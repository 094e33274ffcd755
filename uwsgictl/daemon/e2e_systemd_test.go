package daemon_test

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// notifyListener stands in for systemd: the datagram socket a Type=notify
// unit's $NOTIFY_SOCKET names, and the states the daemon sends there.
type notifyListener struct {
	t    *testing.T
	conn *net.UnixConn
}

func listenNotify(t *testing.T, name string) *notifyListener {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifyListener{t, conn}
}

// next is the next message that is not a watchdog ping.
func (n *notifyListener) next(within time.Duration) string {
	n.t.Helper()
	for {
		msg := n.read(within)
		if msg != "WATCHDOG=1" {
			return msg
		}
	}
}

func (n *notifyListener) read(within time.Duration) string {
	n.t.Helper()
	buf := make([]byte, 4096)
	_ = n.conn.SetReadDeadline(time.Now().Add(within))
	k, err := n.conn.Read(buf)
	if err != nil {
		n.t.Fatalf("no notify message in %s: %v", within, err)
	}
	return string(buf[:k])
}

// TestSystemdNotify: under a Type=notify unit the daemon says READY=1 once
// its sockets accept, RELOADING=1 (with the monotonic clock) and READY=1
// around a SIGHUP, WATCHDOG=1 at half of WatchdogSec, STOPPING=1 when told
// to stop. Both a socket path and
// the abstract namespace ("@name").
func TestSystemdNotify(t *testing.T) {
	slow(t)
	for _, abstract := range []bool{false, true} {
		name := filepath.Join(daemontest.Dir(t), "notify.sock")
		addr := name
		if abstract {
			name = "\x00pyvhost-test-" + filepath.Base(filepath.Dir(name))
			addr = "@" + name[1:]
		}
		n := listenNotify(t, name)
		env := []string{"NOTIFY_SOCKET=" + addr, "WATCHDOG_USEC=200000"}
		e, d, _ := wsgiEnvWith(t, env, nil, "envecho")

		ready := n.next(10 * time.Second)
		if !strings.HasPrefix(ready, "READY=1\n") {
			t.Fatalf("first message %q, want READY=1", ready)
		}
		if code, body := e.get(t, "envecho.test", "/"); code != 200 {
			t.Fatalf("%d %q\n%s", code, body, d.Log())
		}
		pings := 0
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline) && pings < 3; {
			if n.read(time.Second) == "WATCHDOG=1" {
				pings++
			}
		}
		if pings < 3 {
			t.Errorf("%d watchdog pings in a second at WatchdogSec=0.2s", pings)
		}
		d.Signal(t, syscall.SIGHUP)
		if msg := n.next(5 * time.Second); !strings.HasPrefix(msg, "RELOADING=1\nMONOTONIC_USEC=") {
			t.Errorf("after SIGHUP: %q, want RELOADING=1 with MONOTONIC_USEC", msg)
		}
		if msg := n.next(10 * time.Second); !strings.HasPrefix(msg, "READY=1") {
			t.Errorf("after the reload: %q, want READY=1", msg)
		}
		d.Signal(t, syscall.SIGTERM)
		if msg := n.next(5 * time.Second); msg != "STOPPING=1" {
			t.Errorf("after SIGTERM: %q, want STOPPING=1", msg)
		}
		if _, ok := d.Wait(10 * time.Second); !ok {
			t.Fatal("the daemon did not exit")
		}
	}
}
