package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoggerCopiesWorkerLines: the workers' lines reach the log file whole
// and in order: lines written in pieces, many lines in one write, a line
// longer than the copy buffer, and a last line without a newline.
func TestLoggerCopiesWorkerLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.log")
	l, err := newLogger(path)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 200<<10) + "\n"
	writes := []string{"first li", "ne\n", "a\nb\nc\n", long, "tail without newline"}
	for _, w := range writes {
		if _, err := l.pipeW.WriteString(w); err != nil {
			t.Fatal(err)
		}
	}
	l.pipeW.Close()
	want := strings.Join(writes, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := os.ReadFile(path)
		if string(got) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log has %d bytes, want %d (first 80: %q)", len(got), len(want), string(got[:min(80, len(got))]))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("log file mode: %v %v, want 0640", fi.Mode(), err)
	}
	l.mu.Lock()
	l.file.Close()
	l.mu.Unlock()
}
