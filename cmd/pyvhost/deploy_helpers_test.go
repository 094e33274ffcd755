package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// deployEnv is a machine in miniature for `pyvhost deploy`: a private
// nginx with a Debian layout (sites-available + sites-enabled), a state
// dir, a control socket and a per-app socket dir, all under one test
// directory, driven by the real binary (deploy starts the daemon by
// re-running itself).
type deployEnv struct {
	t      *testing.T
	dir    string
	conf   string
	listen string // nginx's 127.0.0.1:PORT
	state  string
	ctl    string
	socks  string
	nginx  *nginxtest.Server // nil until started
	bin    string            // the pyvhost to run; "" = this checkout's build
	env    []string          // its environment; nil = ours with the env's paths
}

func newDeployEnv(t *testing.T, startNginx bool) *deployEnv {
	t.Helper()
	dir := daemontest.Dir(t)
	e := &deployEnv{t: t, dir: dir, conf: filepath.Join(dir, "nginx.conf"), state: filepath.Join(dir, "state"),
		ctl: filepath.Join(dir, "run", "ctl.sock"), socks: filepath.Join(dir, "socks"),
		listen: "127.0.0.1:" + strconv.Itoa(nginxtest.FreePort(t))}
	debianTree(t, dir, "tmp")
	// A site that is not pyvhost's, as on a real server: every failed
	// deploy must leave it serving.
	write(t, e.conf, nginxtest.MainConf(dir, fmt.Sprintf(`    server { listen %s default_server; server_name other.test; location / { return 200 "other site\n"; } }
    include sites-enabled/*;`, e.listen)))
	t.Cleanup(e.stopDaemon)
	if startNginx {
		e.nginx = nginxtest.Start(t, e.conf, e.listen)
	} else {
		t.Cleanup(e.stopNginx)
	}
	return e
}

// vars are the environment that points pyvhost at the env's paths.
func (e *deployEnv) vars() []string {
	return []string{"PYVHOST_NGINX_CONF=" + e.conf, "PYVHOST_NGINX_PREFIX=" + e.dir, "PYVHOST_STATE_DIR=" + e.state,
		"PYVHOST_CTL=" + e.ctl, "PYVHOST_APP_SOCKETS=" + e.socks, "PYVHOST_APP_LOGS=" + filepath.Join(e.dir, "applogs")}
}

// command is the pyvhost binary with args and the env's paths, colourless.
func (e *deployEnv) command(args ...string) *exec.Cmd {
	bin := e.bin
	if bin == "" {
		bin = daemontest.Binary(e.t)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = e.env
	if cmd.Env == nil {
		cmd.Env = append(append(os.Environ(), e.vars()...), "NO_COLOR=1")
	}
	return cmd
}

// debianTree makes dir an nginx config tree in Debian's shape:
// sites-available, sites-enabled (plus dirs) and uwsgi_params beside
// where nginx.conf goes.
func debianTree(t *testing.T, dir string, dirs ...string) {
	t.Helper()
	for _, d := range append([]string{"sites-available", "sites-enabled"}, dirs...) {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	params, err := os.ReadFile(nginxtest.ParamsFile(t))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "uwsgi_params"), string(params))
}

// run runs the pyvhost binary with the env's paths.
func (e *deployEnv) run(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	code, stdout, stderr, err := e.try(args...)
	if err != nil {
		e.t.Fatalf("run pyvhost: %v", err)
	}
	return code, stdout, stderr
}

// try is run for goroutines: it returns the error instead of failing.
func (e *deployEnv) try(args ...string) (code int, stdout, stderr string, err error) {
	cmd := e.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code, err = ee.ExitCode(), nil
	}
	return code, out.String(), errb.String(), err
}

// deploy runs `pyvhost deploy ARGS --yes` and fails the test unless it
// succeeds.
func (e *deployEnv) deploy(args ...string) string {
	e.t.Helper()
	code, out, errOut := e.run(append(append([]string{"deploy"}, args...), "--yes")...)
	if code != 0 {
		e.t.Fatalf("deploy %v: exit %d\n%s\n%s\ndaemon log:\n%s", args, code, out, errOut, e.daemonLog())
	}
	return out
}

func (e *deployEnv) daemonLog() string {
	b, _ := os.ReadFile(filepath.Join(e.state, "uwsgi.log"))
	return string(b)
}

// get fetches path from nginx with Host: host.
func (e *deployEnv) get(host, path string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+e.listen+path, nil)
	req.Host = host
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// want fails the test unless host+path answers code with a body holding
// substr, at once: a command that said "live" must be (nginx's old workers
// stopped accepting before it returned), so there is no retrying here.
func (e *deployEnv) want(host, path string, code int, substr string) {
	e.t.Helper()
	if got, body := e.get(host, path); got != code || !strings.Contains(body, substr) {
		e.t.Fatalf("GET %s%s: %d %q, want %d with %q", host, path, got, trim(body), code, substr)
	}
}

// wantEach is want for n requests in a row, each on a new connection.
func (e *deployEnv) wantEach(n int, host, path string, code int, substr string) {
	e.t.Helper()
	for i := 0; i < n; i++ {
		if got, body := e.get(host, path); got != code || !strings.Contains(body, substr) {
			e.t.Fatalf("request %d of %d right after the command: GET %s%s: %d %q, want %d with %q", i+1, n, host, path, got, trim(body), code, substr)
		}
	}
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// daemonPID is the pid deploy recorded for the daemon it started.
func (e *deployEnv) daemonPID() int {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.state, "uwsgi.pid"))
	if err != nil {
		e.t.Fatalf("no daemon pid recorded: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// stopDaemon shuts down a daemon a deploy started and waits for it (and
// so its app processes) to go.
func (e *deployEnv) stopDaemon() {
	b, err := os.ReadFile(filepath.Join(e.state, "uwsgi.pid"))
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if c, err := control.Dial(e.ctl); err == nil {
		_ = c.Shutdown()
	} else if pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(30 * time.Second)
	for pid > 0 && syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			e.t.Errorf("the daemon (pid %d) did not shut down", pid)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopNginx stops an nginx a deploy started (it runs in the background).
func (e *deployEnv) stopNginx() {
	b, err := os.ReadFile(filepath.Join(e.dir, "nginx.pid"))
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || syscall.Kill(pid, syscall.SIGQUIT) != nil {
		return
	}
	for i := 0; i < 500 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// snapshot is every file under the nginx dir (sites, main config) as
// path → content hash or link target; the state dir is left out (the lock
// file and logs are pyvhost's own) unless withState.
func (e *deployEnv) snapshot(withState bool) string {
	e.t.Helper()
	var lines []string
	err := filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(e.dir, p)
		switch {
		case d.IsDir() && (rel == "tmp" || rel == "apps" || rel == "socks" || rel == "run" || rel == "applogs" || (rel == "state" && !withState)):
			return filepath.SkipDir
		case strings.HasSuffix(rel, ".log") || rel == "nginx.pid" || rel == "nginx.out":
			return nil
		case rel == "state" || rel == "state/deploy.lock" || rel == "state/acme.lock":
			return nil // the locks (and their dir) are bookkeeping, taken before pyvhost knows whether it will change anything
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			lines = append(lines, rel+" -> "+target)
		case info.IsDir():
			lines = append(lines, rel+"/")
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("%s %x %v", rel, sha256.Sum256(b), info.Mode()))
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// unchanged fails the test unless the files are as they were in before
// (a snapshot(withState) taken earlier): what must hold after every
// failed or refused change.
func (e *deployEnv) unchanged(before string, withState bool, what string) {
	e.t.Helper()
	if after := e.snapshot(withState); after != before {
		e.t.Fatalf("%s changed files:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

// app writes a Python app (files name → source) into dir/apps/NAME, owned
// by the user test apps run as.
func (e *deployEnv) app(name string, files map[string]string) string {
	e.t.Helper()
	dir := filepath.Join(e.dir, "apps", name)
	uid, gid := daemontest.AppOwner()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		e.t.Fatal(err)
	}
	for f, src := range files {
		if sub := filepath.Dir(f); sub != "." { // a package: its directory too
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
				e.t.Fatal(err)
			}
			if err := os.Chown(filepath.Join(dir, sub), uid, gid); err != nil {
				e.t.Fatal(err)
			}
		}
		write(e.t, filepath.Join(dir, f), src)
		if err := os.Chown(filepath.Join(dir, f), uid, gid); err != nil {
			e.t.Fatal(err)
		}
	}
	return dir
}

const helloPy = `def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from %s\n" % environ["HTTP_HOST"].encode()]
`
