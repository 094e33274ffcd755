package deployer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

// countingRunner runs commands and counts them.
type countingRunner struct{ n int }

func (r *countingRunner) Run(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	r.n++
	return ExecRunner{}.Run(ctx, name, args...)
}

// A baseline `nginx -t` of files whose own test (TestNew) passed lately is
// remembered, not run; a baseline run, changed files, an old memo or a
// failed test are not.
func TestNginxTestMemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nginx")
	}
	ctx := context.Background()
	port := nginxtest.FreePort(t)
	n := privateNginx(t, fmt.Sprintf("server { listen 127.0.0.1:%d; server_name a.test; }", port))
	runs := &countingRunner{}
	n.Runner, n.Memo = runs, filepath.Join(t.TempDir(), "nginx-test.json")
	test := func() TestResult {
		t.Helper()
		tree, err := nginxconf.Load(n.Conf)
		if err != nil {
			t.Fatal(err)
		}
		r, err := n.TestTree(ctx, tree)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	steps := []struct {
		name   string
		change func()
		runs   int // nginx -t runs after the step
		ok     bool
	}{
		{"first", func() {}, 1, true},
		{"a baseline is not remembered", func() {}, 2, true},
		{"a new config passed its own test", func() {
			appendTo(t, n.Conf, "# another\n")
			if r, err := n.TestNew(ctx); err != nil || !r.OK {
				t.Fatalf("TestNew: %+v %v", r, err)
			}
		}, 3, true},
		{"the baseline of that config", func() {}, 3, true},
		{"and again", func() {}, 3, true},
		{"a file changed", func() { appendTo(t, n.Conf, "# a comment\n") }, 4, true},
		{"a new config, its memo old", func() {
			appendTo(t, n.Conf, "# more\n")
			if _, err := n.TestNew(ctx); err != nil {
				t.Fatal(err)
			}
			ageMemo(t, n.Memo, memoFor+time.Minute)
		}, 6, true},
		{"a config nginx rejects, tested new", func() {
			appendTo(t, n.Conf, "no_such_directive on;\n")
			if r, _ := n.TestNew(ctx); r.OK {
				t.Fatal("nginx passed an unknown directive")
			}
		}, 8, false},
	}
	for _, s := range steps {
		s.change()
		if r := test(); r.OK != s.ok {
			t.Errorf("%s: OK %v, want %v (%v)", s.name, r.OK, s.ok, r.Errors)
		}
		if runs.n != s.runs {
			t.Errorf("%s: nginx -t ran %d times in all, want %d", s.name, runs.n, s.runs)
		}
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func ageMemo(t *testing.T, path string, by time.Duration) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var entries []memoEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatal(err)
	}
	for i := range entries {
		entries[i].At = entries[i].At.Add(-by)
	}
	if b, err = json.Marshal(entries); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
