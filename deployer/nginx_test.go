package deployer

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

func privateNginx(t *testing.T, servers string) *Nginx {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxtest.MainConf(dir, servers)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &Nginx{Runner: ExecRunner{}, Bin: nginxtest.Binary(t), Conf: conf, Prefix: dir, PidFile: filepath.Join(dir, "nginx.pid")}
}

func TestNginxTestSortsMessages(t *testing.T) {
	ctx := context.Background()
	port := nginxtest.FreePort(t)
	one := fmt.Sprintf("server { listen 127.0.0.1:%d; server_name a.test; }", port)
	n := privateNginx(t, one)
	before, err := n.Test(ctx)
	if err != nil || !before.OK || len(before.Warnings) != 0 {
		t.Fatalf("clean config: %+v %v", before, err)
	}
	// The same name twice on one address passes -t with a warning only.
	dup := privateNginx(t, one+"\n"+one)
	after, err := dup.Test(ctx)
	if err != nil || !after.OK {
		t.Fatalf("duplicate name: %+v %v", after, err)
	}
	nw := NewWarnings(before, after)
	if len(nw) != 1 || !strings.Contains(nw[0], `conflicting server name "a.test"`) {
		t.Fatalf("new warnings %q, want the conflicting server name", nw)
	}
	broken := privateNginx(t, "server { listen 80 }")
	res, err := broken.Test(ctx)
	if err != nil || res.OK || len(res.Errors) == 0 {
		t.Fatalf("broken config: %+v %v", res, err)
	}
}

// TestNginxReloadStartsThenReloads: Reload starts a stopped nginx and
// reloads a running one, which then serves the new configuration.
func TestNginxReloadStartsThenReloads(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nginx")
	}
	ctx := context.Background()
	port := nginxtest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	n := privateNginx(t, fmt.Sprintf("server { listen %s; location / { return 200 'one'; } }", addr))
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(n.Prefix, "nginx.pid")); err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			_ = syscall.Kill(pid, syscall.SIGQUIT)
			for end := time.Now().Add(5 * time.Second); syscall.Kill(pid, 0) == nil && time.Now().Before(end); {
				time.Sleep(10 * time.Millisecond) // until the master is gone
			}
		}
	})
	if err := n.Reload(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	if got := fetch(t, addr); got != "one" {
		t.Fatalf("after start: %q", got)
	}
	// "Live" means the very next connection sees the new config: Reload
	// returns only once the old workers stopped accepting. Alternate the
	// config and check at once, several times (the race was 7 in 30).
	for i := 0; i < 10; i++ {
		want := fmt.Sprintf("v%d", i)
		conf := nginxtest.MainConf(n.Prefix, fmt.Sprintf("server { listen %s; location / { return 200 '%s'; } }", addr, want))
		if err := os.WriteFile(n.Conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := n.Reload(ctx); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		for j := 0; j < 3; j++ {
			if got := fetch(t, addr); got != want {
				t.Fatalf("reload %d: a new connection right after Reload returned got %q, want %q", i, got, want)
			}
		}
	}
}

func fetch(t *testing.T, addr string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
			b := make([]byte, 4096)
			var out []byte
			for {
				n, err := c.Read(b)
				out = append(out, b[:n]...)
				if err != nil {
					break
				}
			}
			c.Close()
			s := string(out)
			if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
				return s[i+4:]
			}
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not answering on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Past a few hundred names nginx cannot build its server-names hash as
// tightly as it wants and says so; it still finds every name. That
// warning does not fail a change (every later deploy would fail too) but
// comes back as the setting that fixes it.
func TestNginxTuningWarnings(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nginx")
	}
	ctx := context.Background()
	port := nginxtest.FreePort(t)
	block := func(i int) string {
		return fmt.Sprintf("server { listen 127.0.0.1:%d; server_name site%d.example.com www.site%d.example.com; }\n", port, i, i)
	}
	before, err := privateNginx(t, block(0)).Test(ctx)
	if err != nil || !before.OK || len(before.Warnings) != 0 {
		t.Fatalf("one site: %+v %v", before, err)
	}
	var many strings.Builder
	for i := range 400 {
		many.WriteString(block(i))
	}
	many.WriteString(block(0)) // and a real conflict, which still fails
	after, err := privateNginx(t, many.String()).Test(ctx)
	if err != nil || !after.OK {
		t.Fatalf("400 sites: %+v %v", after, err)
	}
	nw := NewWarnings(before, after)
	if len(nw) != 2 || !strings.Contains(nw[0]+nw[1], `conflicting server name "site0.example.com"`) {
		t.Errorf("new warnings %q, want the two conflicting names only", nw)
	}
	tuning := Tuning(after, 800)
	want := `"server_names_hash_bucket_size 128;" and "server_names_hash_max_size 4096;"`
	if len(tuning) != 1 || !strings.Contains(tuning[0], want) {
		t.Fatalf("tuning %q, want %s", tuning, want)
	}
	// and the advice works
	tuned, err := privateNginx(t, "server_names_hash_bucket_size 128; server_names_hash_max_size 4096;\n"+strings.TrimSuffix(many.String(), block(0))).Test(ctx)
	if err != nil || !tuned.OK || len(tuned.Warnings) != 0 {
		t.Errorf("with the setting advised: %+v %v", tuned, err)
	}
}
