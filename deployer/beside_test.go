package deployer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

// warnOnNewConfig is the real nginx, whose nginx -t of the config a deploy
// wrote says one more warning than of the config before it: what nginx
// can warn about, pyvhost's checks before writing leave little of, so the
// test makes it say one. That verdict comes once live() says the new
// config is served, as a slow test's would on a big box.
type warnOnNewConfig struct {
	tests atomic.Int32
	live  func() error
}

func (w *warnOnNewConfig) Run(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	stdout, stderr, err := ExecRunner{}.Run(ctx, name, args...)
	if len(args) > 0 && args[len(args)-1] == "-t" && w.tests.Add(1) == 2 { // the baseline, then the written config's
		if lerr := w.live(); lerr != nil {
			return nil, []byte(lerr.Error()), lerr
		}
		stderr = append([]byte("nginx: [warn] a warning about the new config, made up by the test\n"), stderr...)
	}
	return stdout, stderr, err
}

type quiet struct{}

func (quiet) Start(Step)                      {}
func (quiet) Done(Step, time.Duration, error) {}

// TestNginxTestBesideTakesAWarnedConfigBack: nginx -t beside the reload
// finds a new warning once the new config is live; the deploy fails, the
// files are put back byte for byte, and nginx serves the old config
// again.
func TestNginxTestBesideTakesAWarnedConfigBack(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nginx")
	}
	dir := t.TempDir()
	for _, d := range []string{"sites-available", "sites-enabled", "static", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "static", "index.html"), []byte("the new site\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", nginxtest.FreePort(t))
	conf := filepath.Join(dir, "nginx.conf")
	other := fmt.Sprintf("server {\n    listen %s default_server;\n    return 200 \"the old config\\n\";\n}\n", listen)
	if err := os.WriteFile(conf, []byte(nginxtest.MainConf(dir, other+"    include sites-enabled/*;")), 0o644); err != nil {
		t.Fatal(err)
	}
	nginxtest.Start(t, conf, listen)
	bin, err := nginxconf.NginxBinary()
	if err != nil {
		t.Fatal(err)
	}
	runner := &warnOnNewConfig{}
	nginx := &Nginx{Runner: runner, Bin: bin, Conf: conf, Prefix: dir, PidFile: nginxconf.PidFile(bin, conf, dir)}
	get := func() string {
		req, _ := http.NewRequest("GET", "http://"+listen+"/static/index.html", nil)
		req.Host = "warn.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	snapshot := func() string {
		var sb strings.Builder
		_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() && strings.HasSuffix(p, ".conf") {
				b, _ := os.ReadFile(p)
				sb.WriteString(p + "\n" + string(b))
			}
			return nil
		})
		return sb.String()
	}
	before := snapshot()
	runner.live = func() error {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if get() == "the new site\n" {
				return nil
			}
		}
		return fmt.Errorf("the new config never went live while nginx -t ran: the reload waited for it")
	}

	d, err := Prepare(context.Background(), Options{
		Spec:      nginxconf.SiteSpec{Domain: "warn.test", Listen: listen, Statics: []nginxconf.StaticSpec{{URL: "/static/", Dir: filepath.Join(dir, "static")}}},
		Runner:    ExecRunner{},
		Nginx:     nginx,
		StateDir:  filepath.Join(dir, "state"),
		NginxTest: "beside",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !testBeside(d.Facts) {
		t.Fatalf("--nginx-test beside: the plan tests first:\n%s", FormatPlan(d.Steps))
	}
	err = d.Apply(context.Background(), quiet{})
	if err == nil || !strings.Contains(err.Error(), "nginx -t warns about the new config") || !strings.Contains(err.Error(), "made up by the test") {
		t.Fatalf("Apply: %v, want the new warning", err)
	}
	if after := snapshot(); after != before {
		t.Errorf("the files are not as they were:\n%s\nwant:\n%s", after, before)
	}
	if got := get(); got != "the old config\n" {
		t.Errorf("after the failed deploy nginx answers %q, want the old config's answer", got)
	}
}
