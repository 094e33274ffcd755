package daemon

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
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

func (l *logger) copyPipe() {
	r := bufio.NewReaderSize(l.pipeR, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			l.mu.Lock()
			_, _ = l.out.Write(line)
			l.mu.Unlock()
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return
		}
	}
}

// logf writes one daemon event line.
func (l *logger) logf(format string, args ...any) {
	line := time.Now().Format("2006/01/02 15:04:05") + " [pyvhost] " + fmt.Sprintf(format, args...) + "\n"
	l.mu.Lock()
	_, _ = io.WriteString(l.out, line)
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
