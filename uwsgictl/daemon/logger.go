package daemon

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// logger writes the daemon's events and the workers' lines (which arrive
// on a pipe) to one destination: a file that SIGUSR1 reopens, or stderr.
type logger struct {
	mu   sync.Mutex
	path string
	out  io.Writer
	file *os.File

	pipeR, pipeW *os.File // workers' stdout/stderr
}

func newLogger(path string) (*logger, error) {
	l := &logger{path: path, out: os.Stderr}
	if err := l.reopen(); err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("log pipe: %w", err)
	}
	l.pipeR, l.pipeW = r, w
	// Room for the lines that arrive while copyPipe waits between batches,
	// so a worker never blocks on its log line (the default is 64 KB).
	_, _ = unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	go l.copyPipe()
	return l, nil
}

// reopen (re)opens the log file, for log rotation; mode 0640, never
// world-readable or writable.
func (l *logger) reopen() error {
	if l.path == "" {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log %s: %w", l.path, err)
	}
	_ = f.Chmod(0o640)
	l.mu.Lock()
	old := l.file
	l.file, l.out = f, f
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// logBatchDelay is how long copyPipe lets the workers' lines gather after
// copying some: under load, waking the daemon for every request's line
// cost more CPU than the request itself.
const logBatchDelay = 5 * time.Millisecond

// copyPipe copies the workers' lines to the log, in batches: every complete
// line read goes out in one write (each worker writes a line at once, so
// lines do not interleave).
func (l *logger) copyPipe() { copyBatches(l.pipeR, l.write) }

// copyBatches reads lines from r until it ends and hands out every batch
// of complete lines at once, waiting logBatchDelay between batches; what
// is left at the end (a last line without its newline) goes out too.
func copyBatches(r io.Reader, out func([]byte)) {
	buf := make([]byte, 64<<10)
	n := 0
	for {
		m, err := r.Read(buf[n:])
		n += m
		upto := bytes.LastIndexByte(buf[:n], '\n') + 1
		if upto == 0 && n == len(buf) {
			upto = n // one line longer than the buffer: out in pieces
		}
		if err != nil {
			upto = n
		}
		if upto > 0 {
			out(buf[:upto])
			n = copy(buf, buf[upto:n])
		}
		if err != nil {
			return
		}
		time.Sleep(logBatchDelay)
	}
}

// logf writes one daemon event line.
func (l *logger) logf(format string, args ...any) { l.write([]byte(eventLine(format, args...))) }

// eventLine is how a daemon event reads in a log.
func eventLine(format string, args ...any) string {
	return time.Now().Format("2006/01/02 15:04:05") + " [pyvhost] " + fmt.Sprintf(format, args...) + "\n"
}

// write writes lines as they are.
func (l *logger) write(b []byte) {
	l.mu.Lock()
	_, _ = l.out.Write(b)
	l.mu.Unlock()
}

func (l *logger) close() {
	l.pipeW.Close()
	l.pipeR.Close()
	l.mu.Lock()
	if l.file != nil {
		l.file.Close()
	}
	l.mu.Unlock()
}
