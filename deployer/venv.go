package deployer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnsureVenv creates the virtualenv at dir with python unless it exists
// (a dir with bin/python). created says whether this call made it: a
// failed deploy removes only a venv it created.
func EnsureVenv(ctx context.Context, r Runner, python, dir string, systemSitePackages bool) (created bool, err error) {
	if _, err := os.Stat(filepath.Join(dir, "bin", "python")); err == nil {
		return false, nil
	}
	args := []string{"-m", "venv"}
	if systemSitePackages {
		args = append(args, "--system-site-packages")
	}
	if _, stderr, err := r.Run(ctx, python, append(args, dir)...); err != nil {
		return false, fmt.Errorf("create venv %s with %s: %v: %s", dir, python, err, strings.TrimSpace(string(stderr)))
	}
	return true, nil
}

// InstallRequirements runs pip install -r file in the venv. pip's whole
// output goes to logFile; on failure the error quotes its last lines.
func InstallRequirements(ctx context.Context, r Runner, venv, file, logFile string) error {
	stdout, stderr, err := r.Run(ctx, filepath.Join(venv, "bin", "python"), "-m", "pip", "install",
		"--disable-pip-version-check", "--no-input", "-r", file)
	out := append(append([]byte{}, stdout...), stderr...)
	if werr := os.WriteFile(logFile, out, 0o640); werr != nil {
		return fmt.Errorf("write pip log: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("pip install -r %s failed (full output in %s): %s", file, logFile, lastLines(string(out), 5))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
