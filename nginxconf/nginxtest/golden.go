package nginxtest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update is `go test -update` (make golden): rewrite the golden files.
var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// CheckGolden compares got with the golden file at path, or rewrites the
// file with -update.
func CheckGolden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `make golden` to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run `make golden` if the change is intended)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}
