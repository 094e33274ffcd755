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

// isPyproject reports whether a requirements file is a pyproject.toml.
func isPyproject(file string) bool { return filepath.Base(file) == "pyproject.toml" }

// pyprojectPy prints a pyproject.toml's [project] dependencies, one a line.
const pyprojectPy = `import sys
try:
    import tomllib
except ImportError:
    sys.exit("reading pyproject.toml needs Python 3.11 or later (tomllib): give the dependencies in a requirements.txt")
with open(sys.argv[1], "rb") as f:
    deps = tomllib.load(f).get("project", {}).get("dependencies", [])
if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
    sys.exit("[project] dependencies in %s is not a list of strings" % sys.argv[1])
print("\n".join(deps))
`

// pyprojectRequirements writes a pyproject.toml's [project] dependencies
// as a requirements file (out) for pip, read with the venv's own Python;
// "" when it lists none.
func pyprojectRequirements(ctx context.Context, r Runner, venv, pyproject, out string) (string, error) {
	stdout, stderr, err := r.Run(ctx, filepath.Join(venv, "bin", "python"), "-c", pyprojectPy, pyproject)
	if err != nil {
		return "", fmt.Errorf("read the dependencies of %s: %s", pyproject, lastLines(string(stderr)+err.Error(), 3))
	}
	if strings.TrimSpace(string(stdout)) == "" {
		return "", nil
	}
	if err := os.WriteFile(out, stdout, 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", out, err)
	}
	return out, nil
}
