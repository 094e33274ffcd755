// Package daemontest runs the real pyvhost daemon for end-to-end tests:
// the binary built once per test process, a shared virtualenv made from
// Debian's Python (so Flask and Django come from python3-flask and
// python3-django), app directories owned by an unprivileged user, and a
// daemon stopped when its test ends.
package daemontest

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	shared     string // per-process scratch directory (binary, venv)
	sharedOnce sync.Once
	sharedErr  error
	binPath    string
	venvPath   string
)

// Main wraps a test package's TestMain: the daemons the tests start keep
// their runtime dir (worker program, C module, default sockets) in one of
// the run's own, never the machine's /run/pyvhost (a package test removes
// that); the shared scratch directory goes after the tests.
func Main(m *testing.M, cleanups ...func()) {
	if os.Getenv("PYVHOST_RUNTIME_DIR") == "" {
		if run, err := os.MkdirTemp("", "pyvhost-run-"); err == nil {
			_ = os.Chmod(run, 0o755) // app users reach the worker program
			os.Setenv("PYVHOST_RUNTIME_DIR", run)
			cleanups = append(cleanups, func() { os.RemoveAll(run) })
		}
	}
	code := m.Run()
	if shared != "" {
		os.RemoveAll(shared)
	}
	for _, c := range cleanups {
		c()
	}
	os.Exit(code)
}

func setup() {
	shared, sharedErr = os.MkdirTemp("", "pyvhost-e2e-")
	if sharedErr != nil {
		return
	}
	_ = os.Chmod(shared, 0o755)
	binPath = filepath.Join(shared, "pyvhost")
	// As make build: the C module compiled first, for the binary to embed
	// (no compiler here: the binary compiles it at start-up, or runs without).
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	prebuild := exec.Command("go", "run", "./cmd/speedups", "templates/prebuilt")
	prebuild.Dir = root
	_, _ = prebuild.CombinedOutput()
	build := exec.Command("go", "build", "-o", binPath, "github.com/pyvhost/pyvhost/cmd/pyvhost")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build: a static daemon is smaller
	out, err := build.CombinedOutput()
	if err != nil {
		sharedErr = fmt.Errorf("build pyvhost: %v\n%s", err, out)
		return
	}
	venvPath = filepath.Join(shared, "venv")
	// Debian's interpreter, not the first python3 on PATH: its packages
	// (python3-flask, python3-django) are what --system-site-packages shares.
	out, err = exec.Command("/usr/bin/python3", "-m", "venv", "--system-site-packages", venvPath).CombinedOutput()
	if err != nil {
		sharedErr = fmt.Errorf("create venv: %v\n%s (run `make test`: it installs python3-venv)", err, out)
	}
}

// Binary is the pyvhost binary built from this checkout.
func Binary(t testing.TB) string {
	t.Helper()
	sharedOnce.Do(setup)
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return binPath
}

// Venv is a virtualenv shared by the tests' apps, like the seed's one venv
// for two sites.
func Venv(t testing.TB) string {
	Binary(t)
	return venvPath
}

// Dir is a temporary directory every user can traverse (app workers run as
// nobody when the tests run as root).
func Dir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	for p := d; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		_ = os.Chmod(p, 0o755)
	}
	return d
}

// AppOwner is the user test apps run as: nobody when root, else ourselves.
func AppOwner() (uid, gid int) {
	if os.Geteuid() != 0 {
		return os.Getuid(), os.Getgid()
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return 65534, 65534
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// App copies testdata/apps/NAME into dir/NAME, owned by AppOwner, and
// returns its path.
func App(t testing.TB, dir, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "apps", name)
	dst := filepath.Join(dir, name)
	uid, gid := AppOwner()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), "__pycache__") {
				return filepath.SkipDir
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
		} else {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return err
			}
		}
		return os.Lchown(out, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// Daemon is a running `pyvhost uwsgi`.
type Daemon struct {
	cmd     *exec.Cmd
	LogPath string
	done    chan struct{}
	exitErr error
}

// Start runs `pyvhost uwsgi ARGS...` logging to a file, waits until
// readyAddr accepts connections (a host:port or unix socket path; "" to
// not wait), and stops the daemon when the test ends.
func Start(t testing.TB, readyAddr string, args ...string) *Daemon {
	t.Helper()
	return StartEnv(t, nil, readyAddr, args...)
}

// StartEnv is Start with env added to the daemon's environment (a later
// NAME=value wins over the inherited one).
func StartEnv(t testing.TB, env []string, readyAddr string, args ...string) *Daemon {
	t.Helper()
	bin := Binary(t)
	logPath := filepath.Join(Dir(t), "daemon.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// Each test daemon gets its own control socket unless the test names one.
	ctl := ""
	for i, a := range args {
		if a == "--ctl" && i+1 < len(args) {
			ctl = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--ctl="); ok {
			ctl = v
		}
	}
	if ctl == "" {
		ctl = filepath.Join(Dir(t), "ctl", "ctl.sock")
		args = append(args, "--ctl", ctl)
	}
	cmd := exec.Command(bin, append([]string{"uwsgi"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	d := &Daemon{cmd: cmd, LogPath: logPath, done: make(chan struct{})}
	go func() { d.exitErr = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.Stop(t) })
	if readyAddr != "" {
		d.waitFor(t, readyAddr)
		// The control socket opens a moment after the sockets are bound.
		d.waitFor(t, ctl)
	}
	return d
}

// waitFor waits until addr (host:port, or a unix socket path) accepts.
func (d *Daemon) waitFor(t testing.TB, addr string) {
	t.Helper()
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout(network, addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-d.done:
			t.Fatalf("daemon exited during start-up (%v):\n%s", d.exitErr, d.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not listening on %s:\n%s", addr, d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID is the daemon's process id.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Log is everything the daemon logged so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.LogPath)
	return string(b)
}

// WaitLog waits until the log contains s.
func (d *Daemon) WaitLog(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(d.Log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", s, d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// Wait waits for the daemon to exit and returns its exit error.
func (d *Daemon) Wait(timeout time.Duration) (error, bool) {
	select {
	case <-d.done:
		return d.exitErr, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Stop ends the daemon (SIGTERM, then SIGKILL of its whole process group)
// and checks it left no process behind.
func (d *Daemon) Stop(t testing.TB) {
	select {
	case <-d.done:
	default:
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		if _, ok := d.Wait(10 * time.Second); !ok {
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
			t.Errorf("daemon did not stop on SIGTERM within 10s:\n%s", d.Log())
		}
	}
	// Workers run in process groups of their own: none may outlive the daemon.
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := Descendants(d.cmd.Process.Pid)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			t.Errorf("processes left after the daemon stopped: %v", left)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Descendants lists the processes whose parent chain leads to pid (or whose
// parent died and that still carry the daemon's worker program).
func Descendants(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if bytes.Contains(cmdline, []byte(shared)) && strings.Contains(string(cmdline), "worker-") && parentOf(p) == 1 {
			out = append(out, p) // an orphaned worker of some test's daemon
			continue
		}
		if isDescendant(p, pid) {
			out = append(out, p)
		}
	}
	return out
}

func isDescendant(p, root int) bool {
	for i := 0; i < 64 && p > 1; i++ {
		pp := parentOf(p)
		if pp == root {
			return true
		}
		p = pp
	}
	return false
}

// parentOf is a process's parent pid, 0 if it is gone.
func parentOf(p int) int {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
	if err != nil {
		return 0
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	if len(f) < 2 {
		return 0
	}
	pp, _ := strconv.Atoi(f[1])
	return pp
}

// Python is an interpreter found on the machine.
type Python struct {
	Path    string
	Version string // "3.11"
}

// Pythons are Debian's python3 and every other Python 3.8+ found in the
// usual places (pyenv's versions among them), one per version: the
// interpreters apps may run under. Debian's comes first.
func Pythons(t testing.TB) []Python {
	t.Helper()
	var found []Python
	seen := map[string]bool{}
	cands, _ := filepath.Glob("/usr/bin/python3.*")
	more, _ := filepath.Glob("/usr/local/bin/python3.*")
	pyenv, _ := filepath.Glob("/root/.pyenv/versions/3.*/bin/python3")
	cands = append(append(cands, more...), pyenv...)
	for _, p := range append([]string{"/usr/bin/python3"}, cands...) {
		out, err := exec.Command(p, "-c", "import sys; print('%d.%d' % sys.version_info[:2], sys.version_info >= (3, 8))").Output()
		f := strings.Fields(string(out))
		if err != nil || len(f) != 2 || f[1] != "True" || seen[f[0]] {
			continue
		}
		seen[f[0]] = true
		found = append(found, Python{p, f[0]})
	}
	t.Logf("Pythons: %v", found)
	return found
}

// NeedRoot skips a test only root can run, except under CI, where it
// fails: CI runs as root, and a skipped test there would hide a
// regression.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("needs root (%s), and CI runs as root", why)
	}
	t.Skipf("needs root: %s", why)
}

// FaultRounds is FAULT_ROUNDS (make faults sets 20), else def: how often a
// fault test that hits a race by chance repeats it.
func FaultRounds(def int) int {
	if n, err := strconv.Atoi(os.Getenv("FAULT_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return def
}
