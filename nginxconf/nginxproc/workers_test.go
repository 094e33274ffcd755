package nginxproc

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeProc writes a /proc with the given processes: pid -> stat line's
// command name, parent pid and title.
type proc struct {
	comm   string
	ppid   int
	title  string
	zombie bool // exited, not yet reaped
}

func fakeProc(t *testing.T, procs map[int]proc) {
	t.Helper()
	root := t.TempDir()
	for pid, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		state := "S"
		if p.zombie {
			state = "Z"
		}
		stat := strconv.Itoa(pid) + " (" + p.comm + ") " + state + " " + strconv.Itoa(p.ppid) + " 1 1 0 -1 4194560 0 0\n"
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		// nginx sets its title over argv: the rest of the area is NULs.
		cmdline := p.title + strings.Repeat("\x00", 12)
		if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(cmdline), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
}

func TestAcceptingWorkers(t *testing.T) {
	fakeProc(t, map[int]proc{
		100: {comm: "nginx", ppid: 1, title: "nginx: master process /usr/sbin/nginx -g daemon on;"},
		101: {comm: "nginx", ppid: 100, title: "nginx: worker process"},
		102: {comm: "nginx", ppid: 100, title: "nginx: worker process is shutting down"},
		103: {comm: "nginx", ppid: 100, title: "nginx: cache manager process"},
		104: {comm: "nginx", ppid: 100, title: "nginx: worker process"},
		200: {comm: "nginx", ppid: 1, title: "nginx: master process nginx -c /tmp/x.conf"},
		201: {comm: "nginx", ppid: 200, title: "nginx: worker process"}, // another nginx's
		300: {comm: "odd) name (x", ppid: 100, title: "nginx: worker process"},
	})
	got := AcceptingWorkers(100)
	want := map[int]bool{101: true, 104: true, 300: true}
	if len(got) != len(want) {
		t.Fatalf("AcceptingWorkers(100) = %v, want the pids %v", got, want)
	}
	for _, p := range got {
		if !want[p] {
			t.Fatalf("AcceptingWorkers(100) = %v, want the pids %v", got, want)
		}
	}
}

func TestMasterPID(t *testing.T) {
	// 200: a master killed in the background, not yet reaped by init.
	fakeProc(t, map[int]proc{100: {comm: "nginx", ppid: 1, title: "nginx: master process"}, 200: {comm: "nginx", ppid: 1, zombie: true}})
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		want    int
	}{{"100\n", 100}, {"  100  ", 100}, {"999\n", 0}, {"200\n", 0}, {"", 0}, {"x", 0}, {"-1", 0}} {
		f := filepath.Join(dir, "nginx.pid")
		if err := os.WriteFile(f, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := MasterPID(f); got != tc.want {
			t.Errorf("pid file %q: MasterPID = %d, want %d", tc.content, got, tc.want)
		}
	}
	if got := MasterPID(filepath.Join(dir, "missing.pid")); got != 0 {
		t.Errorf("no pid file: MasterPID = %d, want 0", got)
	}
}

func TestWaitOldWorkers(t *testing.T) {
	ctx := context.Background()
	fakeProc(t, map[int]proc{
		100: {comm: "nginx", ppid: 1, title: "nginx: master process"},
		101: {comm: "nginx", ppid: 100, title: "nginx: worker process is shutting down"},
		102: {comm: "nginx", ppid: 100, title: "nginx: worker process"},
		103: {comm: "sleep", ppid: 77, title: "sleep 100"}, // a reused pid: not the old worker
	})
	// 104 has exited; 103 is someone else now; 101 is shutting down.
	if err := WaitOldWorkers(ctx, 100, []int{101, 103, 104}, time.Second); err != nil {
		t.Fatalf("no old worker accepts: %v", err)
	}
	err := WaitOldWorkers(ctx, 100, []int{101, 102}, 30*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "(pid 102) still accept") {
		t.Fatalf("102 still accepts: %v, want an error naming it", err)
	}
}
