package deployer

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pyvhost/pyvhost/templates"
)

// preflightPy imports the app with the worker's own load_app_from
// (templates/worker/pyvhost_worker/loadapp.py: a factory is called too),
// checks it is what --interface says, runs an ASGI app's lifespan startup
// and shutdown once, and exits 3 with the traceback on failure.
var preflightPy = templates.LoadAppPy + templates.TracebacksPy + `
import sys
try:
    app = load_app_from(sys.argv[1], sys.argv[2])
    if check_interface(app, sys.argv[2], sys.argv[3]) == "asgi":
        probe_lifespan(app)
except LifespanFailed as e:
    sys.stderr.write("lifespan startup failed:\n%s\n" % str(e).strip())
    sys.exit(3)
except BaseException:
    sys.stderr.write(user_traceback())
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
// is touched: in the app's context (ac: as the user the daemon will run it
// as, so a file that user cannot read fails here too, and with its
// environment, which a settings module reads at import). python is the
// venv's interpreter (or --python without one); iface is --interface ("":
// what the app is).
func Preflight(ctx context.Context, ac AppContext, python, script, iface string) error {
	cmd, err := ac.Command(ctx, python, "-c", preflightPy, ac.Dir, script, iface)
	if err != nil {
		return err
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err = cmd.Run(); err != nil {
		stderr := errb.Bytes()
		if len(stderr) == 0 {
			return fmt.Errorf("preflight import of %s with %s: %w", script, python, err)
		}
		return &PreflightError{Script: script, Traceback: string(stderr)}
	}
	return nil
}

// VenvPython is a venv's interpreter.
func VenvPython(venv string) string { return filepath.Join(venv, "bin", "python") }
