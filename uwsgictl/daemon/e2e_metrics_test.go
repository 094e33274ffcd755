package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestMetricsScrapedByPrometheus: a real Prometheus (Debian's), started
// on loopback with a private config and data dir, scrapes the daemon's
// /metrics on the status listener with its bearer token; after known
// traffic (five answers from one app, two 500s from another) a PromQL
// query over Prometheus's HTTP API returns those counts per app and class.
// The control socket serves the same metrics, and no request data or
// secret appears in any of them.
func TestMetricsScrapedByPrometheus(t *testing.T) {
	slow(t)
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Fatal("no prometheus: make test installs Debian's prometheus")
	}
	addr := freeAddr(t)
	state := filepath.Join(daemontest.Dir(t), "state")
	ctl := filepath.Join(daemontest.Dir(t), "ctl.sock")
	e, d, _ := unixEnv(t, []string{"--status-http", addr, "--state-dir", state, "--ctl", ctl}, "hello", "errors")
	for i := 0; i < 5; i++ {
		e.get(t, "hello.test", "/?token=SECRET-QUERY")
	}
	for i := 0; i < 2; i++ {
		e.get(t, "errors.test", "/nostart")
	}
	token, err := os.ReadFile(filepath.Join(state, "status-token"))
	if err != nil {
		t.Fatal(err)
	}
	promAddr := startPrometheus(t, addr, strings.TrimSpace(string(token)))

	// The apps are named by their site's first server_name.
	want := map[string]string{`pyvhost_app_requests_total{app="hello.test",class="2xx"}`: "5",
		`pyvhost_app_requests_total{app="errors.test",class="5xx"}`:    "2",
		`pyvhost_app_request_duration_seconds_count{app="hello.test"}`: "5"}
	for q, v := range want {
		eventually(t, 30*time.Second, func() bool { return promQuery(t, promAddr, q) == v })
	}

	// The same metrics on the control socket, without a token (its mode is the check).
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", ctl)
	}}}
	resp, err := c.Get("http://ctl/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `pyvhost_app_requests_total{app="hello.test",class="2xx"} 5`) {
		t.Errorf("the control socket's /metrics:\n%s", body)
	}
	if strings.Contains(string(body), "SECRET") || strings.Contains(string(body), "token") {
		t.Errorf("request data in the metrics:\n%s", body)
	}
	if resp, err := http.Get("http://" + addr + "/metrics"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %v %v, want 401", resp, err)
	}
	if t.Failed() {
		t.Log(d.Log())
	}
}

// startPrometheus runs Prometheus scraping target every second with the
// bearer token; it returns Prometheus's own address.
func startPrometheus(t *testing.T, target, token string) string {
	t.Helper()
	dir := daemontest.Dir(t)
	conf := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: pyvhost
    metrics_path: /metrics
    authorization: {credentials: %q}
    static_configs: [{targets: [%q]}]
`, token, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command("prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	logf, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus's log:\n%s", b)
		}
	})
	eventually(t, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

// promQuery is the value of an instant PromQL query's one sample ("" if none).
func promQuery(t *testing.T, addr, q string) string {
	resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Data.Result) != 1 {
		return ""
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return s
}
