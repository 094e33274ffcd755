package main

import (
	"strings"
	"testing"
)

// TestDeployIsLiveWhenItSaysSo: "live" means every new connection sees
// the change. nginx applies a reload gradually (old workers accept for a
// moment), so each command waits for them: 30 requests sent right after a
// deploy that adds an alias, a rollback that removes it, and an undeploy
// all see the new config (it was 7 in 30 answered by the old one). Each
// name of the site is smoke-tested.
func TestDeployIsLiveWhenItSaysSo(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	app := e.app("liveapp", map[string]string{"liveapp.py": helloPy})
	deploy := func(extra ...string) string {
		return e.deploy(append([]string{"live.example.com", "--app-dir", app, "--module", "liveapp", "--python", "/usr/bin/python3",
			"--system-site-packages", "--listen", e.listen}, extra...)...)
	}
	deploy()
	e.wantEach(30, "live.example.com", "/", 200, "hello from live.example.com")

	out := deploy("--alias", "www.live.example.com", "--alias", "*.live.example.org")
	if !strings.Contains(out, "Host: live.example.com, pyvhost-smoke.live.example.org, www.live.example.com") {
		t.Errorf("the deploy should smoke-test every name:\n%s", out)
	}
	e.wantEach(30, "www.live.example.com", "/", 200, "hello from www.live.example.com")
	e.wantEach(30, "a.live.example.org", "/", 200, "hello from a.live.example.org")

	if code, out, errOut := e.run("rollback", "live.example.com", "--yes"); code != 0 {
		t.Fatalf("rollback: %d\n%s\n%s", code, out, errOut)
	}
	e.wantEach(30, "www.live.example.com", "/", 200, "other site") // the alias is gone: the default server answers
	e.wantEach(30, "live.example.com", "/", 200, "hello from live.example.com")

	if code, out, errOut := e.run("undeploy", "live.example.com", "--yes"); code != 0 {
		t.Fatalf("undeploy: %d\n%s\n%s", code, out, errOut)
	}
	e.wantEach(30, "live.example.com", "/", 200, "other site")
	// Its app left the config and was stopped: ctl apps no longer lists it.
	if _, apps, _ := e.run("ctl", "apps", "--json"); strings.Contains(apps, `"chdir": "`+app+`"`) {
		t.Errorf("ctl apps still lists the undeployed app:\n%s", apps)
	}
}
