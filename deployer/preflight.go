package deployer

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// preflightPy imports the app the way templates/worker.py's load_app does
// (chdir, the app dir first on sys.path, module[:callable], default
// callable "application") and exits 3 with the traceback on failure.
const preflightPy = `import os, sys, traceback
chdir, script = sys.argv[1], sys.argv[2]
try:
    os.chdir(chdir)
    sys.path.insert(0, chdir)
    module, _, name = script.partition(":")
    mod = __import__(module)
    for part in module.split(".")[1:]:
        mod = getattr(mod, part)
    app = getattr(mod, name or "application", None)
    if app is None:
        raise AttributeError("module %r has no callable %r" % (module, name or "application"))
    if not callable(app):
        raise TypeError("%s:%s is not callable" % (module, name or "application"))
except BaseException:
    traceback.print_exc()
    sys.exit(3)
`

// PreflightError is an app that will not import; Traceback is Python's.
type PreflightError struct {
	Script, Traceback string
}

func (e *PreflightError) Error() string {
	lines := strings.Split(strings.TrimSpace(e.Traceback), "\n")
	return fmt.Sprintf("%s does not import: %s", e.Script, lines[len(lines)-1])
}

// Preflight imports the app in its venv, as the daemon will, before nginx
// is touched. python is the venv's interpreter (or --python without one);
// asUser, when set, is the user the daemon will run the app as (we are
// root then), so a file that user cannot read fails here too.
func Preflight(ctx context.Context, r Runner, python, appDir, script, asUser string) error {
	name, args := python, []string{"-c", preflightPy, appDir, script}
	if asUser != "" {
		name, args = "runuser", append([]string{"-u", asUser, "--", python}, args...)
	}
	_, stderr, err := r.Run(ctx, name, args...)
	if err != nil {
		if len(stderr) == 0 {
			return fmt.Errorf("preflight import of %s with %s: %w", script, python, err)
		}
		return &PreflightError{Script: script, Traceback: string(stderr)}
	}
	return nil
}

// VenvPython is a venv's interpreter.
func VenvPython(venv string) string { return filepath.Join(venv, "bin", "python") }
