package templates

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// The worker program that runs one app's zygote and workers for the
// daemon: worker/__main__.py and the pyvhost_worker package beside it.
//
//go:embed worker/__main__.py worker/pyvhost_worker/*.py
var workerFS embed.FS

// WorkerFiles are the worker program's files, by path below worker/, in
// path order.
func WorkerFiles() []SourceFile {
	var files []SourceFile
	err := fs.WalkDir(workerFS, "worker", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := workerFS.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("worker", p)
		files = append(files, SourceFile{rel, data})
		return nil
	})
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files
}

// WorkerHash names this build's worker program: a hash of its files.
func WorkerHash() string {
	h := sha256.New()
	for _, f := range WorkerFiles() {
		fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Data))
		h.Write(f.Data)
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// WriteWorker writes the worker program into dir/worker-HASH (readable by
// every app's user) unless it is there already, and returns the path of
// its __main__.py: `python PATH NAME` runs it. It is written whole under a
// temporary name, then renamed: a daemon never starts a half-written one.
func WriteWorker(dir string) (string, error) {
	final := filepath.Join(dir, "worker-"+WorkerHash())
	main := filepath.Join(final, "__main__.py")
	if _, err := os.Stat(main); err == nil {
		return main, nil
	}
	tmp, err := os.MkdirTemp(dir, ".worker-")
	if err != nil {
		return "", fmt.Errorf("write worker program: %w", err)
	}
	defer os.RemoveAll(tmp) // gone once renamed
	for _, f := range WorkerFiles() {
		p := filepath.Join(tmp, f.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", fmt.Errorf("write worker program: %w", err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return "", fmt.Errorf("write worker program: %w", err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("write worker program: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Stat(main); serr == nil {
			return main, nil // another daemon wrote the same one meanwhile
		}
		return "", fmt.Errorf("write worker program: %w", err)
	}
	return main, nil
}
