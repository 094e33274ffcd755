package daemon_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestStatusPage: the dashboard and /status.json behind a token (or
// through the control socket), no secrets in it, and a real headless
// Chromium rendering both apps with live numbers; the screenshot is kept
// in bin/test-artifacts/status-page.png.
func TestStatusPage(t *testing.T) {
	slow(t)
	addr := freeAddr(t)
	state := filepath.Join(daemontest.Dir(t), "state")
	ctl := filepath.Join(daemontest.Dir(t), "run", "ctl.sock")
	e, d, _ := wsgiEnv(t, []string{"--status-http", addr, "--state-dir", state, "--ctl", ctl, "--status-history-step", "200ms"}, "hello", "broken")
	for i := 0; i < 4; i++ {
		req, _ := http.NewRequest("GET", "http://"+e.listen+"/", nil)
		req.Host = "hello.test"
		req.Header.Set("Cookie", "sessionid=SECRET-COOKIE-VALUE")
		req.Header.Set("Authorization", "Basic U0VDUkVU")
		if resp, err := e.client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	e.get(t, "broken.test", "/")

	st, err := os.Stat(filepath.Join(state, "status-token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", err, st)
	}
	b, _ := os.ReadFile(filepath.Join(state, "status-token"))
	token := strings.TrimSpace(string(b))
	if !strings.Contains(d.Log(), "status page: http://"+addr+"/?token="+token) {
		t.Errorf("the token is not printed at start:\n%s", d.Log())
	}
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, u := range []string{"/", "/status.json", "/?token=wrong", "/status.json?token=" + token[:10]} {
		if code, _ := get("http://" + addr + u); code != 401 {
			t.Errorf("%s: %d, want 401", u, code)
		}
	}
	code, js := get("http://" + addr + "/status.json?token=" + token)
	if code != 200 || !strings.Contains(js, `"state":"ready"`) || !strings.Contains(js, `"state":"failed"`) || !strings.Contains(js, "this_module_does_not_exist") {
		t.Fatalf("status.json: %d %s", code, js)
	}
	for _, secret := range []string{"SECRET-COOKIE-VALUE", "U0VDUkVU", "HTTP_COOKIE", "HTTP_AUTHORIZATION"} {
		if strings.Contains(js, secret) || strings.Contains(d.Log(), secret) {
			t.Errorf("%s leaks into the status JSON or the log", secret)
		}
	}
	if out, err := exec.Command("curl", "-s", "--unix-socket", ctl, "http://pyvhost/status/status.json").Output(); err != nil || !strings.Contains(string(out), `"apps"`) {
		t.Errorf("status through the control socket: %v %s", err, out)
	}

	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: make test installs it")
	}
	url := "http://" + addr + "/?token=" + token
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(daemontest.Dir(t), "chromium"), "--virtual-time-budget=3000"}
	dom, err := exec.Command(chromium, append(flags, "--dump-dom", url)...).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	page := string(dom)
	for _, want := range []string{"hello:hello", "broken:broken", `class="ready" data-label="State">ready`, `class="failed" data-label="State">failed`, "ModuleNotFoundError", "pid ",
		" workers max", "no TLS site"} {
		if !strings.Contains(page, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	if !strings.Contains(page, `<td class="num" data-label="Requests">4</td>`) {
		t.Errorf("the rendered page lacks hello's live request count:\n%s", page)
	}
	// The charts have a few samples: the page draws them, and fits a
	// desktop window and a phone's without scrolling sideways.
	eventually(t, 10*time.Second, func() bool {
		_, js := get("http://" + addr + "/status.json?token=" + token)
		var doc struct {
			History map[string]struct{ T []int64 } `json:"history"`
		}
		_ = json.Unmarshal([]byte(js), &doc)
		for _, h := range doc.History {
			if len(h.T) >= 3 {
				return true
			}
		}
		return false
	})
	_, file, _, _ := runtime.Caller(0)
	artifacts := filepath.Join(filepath.Dir(file), "..", "..", "bin", "test-artifacts")
	_ = os.MkdirAll(artifacts, 0o755)
	for _, size := range []string{"1280,800", "390,844"} {
		sized := append(append([]string{}, flags...), "--window-size="+size)
		dom, err := exec.Command(chromium, append(sized, "--dump-dom", url)...).Output()
		if err != nil {
			t.Fatalf("chromium at %s: %v", size, err)
		}
		for _, want := range []string{`data-fits="true"`, "<svg", "<polyline", "requests/s ", `class="dot idle"`} {
			if !strings.Contains(string(dom), want) {
				t.Errorf("at %s px the page lacks %q (data-fits=\"false\": it scrolls sideways)", size, want)
			}
		}
		shot := filepath.Join(artifacts, "status-page-"+strings.Split(size, ",")[0]+".png")
		if out, err := exec.Command(chromium, append(sized, "--hide-scrollbars", "--screenshot="+shot, url)...).CombinedOutput(); err != nil {
			t.Fatalf("screenshot: %v %s", err, out)
		}
		if st, err := os.Stat(shot); err != nil || st.Size() < 10000 {
			t.Fatalf("screenshot %s: %v", shot, err)
		}
		t.Logf("screenshot: %s", shot)
	}
}

// TestStatusPagePublicNeedsFlag: a non-loopback status address is refused
// unless --status-http-public says so.
func TestStatusPagePublicNeedsFlag(t *testing.T) {
	slow(t)
	dir := daemontest.Dir(t)
	sock := freeAddr(t)
	d := daemontest.Start(t, "", "-s", sock, "--vhost-root", dir, "--status-http", "0.0.0.0:0", "--state-dir", filepath.Join(dir, "state"))
	if err, ok := d.Wait(10 * time.Second); !ok || err == nil {
		t.Fatalf("the daemon served a public status page without --status-http-public (%v)", err)
	}
	if !strings.Contains(d.Log(), "pass --status-http-public") {
		t.Fatalf("log: %s", d.Log())
	}
}
