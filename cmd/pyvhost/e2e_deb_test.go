package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestDebianPackage: make deb's package installs with dpkg -i on this
// machine (man page, completions, unit, tmpfiles, logrotate); a site goes
// live using only what it installed — /usr/bin/pyvhost and its defaults
// for the daemon's socket, state and logs (a private nginx, so the
// machine's own is untouched); dpkg -r stops that daemon and leaves
// nothing of the package but its state, and --purge removes that too.
func TestDebianPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and installs the package (make test runs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("installs a package: needs root (make test and CI run as root)")
	}
	if exec.Command("dpkg", "-s", "pyvhost").Run() == nil {
		t.Fatal("a pyvhost package is installed on this machine: the test would replace it (dpkg -r pyvhost first)")
	}
	if c, err := control.Dial("/run/pyvhost/ctl.sock"); err == nil {
		if _, err := c.Status(); err == nil {
			t.Fatal("a pyvhost daemon answers on /run/pyvhost/ctl.sock: the test would stop it")
		}
	}
	deb := buildDeb(t)
	t.Cleanup(func() { _ = exec.Command("dpkg", "--purge", "pyvhost").Run() })
	dpkg(t, "-i", deb)
	files := packageFiles(t)
	for _, f := range []string{"/usr/bin/pyvhost", "/usr/share/man/man1/pyvhost.1.gz", "/usr/share/bash-completion/completions/pyvhost",
		"/usr/share/zsh/vendor-completions/_pyvhost", "/usr/share/fish/vendor_completions.d/pyvhost.fish",
		"/usr/lib/tmpfiles.d/pyvhost.conf", "/etc/logrotate.d/pyvhost", "/lib/systemd/system/pyvhost.service"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("the package did not install %s: %v", f, err)
		}
	}
	if unit, _ := os.ReadFile("/lib/systemd/system/pyvhost.service"); !strings.Contains(string(unit), "Type=notify") ||
		!strings.Contains(string(unit), "ExecStart=/usr/bin/pyvhost uwsgi --vhost") {
		t.Errorf("the unit:\n%s", unit)
	}
	if out, err := exec.Command("man", "-w", "pyvhost").CombinedOutput(); err != nil || !strings.Contains(string(out), "/usr/share/man/man1/pyvhost.1.gz") {
		t.Errorf("man -w pyvhost: %v %s", err, out)
	}
	if st, err := os.Stat("/var/lib/pyvhost"); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("/var/lib/pyvhost: %v %v, want a 0700 dir", st, err)
	}

	// A site, with only the package's pyvhost and its defaults.
	e := newDeployEnv(t, true)
	e.bin = "/usr/bin/pyvhost"
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PYVHOST_") {
			e.env = append(e.env, kv)
		}
	}
	e.env = append(e.env, "PYVHOST_NGINX_CONF="+e.conf, "PYVHOST_NGINX_PREFIX="+e.dir, "NO_COLOR=1")
	app := e.app("debsite", map[string]string{"debsite.py": helloPy})
	e.deploy("deb.example.com", "--app-dir", app, "--module", "debsite", "--venv", daemontest.Venv(t), "--listen", e.listen)
	e.want("deb.example.com", "/", 200, "hello from deb.example.com")
	c, err := control.Dial("/run/pyvhost/ctl.sock")
	if err != nil {
		t.Fatalf("no daemon on the package's default socket: %v", err)
	}
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	if exe, _ := os.Readlink("/proc/" + strconv.Itoa(st.PID) + "/exe"); exe != "/usr/bin/pyvhost" {
		t.Errorf("the daemon runs %q, want the package's /usr/bin/pyvhost", exe)
	}

	if _, err := os.Stat("/var/lib/pyvhost/releases/deb.example.com"); err != nil {
		t.Fatalf("the deploy recorded no release in the package's state dir: %v", err)
	}
	dpkg(t, "-r", "pyvhost")
	waitGone(t, st.PID)
	for _, f := range files {
		// A conffile (logrotate's) stays until --purge, as Debian has it.
		if st, err := os.Stat(f); err == nil && !st.IsDir() && f != "/etc/logrotate.d/pyvhost" {
			t.Errorf("dpkg -r left %s", f)
		}
	}
	if _, err := os.Stat("/run/pyvhost"); err == nil {
		t.Error("dpkg -r left /run/pyvhost")
	}
	if _, err := os.Stat("/var/lib/pyvhost/releases/deb.example.com"); err != nil {
		t.Errorf("dpkg -r removed the state (the site's releases): %v", err)
	}
	dpkg(t, "--purge", "pyvhost")
	for _, d := range []string{"/var/lib/pyvhost", "/var/log/pyvhost", "/etc/logrotate.d/pyvhost"} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("dpkg --purge left %s", d)
		}
	}
}

// buildDeb runs make deb in this checkout and returns the package.
func buildDeb(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	out, err := exec.Command("make", "-C", root, "deb").CombinedOutput()
	if err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(root, "bin", "pyvhost_*.deb"))
	sort.Slice(debs, func(i, j int) bool { return modTime(debs[i]).After(modTime(debs[j])) })
	if len(debs) == 0 {
		t.Fatalf("make deb made no package:\n%s", out)
	}
	return debs[0]
}

func modTime(p string) time.Time {
	st, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

func dpkg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("dpkg", args...).CombinedOutput(); err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// packageFiles are the files dpkg says the installed package owns.
func packageFiles(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("dpkg", "-L", "pyvhost").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon (pid %d) still runs after dpkg -r", pid)
		}
	}
}
