// Package nginxproc reads a running nginx from /proc: its master, which of
// its workers still accept connections, and when a reload has taken.
package nginxproc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// nginx applies a reload gradually: the master reads the new config,
// starts new workers, then tells the old ones to shut down gracefully. An
// old worker keeps accepting connections — answering with the old config —
// until it has that message; it then retitles itself "worker process is
// shutting down" and, in the same step, closes its listening sockets
// (ngx_worker_process_cycle), so from its new title on it accepts nothing.
// A change is live for every new connection only once each worker from
// before the reload is retitled or gone.

// procRoot is /proc; tests of the parsing point it elsewhere.
var procRoot = "/proc"

// MasterPID reads an nginx pid file; 0 when there is none or it names no
// running process (nginx is not running: gone, or a zombie — a master
// killed in the background waits for init, which may reap it late, and
// until then its pid is still in /proc).
func MasterPID(pidFile string) int {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !Alive(pid) {
		return 0
	}
	return pid
}

// Alive reports whether process pid runs: it exists and is not a zombie
// (one that has exited and waits for its parent to reap it).
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) == 0 || fields[0] != "Z"
}

// AcceptingWorkers are the master's worker processes that still accept
// connections: its children titled "nginx: worker process", not shutting
// down (cache managers and loaders never accept).
func AcceptingWorkers(master int) []int {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || parentOf(pid) != master {
			continue
		}
		if accepting(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// WaitOldWorkers waits, at most timeout, until none of old (workers of
// master from before a reload) accepts connections any more. An error
// says which still do: the master did not apply the reload.
func WaitOldWorkers(ctx context.Context, master int, old []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var still []string
		for _, pid := range old {
			if parentOf(pid) == master && accepting(pid) {
				still = append(still, strconv.Itoa(pid))
			}
		}
		if len(still) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nginx's workers from before the reload (pid %s) still accept connections %s later: the master did not apply the new config (see nginx's error log)",
				strings.Join(still, ", "), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// parentOf is a process's parent pid from /proc/PID/stat; 0 when it is
// gone. The command name in parentheses may itself hold spaces or ')'.
func parentOf(pid int) int {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:])) // state, ppid, ...
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// accepting reports whether a process is titled as an nginx worker that
// has not begun shutting down.
func accepting(pid int) bool {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	title := strings.TrimRight(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})), " ")
	return strings.HasPrefix(title, "nginx: worker process") && !strings.Contains(title, "shutting down")
}
