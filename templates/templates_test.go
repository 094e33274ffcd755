package templates

import (
	"strings"
	"testing"
)

// TestWorkerHasTheLoader: the worker program the daemon writes holds the
// one definition of load_app_from (spliced from loadapp.py), not the marker.
func TestWorkerHasTheLoader(t *testing.T) {
	if !strings.Contains(WorkerPy, "def load_app_from(chdir, script):") || strings.Contains(WorkerPy, "@LOADAPP@") {
		t.Fatal("worker.py's @LOADAPP@ marker was not replaced by loadapp.py")
	}
}
