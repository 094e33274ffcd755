package daemon

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
	"golang.org/x/sys/unix"
)

// Per-app logs (--app-logs DIR): each app's lines — its request lines, its
// processes' stdout and stderr (tracebacks), and the daemon's events about
// it — go to the daemon's log as ever and to DIR/<app>.log, one file per
// app identity, each line stamped with the time it arrived. A file is
// owned by root and the app's group, mode 0640 (the app's user can read
// its own log, no one else's), rotated by size keeping --app-log-keep old
// ones, and opened per batch of lines, so logrotate may move it at any
// time (SIGUSR1 works too: there is nothing to reopen).
type appLogs struct {
	dir     string
	maxSize int64 // rotate past this many bytes
	keep    int   // rotated files kept: NAME.log.1 … NAME.log.KEEP
	main    *logger

	mu    sync.Mutex
	files map[string]*appLogFile // path -> its lock and owner
}

type appLogFile struct {
	mu  sync.Mutex
	gid int // the app's group, once a generation started (-1 before)
}

func newAppLogs(dir string, maxMB, keep int, main *logger) (*appLogs, error) {
	if dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("app logs: %w", err)
	}
	return &appLogs{dir: dir, maxSize: int64(maxMB) << 20, keep: keep, main: main, files: map[string]*appLogFile{}}, nil
}

func (l *appLogs) file(k pool.Key, gid int) (string, *appLogFile) {
	path := appconf.LogPath(l.dir, k)
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.files[path]
	if f == nil {
		f = &appLogFile{gid: -1}
		l.files[path] = f
	}
	if gid >= 0 {
		f.gid = gid
	}
	return path, f
}

// output is pool.Config.OutputFor: a pipe whose write end becomes a new
// generation's stdout and stderr; its lines go to the daemon's log and to
// the app's own until every process holding it has exited.
func (l *appLogs) output(a *pool.App, uid, gid int) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("app log pipe: %w", err)
	}
	_, _ = unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 1<<20) // as the daemon's own pipe: a worker never waits on its log
	path, f := l.file(a.Key, gid)
	go l.copy(r, path, f)
	return w, nil
}

// copy is logger.copyPipe for one generation, writing every batch twice.
func (l *appLogs) copy(r *os.File, path string, f *appLogFile) {
	defer r.Close()
	copyBatches(r, func(b []byte) {
		l.main.write(b)
		l.append(path, f, stamp(b))
	})
}

// event writes one of the daemon's lines about app k to its log.
func (l *appLogs) event(k pool.Key, line string) {
	if l == nil {
		return
	}
	path, f := l.file(k, -1)
	l.append(path, f, stamp([]byte(line)))
}

// stamp puts the time before every line of b (which ends in a newline,
// unless a line was longer than the buffer).
func stamp(b []byte) []byte {
	ts := time.Now().UTC().Format("2006-01-02T15:04:05.000Z") + " "
	var out bytes.Buffer
	out.Grow(len(b) + 32*bytes.Count(b, []byte{'\n'}))
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			i = len(b) - 1
		}
		out.WriteString(ts)
		out.Write(b[:i+1])
		b = b[i+1:]
	}
	if out.Len() > 0 && out.Bytes()[out.Len()-1] != '\n' {
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// append adds b to the app's file, rotating it once it is past maxSize.
func (l *appLogs) append(path string, f *appLogFile, b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fd, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		l.main.logf("app log %s: %v", path, err)
		return
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		st = nil
	} else if sys, ok := st.Sys().(*syscall.Stat_t); ok && f.gid >= 0 && int(sys.Gid) != f.gid && os.Geteuid() == 0 {
		_ = fd.Chown(0, f.gid) // root writes, the app's group reads (known once the app first started)
		_ = fd.Chmod(0o640)
	}
	if _, err := fd.Write(b); err != nil {
		l.main.logf("app log %s: %v", path, err)
		return
	}
	if st != nil && st.Size()+int64(len(b)) > l.maxSize {
		l.rotate(path)
	}
}

// rotate shifts NAME.log to NAME.log.1, .1 to .2 …, dropping the oldest.
func (l *appLogs) rotate(path string) {
	_ = os.Remove(fmt.Sprintf("%s.%d", path, l.keep))
	for i := l.keep - 1; i >= 1; i-- {
		_ = os.Rename(fmt.Sprintf("%s.%d", path, i), fmt.Sprintf("%s.%d", path, i+1))
	}
	if l.keep > 0 {
		_ = os.Rename(path, path+".1")
	} else {
		_ = os.Remove(path)
	}
}

// Dir is where the app logs are, "" when off.
func (l *appLogs) Dir() string {
	if l == nil {
		return ""
	}
	return filepath.Clean(l.dir)
}
