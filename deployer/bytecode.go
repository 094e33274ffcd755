package deployer

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// clearBytecode removes the app's __pycache__ directories before the
// preflight import. Python trusts a .pyc whose recorded source mtime (in
// whole seconds) and size match the source: code changed within the same
// second at the same size — a checkout followed at once by a deploy —
// would be served stale by the reloaded app. Dot-dirs (the .venv), other
// venvs and node_modules are skipped; the next import writes fresh caches.
func clearBytecode(appDir string) error {
	return filepath.WalkDir(appDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.IsDir() || p == appDir {
			return nil
		}
		name := d.Name()
		switch {
		case name == "__pycache__":
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			return filepath.SkipDir
		case strings.HasPrefix(name, ".") || name == "node_modules":
			return filepath.SkipDir
		}
		if _, err := os.Stat(filepath.Join(p, "pyvenv.cfg")); err == nil {
			return filepath.SkipDir
		}
		return nil
	})
}
