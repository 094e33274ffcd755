// Package nginxtest runs a real, private nginx for tests: its own prefix,
// pid file, logs and temp paths under t.TempDir(), on free loopback ports,
// stopped when the test ends. It also checks golden files (-update rewrites
// them) for every package whose output is golden-tested.
package nginxtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf/nginxproc"
)

// Binary returns the nginx binary, failing the test with what to do when
// it is missing: `make test` installs it.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/nginx")
	}
	if err != nil {
		t.Fatalf("nginx is not installed: run `make test`, which installs it (apt-get install nginx)")
	}
	return bin
}

// MainConf returns a main nginx.conf for dir: everything nginx writes stays
// in dir, and http holds httpBody. Run as root, workers stay root so they
// can reach sockets and files in the test's private directories.
func MainConf(dir, httpBody string) string {
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n"
	}
	tmp := filepath.Join(dir, "tmp")
	return fmt.Sprintf(`%sworker_processes 1;
pid %s;
error_log %s info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %s/body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fastcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
%s
}
`, user, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"), tmp, tmp, tmp, tmp, tmp, httpBody)
}

// Test runs `nginx -t` on the main configuration file conf and returns
// nginx's output; err is non-nil when the test fails.
func Test(t testing.TB, conf string) (string, error) {
	t.Helper()
	dir := filepath.Dir(conf)
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(Binary(t), "-t", "-p", dir, "-c", conf).CombinedOutput()
	return string(out), err
}

// CheckBlock writes a server block into a fresh private configuration and
// runs `nginx -t` on it, failing the test with nginx's message if it fails
// or warns.
func CheckBlock(t testing.TB, block []byte) {
	t.Helper()
	dir := t.TempDir()
	site := filepath.Join(dir, "site.conf")
	if err := os.WriteFile(site, block, 0o644); err != nil {
		t.Fatal(err)
	}
	params, err := os.ReadFile(ParamsFile(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "uwsgi_params"), params, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(MainConf(dir, "    include "+site+";")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := Test(t, conf)
	if err != nil || strings.Contains(out, "[warn]") {
		t.Fatalf("nginx -t rejected the block (%v):\n%s\n--- block:\n%s", err, out, block)
	}
}

// ParamsFile is the uwsgi_params file of the installed nginx.
func ParamsFile(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/etc/nginx/uwsgi_params", "/usr/local/nginx/conf/uwsgi_params"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("no uwsgi_params file: run `make test`, which installs nginx")
	return ""
}

// FreePort returns a loopback TCP port nothing listens on right now, below
// Linux's ephemeral range (32768-60999): a port the kernel handed out
// (as :0 does) may be taken, before the test binds it, as the local port
// of any connection this busy machine opens; and never one it gave before.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for try := 0; try < 1000; try++ {
		p := 20000 + rand.IntN(12000)
		if portsGiven[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[p] = true
		return p
	}
	t.Fatal("no free port in 20000-31999")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// Server is a running private nginx.
type Server struct {
	Dir, Conf string
	cmd       *exec.Cmd
}

// Start runs nginx in the foreground on the main configuration file conf,
// waits until addr accepts connections, and stops it when the test ends.
func Start(t testing.TB, conf, addr string) *Server {
	t.Helper()
	dir := filepath.Dir(conf)
	if out, err := Test(t, conf); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(Binary(t), "-p", dir, "-c", conf, "-g", "daemon off; master_process on;")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(dir, "nginx.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	s := &Server{Dir: dir, Conf: conf, cmd: cmd}
	t.Cleanup(s.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not listen on %s: %v\n%s", addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Reload asks the running nginx to re-read its configuration and waits
// for the new workers.
func (s *Server) Reload(t testing.TB) {
	t.Helper()
	master := s.cmd.Process.Pid
	old := nginxproc.AcceptingWorkers(master)
	if out, err := exec.Command(Binary(t), "-p", s.Dir, "-c", s.Conf, "-s", "reload").CombinedOutput(); err != nil {
		t.Fatalf("nginx -s reload: %v\n%s", err, out)
	}
	if err := nginxproc.WaitOldWorkers(context.Background(), master, old, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
		t.Fatalf("%v\n%s", err, log)
	}
}

func (s *Server) stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGQUIT)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}
