package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

func TestMain(m *testing.M) { daemontest.Main(m) }

func slow(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: runs nginx, the daemon and Python (make test runs it)")
	}
}

// site is one server block for the test nginx.
type site struct {
	domain string
	apps   []nginxconf.AppSpec
}

// env is a private nginx in front of the daemon.
type env struct {
	dir    string
	listen string // nginx's address
	conf   string
	nginx  *nginxtest.Server
	client *http.Client
}

// startNginx writes the sites (rendered by pyvhost itself) into a private
// nginx configuration and starts nginx.
func startNginx(t *testing.T, dir string, sites ...site) *env {
	t.Helper()
	e := &env{dir: dir, listen: fmt.Sprintf("127.0.0.1:%d", nginxtest.FreePort(t)), conf: filepath.Join(dir, "nginx.conf")}
	var blocks []string
	for _, s := range sites {
		b, err := nginxconf.Render(nginxconf.SiteSpec{Domain: s.domain, Listen: e.listen, MaxBody: "200m", Apps: s.apps},
			nginxconf.RenderOptions{IncludeParams: true})
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, string(b))
	}
	params, err := os.ReadFile(nginxtest.ParamsFile(t))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "uwsgi_params"), string(params))
	write(t, filepath.Join(dir, "sites.conf"), strings.Join(blocks, "\n"))
	body := "    uwsgi_read_timeout 30s;\n    include sites.conf;"
	write(t, e.conf, nginxtest.MainConf(dir, body))
	e.nginx = nginxtest.Start(t, e.conf, e.listen)
	e.client = &http.Client{Timeout: 30 * time.Second}
	return e
}

// get requests path from nginx with a Host header.
func (e *env) get(t *testing.T, host, path string) (int, string) {
	t.Helper()
	return e.do(t, "GET", host, path, nil)
}

// try is get for goroutines: it returns the error instead of failing.
func (e *env) try(host, path string) (int, string, error) {
	req, err := http.NewRequest("GET", "http://"+e.listen+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (e *env) do(t *testing.T, method, host, path string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+e.listen+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s%s: reading the body: %v", method, host, path, err)
	}
	return resp.StatusCode, string(b)
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", nginxtest.FreePort(t))
}

// rawRequest sends bytes straight to a uwsgi socket and returns the reply.
func rawRequest(t *testing.T, addr string, packet []byte) string {
	t.Helper()
	r, err := rawTry(addr, packet)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rawTry is rawRequest for goroutines: it returns the error instead of failing.
func rawTry(addr string, packet []byte) (string, error) {
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(packet); err != nil {
		return "", err
	}
	// Half-close: a truncated packet then ends, as when a client goes away.
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	b, _ := io.ReadAll(c)
	return string(b), nil
}

// load requests host/ from several goroutines until stopped, counting
// answers that are not a 200 (or that fail to arrive).
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   map[string]bool
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(e *env, host string, clients int) *load {
	l := &load{failures: map[string]bool{}, stop: make(chan struct{})}
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				code, out, err := e.try(host, "/")
				if err == nil && code == 200 {
					l.ok.Add(1)
					continue
				}
				l.failed.Add(1)
				l.mu.Lock()
				l.failures[fmt.Sprintf("%d %q %v", code, out, err)] = true
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// end stops the load and fails the test if any request failed.
func (l *load) end(t *testing.T, d interface{ Log() string }, what string) int64 {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if n := l.failed.Load(); n > 0 {
		var fs []string
		for f := range l.failures {
			fs = append(fs, f)
		}
		t.Fatalf("%d of %d requests failed %s: %v\n%s", n, n+l.ok.Load(), what, fs, d.Log())
	}
	return l.ok.Load()
}
