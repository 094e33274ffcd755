package daemon_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

const settingsMarker = "daemon-s3cr3t-4d1e"

// TestAppSettingsByIdentity: the daemon finds an app's own environment and
// pool settings in the state dir by the app's identity (no deploy told it),
// gives them to that app alone, takes changed ones on a reload, refuses a
// settings file that names another app, and never shows a value in its
// stats JSON, status page, control API or log.
func TestAppSettingsByIdentity(t *testing.T) {
	slow(t)
	state := filepath.Join(daemontest.Dir(t), "state")
	venv := daemontest.Venv(t)
	statsAddr, statusAddr := freeAddr(t), freeAddr(t)
	ctl := filepath.Join(daemontest.Dir(t), "ctl.sock")
	// The settings are on disk before the daemon starts: it finds them.
	dir := daemontest.Dir(t)
	echo := daemontest.App(t, dir, "envecho")
	hello := daemontest.App(t, dir, "hello")
	key := pool.Key{Pyhome: venv, Chdir: echo, Script: "envecho"}
	one := 1
	save := func(s appconf.Settings) {
		t.Helper()
		if err := appconf.Save(state, s); err != nil {
			t.Fatal(err)
		}
	}
	save(appconf.Settings{App: key, Env: map[string]string{"APP_SECRET": settingsMarker + "-1"}, Pool: appconf.Pool{Processes: &one}})
	sock := freeAddr(t)
	d := daemontest.Start(t, sock, "-s", sock, "--vhost-root", dir, "--vhost-root", filepath.Dir(venv), "-p", "3",
		"--state-dir", state, "--stats", statsAddr, "--status-http", statusAddr, "--ctl", ctl)
	e := startNginx(t, dir,
		site{"envecho.test", []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: echo, Module: "envecho"}}},
		site{"hello.test", []nginxconf.AppSpec{{Socket: sock, Venv: venv, AppDir: hello, Module: "hello"}}})
	osEnv := func() map[string]string {
		t.Helper()
		code, body := e.get(t, "envecho.test", "/")
		var v struct {
			Env map[string]string `json:"os_environ"`
		}
		if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil {
			t.Fatalf("envecho: %d %v %q\n%s", code, err, body, d.Log())
		}
		return v.Env
	}
	if env := osEnv(); env["APP_SECRET"] != settingsMarker+"-1" || env["HOME"] == "" || env["PATH"] == "" {
		t.Fatalf("the app's environment: %v", env)
	}
	e.get(t, "hello.test", "/")
	c, err := control.Dial(ctl)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := c.Apps()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range apps.Apps {
		switch a.Chdir {
		case echo:
			if a.Processes != 1 || a.EnvVars != 1 || a.Own != "processes=1" {
				t.Errorf("envecho in ctl apps: processes %d, %d env vars, own %q", a.Processes, a.EnvVars, a.Own)
			}
		case hello:
			if a.Processes != 3 || a.EnvVars != 0 || a.Own != "" {
				t.Errorf("hello took envecho's settings: processes %d, %d env vars", a.Processes, a.EnvVars)
			}
		}
	}

	// Changed on disk: in force after a reload of that app.
	save(appconf.Settings{App: key, Env: map[string]string{"APP_SECRET": settingsMarker + "-2"}})
	if _, err := c.Reload(key.ID()); err != nil {
		t.Fatal(err)
	}
	if env := osEnv(); env["APP_SECRET"] != settingsMarker+"-2" {
		t.Errorf("after a reload: %v", env["APP_SECRET"])
	}

	// Nowhere else.
	conn, err := net.DialTimeout("tcp", statsAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	stats, _ := io.ReadAll(conn)
	conn.Close()
	token, _ := os.ReadFile(filepath.Join(state, "status-token"))
	resp, err := http.Get("http://" + statusAddr + "/status.json?token=" + strings.TrimSpace(string(token)))
	if err != nil {
		t.Fatal(err)
	}
	status, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ctlApps, _ := json.Marshal(apps)
	for what, b := range map[string]string{"stats": string(stats), "status.json": string(status), "ctl apps": string(ctlApps), "log": d.Log()} {
		if !strings.Contains(b, "envecho") {
			t.Errorf("%s does not list the app: %.300s", what, b)
		}
		if strings.Contains(b, settingsMarker) {
			t.Errorf("%s shows the secret", what)
		}
	}

	// A settings file copied to another app's name is refused, not used.
	other := pool.Key{Pyhome: venv, Chdir: hello, Script: "hello"}
	b, _ := os.ReadFile(appconf.Path(state, key))
	if err := os.WriteFile(appconf.Path(state, other), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reload(other.ID()); err == nil || !strings.Contains(err.Error(), "names app") {
		t.Errorf("reload with another app's settings file: %v, want a refusal", err)
	}
	if code, body := e.get(t, "hello.test", "/"); code != 200 || strings.Contains(body, settingsMarker) {
		t.Errorf("hello after the refusal: %d %q", code, body)
	}
}
