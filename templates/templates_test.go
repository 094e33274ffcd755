package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWorkerFiles: the worker program holds its entry point, the package,
// and the one definition of load_app_from (the preflight's too); its hash
// names its files' contents.
func TestWorkerFiles(t *testing.T) {
	got := map[string]string{}
	for _, f := range WorkerFiles() {
		got[f.Name] = string(f.Data)
	}
	for _, name := range []string{"__main__.py", "pyvhost_worker/__init__.py", "pyvhost_worker/zygote.py", "pyvhost_worker/loadapp.py"} {
		if got[name] == "" {
			t.Errorf("the worker program lacks %s (has %d files)", name, len(got))
		}
	}
	if !strings.Contains(got["pyvhost_worker/loadapp.py"], "def load_app_from(chdir, script):") || got["pyvhost_worker/loadapp.py"] != LoadAppPy {
		t.Error("loadapp.py is not the preflight's load_app_from")
	}
	if h := WorkerHash(); len(h) != 12 || h != WorkerHash() {
		t.Errorf("WorkerHash() = %q, want 12 stable hex digits", h)
	}
}

// TestWriteWorker: the program is written once per hash, readable by
// every user, and found again without a rewrite.
func TestWriteWorker(t *testing.T) {
	dir := t.TempDir()
	main, err := WriteWorker(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "worker-"+WorkerHash(), "__main__.py"); main != want {
		t.Fatalf("WriteWorker = %s, want %s", main, want)
	}
	for _, f := range WorkerFiles() {
		p := filepath.Join(filepath.Dir(main), f.Name)
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v %v, want 0644", p, st, err)
		}
	}
	if st, err := os.Stat(filepath.Dir(main)); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("the worker's dir: %v %v, want 0755", st, err)
	}
	if again, err := WriteWorker(dir); err != nil || again != main {
		t.Errorf("a second WriteWorker = %s, %v", again, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".worker-*")); len(left) != 0 {
		t.Errorf("temporary dirs left: %v", left)
	}
}
