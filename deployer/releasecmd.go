package deployer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
)

// OutputProgress is a Progress that also shows a step's output as it
// comes (a release command's); Apply uses it when the Progress has it.
type OutputProgress interface {
	Progress
	Output(line string)
}

// ReleaseCommandError is a release command that failed: the deploy fails
// and everything else is put back, but what the command itself did (an
// applied migration) stays.
type ReleaseCommandError struct {
	Command string
	Err     error
	Tail    string // its last lines of output
	Log     string // the file with all of it
}

func (e *ReleaseCommandError) Error() string {
	return fmt.Sprintf("release command %q failed: %v (its output is in %s; what the command itself changed, an applied migration say, is not undone)", e.Command, e.Err, e.Log)
}

// releaseLog is where a site's release commands' output is kept.
func releaseLog(stateDir, domain string) string {
	return filepath.Join(stateDir, "logs", nginxconf.FileStem(domain)+"-release.log")
}

// runReleaseCommand runs one release command with sh -c in the app's
// context, its output streamed to the progress and kept in the log.
func (d *Deployment) runReleaseCommand(ctx context.Context, command string) error {
	ac, err := d.appContext()
	if err != nil {
		return err
	}
	cmd, err := ac.Command(ctx, "/bin/sh", "-c", command)
	if err != nil {
		return err
	}
	path := releaseLog(d.opts.StateDir, d.Site.Spec.Domain)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	log, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("release log: %w", err)
	}
	defer log.Close()
	fmt.Fprintf(log, "== %s deploy %s: %s\n", time.Now().UTC().Format(time.RFC3339), d.Site.Spec.Domain, command)
	out := &lineWriter{log: log}
	if op, ok := d.progress.(OutputProgress); ok {
		out.show = op.Output
	}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	out.flush()
	if err != nil {
		fmt.Fprintf(log, "== failed: %v\n", err)
		return &ReleaseCommandError{Command: command, Err: err, Tail: out.tail(), Log: path}
	}
	return nil
}

// lineWriter passes a command's output on line by line: to the log as it
// is, to show (the progress) one line at a time, and keeps the last lines
// for the error.
type lineWriter struct {
	mu   sync.Mutex
	log  *os.File
	show func(string)
	buf  []byte
	last []string
}

const tailLines = 20

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, _ = w.log.Write(p)
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) line(s string) {
	s = strings.TrimRight(s, "\r")
	if w.show != nil {
		w.show(s)
	}
	w.last = append(w.last, s)
	if len(w.last) > tailLines {
		w.last = w.last[1:]
	}
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		_, _ = w.log.Write([]byte("\n"))
		w.buf = nil
	}
}

func (w *lineWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.last, "\n")
}
