package daemon

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// notifier speaks systemd's readiness protocol (sd_notify(3)) to the
// manager that started the daemon under a Type=notify unit: READY=1 once
// its sockets are bound, RELOADING=1 and READY=1 around a SIGHUP reload,
// STOPPING=1, and WATCHDOG=1 when the unit sets WatchdogSec. Outside
// systemd (no $NOTIFY_SOCKET) every method does nothing.
type notifier struct {
	conn     *net.UnixConn
	watchdog time.Duration // how often to ping; 0: no watchdog
}

// newNotifier reads systemd's variables and takes them out of the
// environment: no child (a compiler, a Python asked for its headers) may
// speak for the daemon. (Apps' processes get an environment of their own.)
func newNotifier() (*notifier, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	usec, pid := os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID")
	for _, v := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		os.Unsetenv(v)
	}
	n := &notifier{}
	if path == "" {
		return n, nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:] // the abstract namespace
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return n, fmt.Errorf("systemd's notify socket %s: %w", os.Getenv("NOTIFY_SOCKET"), err)
	}
	n.conn = conn
	if us, err := strconv.ParseInt(usec, 10, 64); err == nil && us > 0 && (pid == "" || pid == strconv.Itoa(os.Getpid())) {
		n.watchdog = time.Duration(us) * time.Microsecond / 2 // systemd's advice: ping at half the timeout
	}
	return n, nil
}

func (n *notifier) send(state string) {
	if n.conn != nil {
		_, _ = n.conn.Write([]byte(state)) // systemd gone: nothing to tell
	}
}

func (n *notifier) ready(status string) { n.send("READY=1\nSTATUS=" + status) }

// reloading says a reload began; systemd wants the monotonic clock with it.
func (n *notifier) reloading() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
}

func (n *notifier) stopping() { n.send("STOPPING=1") }

func (n *notifier) ping() { n.send("WATCHDOG=1") }

// ticks is when to ping the watchdog: nil (never) without one.
func (n *notifier) ticks() (<-chan time.Time, func()) {
	if n.conn == nil || n.watchdog <= 0 {
		return nil, func() {}
	}
	t := time.NewTicker(n.watchdog)
	return t.C, t.Stop
}

func (n *notifier) close() {
	if n.conn != nil {
		n.conn.Close()
	}
}
