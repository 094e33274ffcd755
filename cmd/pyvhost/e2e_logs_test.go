package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// chattyPy prints, raises and answers, so its log has all three kinds.
const chattyPy = `import sys

def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise ValueError("chatty went boom")
    if path == "/print":
        print("chatty says hello on stdout", flush=True)
        print("chatty says hello on stderr", file=sys.stderr, flush=True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"chatty\n"]
`

// TestLogs: pyvhost logs shows one app's request lines (named by the app,
// whatever the Host header), its output and tracebacks, and the daemon's
// events about it, and nothing of another app's; -n, --since, --json and
// -f work; the file is the app's group's to read and no one else's.
func TestLogs(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	a := e.app("chatty", map[string]string{"chatty.py": chattyPy})
	b := e.app("quiet", map[string]string{"quiet.py": helloPy})
	e.deploy("chatty.test", "--alias", "alias.chatty.test", "--app-dir", a, "--module", "chatty", "--venv", venv, "--listen", e.listen)
	e.deploy("quiet.test", "--app-dir", b, "--module", "quiet", "--venv", venv, "--listen", e.listen)
	e.want("alias.chatty.test", "/print", 200, "chatty")
	e.want("quiet.test", "/", 200, "hello")
	if code, _ := e.get("chatty.test", "/boom"); code != 500 {
		t.Fatalf("/boom: %d, want 500", code)
	}
	var out string
	waitFor(t, 10*time.Second, "chatty's log has its traceback", func() bool {
		_, out, _ = e.run("logs", "chatty.test", "-n", "0")
		return strings.Contains(out, "ValueError: chatty went boom")
	})
	for _, want := range []string{"chatty.test [pid: ", "GET /print => generated", "chatty says hello on stdout", "chatty says hello on stderr",
		"[pyvhost] app ", "ready in"} {
		if !strings.Contains(out, want) {
			t.Errorf("pyvhost logs chatty.test lacks %q:\n%s", want, out)
		}
	}
	for _, not := range []string{"alias.chatty.test [pid", "quiet"} {
		if strings.Contains(out, not) {
			t.Errorf("pyvhost logs chatty.test has %q:\n%s", not, out)
		}
	}
	if _, main, _ := e.run("logs", "quiet.test"); strings.Contains(main, "chatty") || !strings.Contains(main, "quiet.test [pid: ") {
		t.Errorf("pyvhost logs quiet.test:\n%s", main)
	}
	if !strings.Contains(e.daemonLog(), "chatty.test [pid: ") {
		t.Error("the daemon's own log lost the request lines")
	}

	if _, two, _ := e.run("logs", "chatty.test", "-n", "2"); strings.Count(two, "\n") != 2 {
		t.Errorf("-n 2 gave:\n%s", two)
	}
	if _, none, _ := e.run("logs", "chatty.test", "--since", "1ns"); none != "" {
		t.Errorf("--since 1ns gave:\n%s", none)
	}
	_, js, _ := e.run("logs", "chatty.test", "-n", "0", "--json")
	kinds := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(js), "\n") {
		var v struct{ Time, App, Kind, Line string }
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.App != "chatty.test" {
			t.Fatalf("--json line %q: %v", l, err)
		}
		if _, err := time.Parse(time.RFC3339, v.Time); err != nil {
			t.Errorf("--json time %q: %v", v.Time, err)
		}
		kinds[v.Kind]++
	}
	if kinds["request"] == 0 || kinds["event"] == 0 || kinds["output"] == 0 {
		t.Errorf("--json kinds: %v, want request, event and output lines", kinds)
	}

	files, _ := filepath.Glob(filepath.Join(e.dir, "applogs", "*.log"))
	_, gid := daemontest.AppOwner()
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != 0o640 || (os.Geteuid() == 0 && (st.Sys().(*syscall.Stat_t).Uid != 0 || int(st.Sys().(*syscall.Stat_t).Gid) != gid)) {
			t.Errorf("%s: %v %v, want root:the app's group, 0640", f, st.Mode(), err)
		}
	}

	// -f prints lines as they come.
	cmd := e.command("logs", "chatty.test", "-f", "-n", "1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	<-lines // the last line so far
	e.want("chatty.test", "/followed", 200, "chatty")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, "GET /followed => generated") {
				return
			}
		case <-deadline:
			t.Fatal("logs -f did not print the new request's line")
		}
	}
}
