package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestDeployFailuresLeaveEverythingAsItWas: each way a deploy can fail,
// on a machine with a live site and a running daemon. After each, nginx's
// files are byte for byte as before, no journal is left, both existing
// sites still answer, a venv the deploy did not create is still there and
// one it created is gone.
func TestDeployFailuresLeaveEverythingAsItWas(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	good := e.app("good", map[string]string{"good.py": helloPy})
	e.deploy("good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--listen", e.listen)
	longName := strings.Repeat("a", 60) + ".example.com" // longer than nginx's server_names_hash_bucket_size (64)
	rootOwned := filepath.Join(e.dir, "apps", "rootowned")
	if err := os.MkdirAll(rootOwned, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(rootOwned, "rootowned.py"), helloPy)

	// The same config at another path: nginx accepts it, but the running
	// daemon would never see a site deployed there.
	otherConf := filepath.Join(t.TempDir(), "nginx.conf")
	conf, err := os.ReadFile(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	write(t, otherConf, strings.ReplaceAll(string(conf), "include sites-enabled/*;", "include "+filepath.Join(e.dir, "sites-enabled")+"/*;"))
	params, err := os.ReadFile(filepath.Join(e.dir, "uwsgi_params"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(filepath.Dir(otherConf), "uwsgi_params"), string(params))
	cases := []struct {
		name    string
		files   map[string]string // the app's files; nil: no app dir of its own
		args    []string          // after DOMAIN; --app-dir is added when files is set
		code    int
		stderr  []string
		newVenv string // a venv this deploy creates, which must be gone after
	}{
		{name: "syntax error", files: map[string]string{"bad.py": "def application(:\n"},
			args: []string{"--module", "bad", "--venv", venv}, code: 1,
			stderr: []string{`step "preflight" failed`, "SyntaxError", `File "` + filepath.Join(e.dir, "apps", "syntax-error", "bad.py")}},
		{name: "missing callable", files: map[string]string{"nocall.py": "app = None\n"},
			args: []string{"--module", "nocall:app", "--venv", venv}, code: 1,
			stderr: []string{`step "preflight" failed`, "no callable 'app' in nocall"}},
		{name: "missing module", files: map[string]string{"other.py": helloPy},
			args: []string{"--module", "absent", "--venv", venv}, code: 1,
			stderr: []string{`step "preflight" failed`, "No module named 'absent'"}},
		{name: "requirements fail", files: map[string]string{"req.py": helloPy, "requirements.txt": "--no-index\nno-such-package-pyvhost==9.9\n"},
			args: []string{"--module", "req", "--venv", filepath.Join(e.dir, "reqvenv"), "--python", "/usr/bin/python3"}, code: 1,
			stderr: []string{`step "requirements" failed`, "no-such-package-pyvhost", "pip.log"}, newVenv: filepath.Join(e.dir, "reqvenv")},
		{name: "nginx -t fails", files: map[string]string{"long.py": helloPy},
			args: []string{"--module", "long", "--venv", venv, "--alias", longName}, code: 1,
			stderr: []string{`step "nginx-test" failed`, "server_names_hash_bucket_size"}},
		{name: "smoke test fails", files: map[string]string{"err500.py": "def application(e, start_response):\n    start_response('500 Internal Server Error', [])\n    return [b'broken']\n"},
			args: []string{"--module", "err500", "--venv", venv}, code: 1,
			stderr: []string{`step "smoke" failed`, "500"}},
		{name: "conflicting domain", files: map[string]string{"conflict.py": helloPy},
			args: []string{"--module", "conflict", "--venv", venv}, code: 1,
			stderr: []string{"other.test is already served on", "by a server block pyvhost does not own"}},
		{name: "invalid domain", files: map[string]string{"x.py": helloPy},
			args: []string{"--module", "x", "--venv", venv}, code: 2,
			stderr: []string{"domain"}},
		{name: "new app dir without code", args: []string{"--app-dir", filepath.Join(e.dir, "apps", "new", "empty"), "--module", "absent", "--venv", venv}, code: 1,
			stderr: []string{`step "preflight" failed`, "No module named 'absent'"}},
		{name: "socket the daemon does not serve", files: map[string]string{"sock.py": helloPy},
			args: []string{"--module", "sock", "--venv", venv, "--socket", "127.0.0.1:9"}, code: 1,
			stderr: []string{"does not serve --socket 127.0.0.1:9", "restart it with -s 127.0.0.1:9"}},
		{name: "other nginx config", files: map[string]string{"other.py": helloPy},
			args: []string{"--module", "other", "--venv", venv, "--nginx-conf", otherConf}, code: 1,
			stderr: []string{"reads its apps from " + e.conf}},
		{name: "root-owned app dir", args: []string{"--app-dir", rootOwned, "--module", "rootowned", "--venv", venv}, code: 1,
			stderr: []string{"is owned by root", "--user"}},
		{name: "static dir missing", files: map[string]string{"st.py": helloPy},
			args: []string{"--module", "st", "--venv", venv, "--static", "/static/=" + filepath.Join(e.dir, "no-such-dir")}, code: 2,
			stderr: []string{"no-such-dir does not exist (create it with the files to serve"}},
	}
	domains := map[string]string{"conflicting domain": "other.test", "invalid domain": "bad_domain;.test"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "root-owned app dir" {
				daemontest.NeedRoot(t, "only root drops apps to their dir's owner")
			}
			domain := domains[tc.name]
			if domain == "" {
				domain = strings.ReplaceAll(tc.name, " ", "-") + ".test"
			}
			args := append([]string{"deploy", domain, "--listen", e.listen, "--yes"}, tc.args...)
			if tc.files != nil {
				args = append(args, "--app-dir", e.app(strings.ReplaceAll(tc.name, " ", "-"), tc.files))
			}
			before := e.snapshot(false)
			code, out, errOut := e.run(args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tc.code, out, errOut)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
			e.unchanged(before, false, "the failed deploy")
			if _, err := os.Stat(filepath.Join(e.state, "nginx-transaction.json")); !os.IsNotExist(err) {
				t.Errorf("a journal was left behind: %v", err)
			}
			if _, err := os.Stat(venv); err != nil {
				t.Errorf("the venv the deploy did not create is gone: %v", err)
			}
			if tc.newVenv != "" {
				if _, err := os.Stat(tc.newVenv); !os.IsNotExist(err) {
					t.Errorf("the venv the failed deploy created is still there: %v", err)
				}
			}
			if _, err := os.Stat(filepath.Join(e.dir, "apps", "new")); !os.IsNotExist(err) {
				t.Errorf("the app dir a failed deploy created is still there: %v", err)
			}
			if _, err := os.Stat(filepath.Join(e.socks, domain+".sock")); !os.IsNotExist(err) {
				t.Errorf("the failed site's socket is still there: %v", err)
			}
			e.want("good.test", "/", 200, "hello from good.test")
			e.want("other.test", "/", 200, "other site")
			e.want(domain, "/", 200, "other site") // the failed site is not routed
		})
	}
	// The app the smoke test rejected does not keep running in the daemon.
	c, err := control.Dial(e.ctl)
	if err != nil {
		t.Fatal(err)
	}
	apps, _ := c.Apps()
	for _, a := range apps.Apps {
		if a.Script == "err500" && (a.State == "ready" || a.State == "starting") {
			t.Errorf("the rejected app still runs: %+v", a)
		}
	}
}

// TestDeployStartsNginxAndRefusesABrokenConfig: with nginx not running,
// deploy starts it (and the daemon); with a main config that already
// fails `nginx -t`, deploy refuses and changes nothing.
func TestDeployStartsNginxAndRefusesABrokenConfig(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, false)
	app := e.app("first", map[string]string{"first.py": helloPy})
	out := e.deploy("first.test", "--app-dir", app, "--module", "first", "--venv", daemontest.Venv(t), "--listen", e.listen)
	if !strings.Contains(out, "start the daemon") {
		t.Errorf("deploy did not start the daemon:\n%s", out)
	}
	e.want("first.test", "/", 200, "hello from first.test")

	// An app dir that does not exist yet is created, owned by the app's
	// user (www-data as root); the module may come from the venv alone.
	fresh := filepath.Join(e.dir, "apps", "fresh")
	e.deploy("fresh.test", "--app-dir", fresh, "--module", "wsgiref.simple_server:demo_app", "--venv", daemontest.Venv(t), "--listen", e.listen)
	e.want("fresh.test", "/", 200, "Hello world!")
	if os.Geteuid() == 0 {
		if o, err := os.Stat(fresh); err != nil || o.Sys().(*syscall.Stat_t).Uid != 33 {
			t.Fatalf("the new app dir should belong to www-data (uid 33): %v", err)
		}
	}

	write(t, filepath.Join(e.dir, "sites-enabled", "zz-broken.conf"), "server { listen 1.2.3.4:80; bogus_directive on; }\n")
	before := e.snapshot(false)
	second := e.app("second", map[string]string{"second.py": helloPy})
	code, _, errOut := e.run("deploy", "second.test", "--app-dir", second, "--module", "second", "--venv", daemontest.Venv(t), "--listen", e.listen, "--yes")
	if code != 1 || !strings.Contains(errOut, "already fails `nginx -t`") || !strings.Contains(errOut, "bogus_directive") {
		t.Fatalf("deploy on a broken config: %d %s", code, errOut)
	}
	e.unchanged(before, false, "the failed deploy")
	e.want("first.test", "/", 200, "hello from first.test")
}

// TestDeployDaemonCannotStart: the shared port the site asks for is taken
// by another program, so the daemon deploy starts cannot bind it: the
// deploy fails at that step, puts the files back, and leaves no daemon.
func TestDeployDaemonCannotStart(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	app := e.app("app", map[string]string{"app.py": helloPy})
	before := e.snapshot(false)
	code, out, errOut := e.run("deploy", "app.test", "--app-dir", app, "--module", "app", "--venv", daemontest.Venv(t),
		"--socket", taken.Addr().String(), "--listen", e.listen, "--yes")
	if code != 1 || !strings.Contains(errOut, `step "daemon" failed`) || !strings.Contains(errOut, "address already in use") {
		t.Fatalf("deploy with the port taken: %d\n%s\n%s", code, out, errOut)
	}
	e.unchanged(before, false, "the failed deploy")
	if _, err := control.Dial(e.ctl); err == nil {
		t.Fatal("a daemon answers after the failed start")
	}
	e.want("other.test", "/", 200, "other site")
}

// TestDeployLockAndCrashRepair: a deploy killed between writing nginx's
// files and finishing leaves its journal; a second deploy meanwhile is
// refused by the lock; the next run after the crash puts the files back
// as they were before the killed deploy and reloads nginx.
func TestDeployLockAndCrashRepair(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	good := e.app("good", map[string]string{"good.py": helloPy})
	e.deploy("good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--listen", e.listen)
	// Imports at once in the preflight (python -c), slowly in the daemon:
	// the deploy is then waiting for the daemon with the files written.
	slow := e.app("slow", map[string]string{"slow.py": "import sys, time\nif sys.argv[0] != '-c':\n    time.sleep(4)\n" + helloPy})
	before := e.snapshot(false)

	first := e.command("deploy", "slow.test", "--app-dir", slow, "--module", "slow", "--venv", venv, "--listen", e.listen, "--yes")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(e.state, "nginx-transaction.json")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(journal); err == nil {
			break
		}
		if time.Now().After(deadline) {
			first.Process.Kill()
			t.Fatal("the first deploy never wrote its journal")
		}
		time.Sleep(10 * time.Millisecond)
	}

	code, _, errOut := e.run("deploy", "good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--yes")
	if code != 1 || !strings.Contains(errOut, "another deploy is running (pid") {
		t.Fatalf("a second deploy during the first: %d %s", code, errOut)
	}

	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	if after := e.snapshot(false); after == before {
		t.Fatal("the killed deploy had not written its files yet: the test proves nothing")
	}
	// Commands that only read the config warn that it may be half a change.
	for _, args := range [][]string{{"sites"}, {"deploy", "good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--dry-run"},
		{"rollback", "good.test", "--list"}, {"ctl", "status"}} {
		if _, _, errOut := e.run(args...); !strings.Contains(errOut, "warning: an unfinished change to nginx's files is recorded in "+journal) {
			t.Errorf("%s after the crash: stderr %q, want a warning naming the journal", args[0], errOut)
		}
	}
	code, out, errOut := e.run("deploy", "good.test", "--app-dir", good, "--module", "good", "--venv", venv, "--yes")
	if code != 0 || !strings.Contains(errOut, "repaired: an earlier change to nginx's files was left unfinished") {
		t.Fatalf("the run after the crash: %d\n%s\n%s", code, out, errOut)
	}
	if after := e.snapshot(false); after != before {
		t.Fatalf("not repaired:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	e.want("good.test", "/", 200, "hello from good.test")
	e.want("slow.test", "/", 200, "other site")
	if _, _, errOut := e.run("sites"); strings.Contains(errOut, "warning") {
		t.Errorf("sites after the repair still warns: %s", errOut)
	}
}
