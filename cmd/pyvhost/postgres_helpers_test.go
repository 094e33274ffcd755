package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

// postgres is a real PostgreSQL (Debian's) for one test: a cluster of its
// own in a private dir, on a private loopback port and socket dir, run as
// the postgres user when we are root (it refuses root), stopped by pid at
// cleanup.
type postgres struct {
	bin, data, sock string
	port            int
	cred            *syscall.Credential
}

func startPostgres(t *testing.T) *postgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Fatal("PostgreSQL is not installed: apt-get install postgresql (make test does)")
	}
	dir := t.TempDir()
	p := &postgres{bin: filepath.Dir(bins[len(bins)-1]), data: filepath.Join(dir, "data"), sock: filepath.Join(dir, "sock"), port: nginxtest.FreePort(t)}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal("no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		_ = os.Chmod(dir, 0o755)
		for _, d := range []string{p.data, p.sock} {
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	p.run(t, "initdb", "-D", p.data, "-U", "pyvhost", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
	p.run(t, "pg_ctl", "-D", p.data, "-l", filepath.Join(p.data, "server.log"), "-w", "-t", "60", "start",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.sock))
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *postgres) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// createDB makes a database and returns its URL (as DATABASE_URL).
func (p *postgres) createDB(t *testing.T, name string) string {
	t.Helper()
	p.run(t, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "pyvhost", name)
	return fmt.Sprintf("postgres://pyvhost@127.0.0.1:%d/%s", p.port, name)
}

// stop stops the postmaster by the pid in its pid file, and waits for it.
func (p *postgres) stop(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(p.data, "postmaster.pid"))
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if pid <= 0 || syscall.Kill(pid, syscall.SIGINT) != nil { // SIGINT: fast shutdown
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("PostgreSQL (pid %d) did not stop", pid)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
