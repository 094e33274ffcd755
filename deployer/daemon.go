package deployer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/nginxconf/nginxproc"
	"github.com/pyvhost/pyvhost/templates"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// DaemonSetup is how deploy starts the daemon when none answers: the
// binary, and what the daemon must read and serve.
type DaemonSetup struct {
	Exe         string // pyvhost itself
	Ctl         string // control socket
	StateDir    string // log, pid file and status token go here
	NginxConf   string
	AppSockets  string   // per-app socket dir ("" = nginxconf.DefaultAppSocketDir)
	AppLogs     string   // --app-logs: each app's own log ("" = DefaultAppLogs)
	NginxPrefix string   // nginx's -p, when it runs with a private prefix (the daemon reloads nginx after a renewal)
	Listen      []string // -s sockets: the uwsgi_pass addresses that are not per-app sockets
	Processes   int      // -p; 0 = one per CPU, at least 2 (workers start on demand)
	UnitPath    string   // where StartSystemd installs the unit; "" = SystemdUnitPath
}

// DefaultAppLogs is where the daemon deploy starts keeps each app's own
// log (pyvhost logs reads them).
const DefaultAppLogs = "/var/log/pyvhost/apps"

// LogFile is the daemon's log when deploy starts it.
func (s DaemonSetup) LogFile() string { return filepath.Join(s.StateDir, "uwsgi.log") }

// PIDFile is where the daemon deploy started records its pid.
func (s DaemonSetup) PIDFile() string { return filepath.Join(s.StateDir, "uwsgi.pid") }

func (s DaemonSetup) appSockets() string {
	if s.AppSockets == "" {
		return nginxconf.DefaultAppSocketDir
	}
	return s.AppSockets
}

// args are the daemon's flags: uWSGI's classic ones plus where its apps
// are declared. Workers start on demand, so -p costs nothing until used.
func (s DaemonSetup) args() []string {
	p := s.Processes
	if p == 0 {
		p = max(2, runtime.NumCPU())
	}
	logs := s.AppLogs
	if logs == "" {
		logs = DefaultAppLogs
	}
	a := []string{"uwsgi", "--vhost", "-M", "-p", strconv.Itoa(p),
		"--nginx-conf", s.NginxConf, "--app-sockets", s.appSockets(), "--ctl", s.Ctl, "--state-dir", s.StateDir, "--app-logs", logs}
	if s.NginxPrefix != "" {
		a = append(a, "--nginx-prefix", s.NginxPrefix)
	}
	for _, l := range s.Listen {
		a = append(a, "-s", l)
	}
	return a
}

// StartArgs is the command line (after the binary) that starts the
// daemon in the background.
func (s DaemonSetup) StartArgs() []string {
	return append(s.args(), "-d", s.LogFile(), "--pidfile", s.PIDFile())
}

// Start runs the daemon in the background and waits until its control
// socket answers.
func (s DaemonSetup) Start(ctx context.Context, r Runner) (*control.Client, control.Status, error) {
	if err := os.MkdirAll(s.StateDir, 0o700); err != nil {
		return nil, control.Status{}, fmt.Errorf("state dir: %w", err)
	}
	if _, stderr, err := r.Run(ctx, s.Exe, s.StartArgs()...); err != nil {
		// The reason is on stderr (the daemon reports a failed start to the
		// waiting parent); the log has the rest, if it got that far.
		why := strings.TrimPrefix(lastLines(string(stderr), 2), "pyvhost: ")
		if why == "" {
			log, _ := os.ReadFile(s.LogFile())
			why = lastLines(string(log), 2)
		}
		return nil, control.Status{}, fmt.Errorf("start the daemon (%v): %s (log: %s)", err, why, s.LogFile())
	}
	return waitForDaemon(ctx, s.Ctl, 10*time.Second)
}

// StartSystemd installs the pyvhost unit and starts it: where systemd
// runs, it restarts the daemon after a crash or a reboot.
func (s DaemonSetup) StartSystemd(ctx context.Context, r Runner) (*control.Client, control.Status, error) {
	unit, err := s.Unit()
	if err != nil {
		return nil, control.Status{}, err
	}
	path := s.UnitPath
	if path == "" {
		path = SystemdUnitPath
	}
	if err := writeFileAtomic(path, unit, 0o644); err != nil {
		return nil, control.Status{}, fmt.Errorf("install the systemd unit: %w", err)
	}
	for _, args := range [][]string{{"daemon-reload"}, {"enable", "--now", "pyvhost.service"}} {
		if _, stderr, err := r.Run(ctx, "systemctl", args...); err != nil {
			return nil, control.Status{}, fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(stderr)))
		}
	}
	return waitForDaemon(ctx, s.Ctl, 10*time.Second)
}

// Unit is the systemd unit that runs this daemon (deploy installs it; the
// Debian package ships it with the package's paths).
func (s DaemonSetup) Unit() ([]byte, error) { return templates.SystemdUnit(s.Exe, s.args()) }

// SystemdUnitPath is where deploy installs the daemon's unit.
const SystemdUnitPath = "/etc/systemd/system/pyvhost.service"

// SystemdRunning reports whether systemd is this machine's init.
func SystemdRunning() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

func waitForDaemon(ctx context.Context, ctl string, timeout time.Duration) (*control.Client, control.Status, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := control.Dial(ctl)
		if err == nil {
			st, err := c.Status()
			if err == nil {
				return c, st, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, control.Status{}, fmt.Errorf("the daemon did not answer on %s within %s: %v", ctl, timeout, err)
		}
		select {
		case <-ctx.Done():
			return nil, control.Status{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StopDaemon shuts down a daemon deploy started (on a failed deploy) and
// waits for its pid to go.
func StopDaemon(c *control.Client, pid int, timeout time.Duration) error {
	if err := c.Shutdown(); err != nil {
		return fmt.Errorf("shut down the daemon: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for nginxproc.Alive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon (pid %d) did not exit within %s", pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// checkDaemonServes makes sure a running daemon will see the site deploy
// writes and can serve its socket, before anything is written.
func checkDaemonServes(st control.Status, ctl, nginxConf, socket string) error {
	if st.NginxConf != "" && resolvedPath(st.NginxConf) != resolvedPath(nginxConf) {
		return fmt.Errorf("the daemon at %s reads its apps from %s, not %s: deploy with --nginx-conf %s, or restart the daemon with --nginx-conf %s",
			ctl, st.NginxConf, nginxConf, st.NginxConf, nginxConf)
	}
	if path, ok := strings.CutPrefix(socket, "unix:"); ok && st.NginxConf == "" && filepath.Dir(path) == filepath.Clean(st.AppSockets) {
		return fmt.Errorf("the daemon at %s (pid %d) reads no nginx config, so it makes no per-app sockets: restart it with --nginx-conf %s, or deploy with --socket set to one of its -s sockets (%s)",
			ctl, st.PID, nginxConf, strings.Join(st.Sockets, ", "))
	}
	if socketServed(socket, st) {
		return nil
	}
	return fmt.Errorf("the daemon at %s (pid %d) does not serve --socket %s (it listens on %s and makes per-app sockets in %s): use one of those, or restart it with -s %s",
		ctl, st.PID, socket, strings.Join(st.Sockets, ", "), st.AppSockets, strings.TrimPrefix(socket, "unix:"))
}

// socketServed reports whether the daemon accepts on an nginx uwsgi_pass
// address: a unix socket in its per-app dir (it creates those when it
// re-reads the config) or one of its -s sockets.
func socketServed(socket string, st control.Status) bool {
	if path, ok := strings.CutPrefix(socket, "unix:"); ok {
		if st.AppSockets != "" && filepath.Dir(path) == filepath.Clean(st.AppSockets) {
			return true
		}
		return slices.Contains(st.Sockets, path)
	}
	host, port, err := net.SplitHostPort(socket)
	if err != nil {
		return false
	}
	for _, s := range st.Sockets {
		h, p, err := net.SplitHostPort(s)
		if err != nil || p != port {
			continue
		}
		// ":9090" and "0.0.0.0:9090" accept on every address.
		if h == host || h == "" || h == "0.0.0.0" || h == "::" || (host == "localhost" && h == "127.0.0.1") {
			return true
		}
	}
	return false
}

func resolvedPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}

// appOf asks the daemon about one app, by its identity: its current pool
// (the daemon answers with a retiring one — replaced, finishing its last
// requests — only when there is no other). ok is false when the daemon
// does not know it. One app, not the list: that is 10,000 apps' stats on
// a big box, half a second each time.
func appOf(c *control.Client, app nginxconf.AppSpec) (a pool.AppStats, ok bool, err error) {
	a, err = c.App(pool.Key{Pyhome: app.Venv, Chdir: app.AppDir, Script: app.Module}.ID())
	var ae *control.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("ask the daemon about %s: %w", app.Module, err)
	}
	return a, true, nil
}

// running reports whether an app has processes (or is starting them).
func running(a pool.AppStats) bool { return a.State == pool.Ready || a.State == pool.Starting }
