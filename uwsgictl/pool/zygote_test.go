package pool

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestStartError: an interpreter the app's user may not run is named with
// the user and the path the venv's symlink leads to; other errors pass on.
func TestStartError(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "private", "python3.12")
	if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	venvPy := filepath.Join(dir, "venv", "bin", "python")
	if err := os.MkdirAll(filepath.Dir(venvPy), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, venvPy); err != nil {
		t.Fatal(err)
	}
	denied := &fs.PathError{Op: "fork/exec", Path: venvPy, Err: syscall.EACCES}
	tests := []struct {
		name string
		cred *syscall.Credential
		err  error
		want []string
	}{
		{"denied", &syscall.Credential{Uid: 0}, denied, []string{"the app's user root may not run it", "it is " + real, "searchable by root", "permission denied"}},
		{"denied, no setuid", nil, denied, []string{"may not run it", "it is " + real}},
		{"missing", &syscall.Credential{Uid: 0}, &fs.PathError{Op: "fork/exec", Path: venvPy, Err: syscall.ENOENT}, []string{"start " + venvPy + ": fork/exec"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := startError(venvPy, tc.cred, tc.err)
			if !errors.Is(err, tc.err.(*fs.PathError).Err) {
				t.Errorf("%v does not wrap %v", err, tc.err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}
