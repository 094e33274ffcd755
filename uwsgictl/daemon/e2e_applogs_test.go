package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// TestAppLogRotation: an app's own log (--app-logs) is rotated by size,
// keeping --app-log-keep old files; a log moved away (logrotate) is
// followed by a new file at once, and SIGUSR1 changes nothing about that.
func TestAppLogRotation(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	venv := daemontest.Venv(t)
	app := daemontest.App(t, dir, "chatter")
	logs := filepath.Join(dir, "applogs")
	sock := freeAddr(t)
	d := daemontest.Start(t, sock, "-s", sock, "--vhost", "--vhost-root", dir, "--vhost-root", filepath.Dir(venv),
		"--app-logs", logs, "--app-log-size", "1", "--app-log-keep", "2")
	e := startNginx(t, dir, site{"chatter.test", []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: app, Module: "chatter"}}})
	path := appconf.LogPath(logs, pool.Key{Pyhome: venv, Chdir: app, Script: "chatter"})
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	for i := 0; i < 40 && !exists(path+".2"); i++ {
		if code, _ := e.get(t, "chatter.test", "/?kb=300"); code != 200 {
			t.Fatalf("request %d: %d\n%s", i, code, d.Log())
		}
	}
	// The pipe is drained before anything is checked: a marked request's
	// line comes after all the chatter before it, which could otherwise
	// still be on its way and be rotating the files (seen in CI: .1 was
	// missing for a moment, between two renames).
	contains := func(p, line string) bool {
		b, _ := os.ReadFile(p)
		return strings.Contains(string(b), line)
	}
	e.get(t, "chatter.test", "/?kb=0&mark=drained")
	eventually(t, 10*time.Second, func() bool {
		return contains(path, "GET /?kb=0&mark=drained") || contains(path+".1", "GET /?kb=0&mark=drained") // its line may have rotated the file
	})
	if exists(path + ".3") {
		t.Error("a third rotated log was kept with --app-log-keep 2")
	}
	for _, p := range []string{path + ".1", path + ".2"} {
		if st, err := os.Stat(p); err != nil || st.Size() < 1<<20 || st.Size() > 2<<20 {
			t.Errorf("%s: %v %v, want just over 1 MB", p, st, err)
		}
	}

	// logrotate moves the file away; the next lines go to a new one.
	for i := 0; !exists(path); i++ {
		if i == 100 {
			t.Fatalf("%s was never made again after its rotation", path)
		}
		e.get(t, "chatter.test", "/?kb=0") // a short line cannot rotate it again
	}
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	d.Signal(t, syscall.SIGUSR1)
	e.get(t, "chatter.test", "/?kb=0&after=move")
	deadline := time.Now().Add(10 * time.Second)
	for !contains(path, "GET /?kb=0&after=move") {
		if time.Now().After(deadline) {
			names, _ := filepath.Glob(path + "*")
			t.Fatalf("the line logged after the move is not in the new %s (files: %v)\n%s", path, names, d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if contains(path+".moved", "after=move") {
		t.Error("the moved log got the line logged after the move")
	}
}
