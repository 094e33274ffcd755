package daemon_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestSpeedupsWithoutCompiler: on a host with no C compiler on PATH (and a
// runtime dir that never held a build), the daemon writes out the C module
// its binary embeds (make build, as the test suites' build, compiles it):
// a WSGI and an ASGI app both run the C request path, the log says so for
// each, and ctl apps has it. With --no-speedups the apps say pure Python.
func TestSpeedupsWithoutCompiler(t *testing.T) {
	slow(t)
	for _, tc := range []struct {
		name, want string
		args       []string
	}{{"prebuilt", "C", nil}, {"off", "python", []string{"--no-speedups"}}} {
		t.Run(tc.name, func(t *testing.T) {
			runtime := daemontest.Dir(t) // never held a build
			ctl := filepath.Join(daemontest.Dir(t), "ctl.sock")
			environ := []string{"PYVHOST_RUNTIME_DIR=" + runtime, "PATH=" + filepath.Join(runtime, "empty")} // no cc, no gcc
			e, d, _ := wsgiEnvWith(t, environ, append([]string{"--ctl", ctl}, tc.args...), "hello")
			if code, body := e.get(t, "hello.test", "/"); code != 200 {
				t.Fatalf("%d %q\n%s", code, body, d.Log())
			}
			if tc.want == "C" {
				d.WaitLog(t, "C speedups: this binary's prebuilt module, written to "+runtime, time.Second)
				d.WaitLog(t, "ready in", 5*time.Second)
				if log := d.Log(); strings.Contains(log, "C speedups not") || !strings.Contains(log, "(C request path)") {
					t.Fatalf("the app did not run the C path:\n%s", log)
				}
			} else {
				d.WaitLog(t, "(pure-Python request path)", 5*time.Second)
			}
			c, err := control.Dial(ctl)
			if err != nil {
				t.Fatal(err)
			}
			apps, err := c.Apps()
			if err != nil || len(apps.Apps) != 1 || apps.Apps[0].RequestPath != tc.want {
				t.Fatalf("ctl apps: %+v %v, want request path %s", apps, err, tc.want)
			}
		})
	}
}
