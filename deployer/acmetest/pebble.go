// Package acmetest runs a real ACME server for tests: pebble, the one
// Let's Encrypt publishes for testing, with pebble-challtestsrv as its DNS
// server (every name resolves to 127.0.0.1), on private loopback ports,
// stopped by pid when the test ends.
//
// The pebble is the one go.mod pins as a tool (`go tool pebble`), not
// Debian's: Debian's 2.4 has no ARI (renewalInfo), which the daemon's
// renewal follows, and a pinned version is the same on every machine.
package acmetest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

// Pebble is a running pebble.
type Pebble struct {
	Dir     string // the directory URL (https://127.0.0.1:PORT/dir)
	CARoot  string // file with the certificate of pebble's own HTTPS listener (trust it to talk to pebble)
	mgmt    string
	DNSAddr string // pebble-challtestsrv's DNS: resolve names as pebble does
	dnsMgmt string
	log     string // pebble's log
	procs   []*exec.Cmd
}

// Options tune the pebble.
type Options struct {
	HTTPPort int           // where pebble's validator connects for HTTP-01: the private nginx's HTTP port
	Validity time.Duration // certificates' lifetime; 0 = pebble's default (5 years)
	Blocked  []string      // names pebble refuses to issue for (its domainBlocklist)
}

// Start runs pebble-challtestsrv and pebble.
func Start(t testing.TB, o Options) *Pebble {
	t.Helper()
	dir := t.TempDir()
	p := &Pebble{CARoot: filepath.Join(dir, "pebble-tls.crt")}
	key := filepath.Join(dir, "pebble-tls.key")
	nginxtest.WriteCert(t, p.CARoot, key, 48*time.Hour, "localhost", "127.0.0.1")
	listen, mgmt, tlsPort := nginxtest.FreePort(t), nginxtest.FreePort(t), nginxtest.FreePort(t)
	dns, dnsMgmt := nginxtest.FreePort(t), nginxtest.FreePort(t)
	p.Dir = fmt.Sprintf("https://127.0.0.1:%d/dir", listen)
	p.mgmt = fmt.Sprintf("https://127.0.0.1:%d", mgmt)
	p.DNSAddr = fmt.Sprintf("127.0.0.1:%d", dns)
	p.dnsMgmt = fmt.Sprintf("http://127.0.0.1:%d", dnsMgmt)
	p.log = filepath.Join(dir, "pebble.log")
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": fmt.Sprintf("127.0.0.1:%d", listen), "managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate": p.CARoot, "privateKey": key, "httpPort": o.HTTPPort, "tlsPort": tlsPort,
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
	}}
	if len(o.Blocked) > 0 {
		conf["pebble"].(map[string]any)["domainBlocklist"] = o.Blocked
	}
	if o.Validity > 0 {
		conf["pebble"].(map[string]any)["profiles"] = map[string]any{
			"default": map[string]any{"description": "the test's", "validityPeriod": int(o.Validity.Seconds())}}
	}
	b, _ := json.Marshal(conf)
	confFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p.start(t, dir, "challtestsrv", tool(t, "pebble-challtestsrv"), "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-dnsserver", p.DNSAddr, "-doh", "", "-http01", "", "-https01", "", "-tlsalpn01", "", "-management", fmt.Sprintf("127.0.0.1:%d", dnsMgmt))
	waitPort(t, "udp", p.DNSAddr, "pebble-challtestsrv's DNS")
	p.start(t, dir, "pebble", tool(t, "pebble"), "-config", confFile, "-dnsserver", p.DNSAddr)
	waitPort(t, "tcp", fmt.Sprintf("127.0.0.1:%d", listen), "pebble")
	return p
}

var tools sync.Map // name → the built binary's path

// tool is the path of go.mod's tool name, built (or found in Go's cache)
// once per test binary.
func tool(t testing.TB, name string) string {
	t.Helper()
	if p, ok := tools.Load(name); ok {
		return p.(string)
	}
	out, err := exec.Command("go", "tool", "-n", name).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool -n %s (go.mod's pinned pebble): %v\n%s", name, err, out)
	}
	p := strings.TrimSpace(string(out))
	tools.Store(name, p)
	return p
}

func (p *Pebble) start(t testing.TB, dir, name, bin string, args ...string) {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// No sleeping between validation attempts, no nonces refused on
	// purpose: the client's retries are not what these tests are about.
	// No reuse of a valid authorization (pebble reuses half of them): every
	// order is validated, so a renewal that cannot be validated fails
	// every time.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.procs = append(p.procs, cmd)
	t.Cleanup(func() {
		if t.Failed() { // what it said, for the failure's cause (a process that exited, say)
			b, _ := os.ReadFile(log.Name())
			t.Logf("%s's log (%s):\n%s", name, cmd.ProcessState, b[max(0, len(b)-4000):])
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		log.Close()
	})
}

// waitPort waits until something listens at addr (for udp: the port is
// bound, seen by a failing bind of our own).
func waitPort(t testing.TB, network, addr, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if network == "tcp" {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				return
			}
		} else if c, err := net.ListenPacket("udp", addr); err != nil {
			return // taken: the server has it
		} else {
			c.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s does not listen on %s", what, addr)
}

// IssuerRoot is the root that signs the certificates this pebble issues
// (new each run): what a client must trust to accept them.
func (p *Pebble) IssuerRoot(t testing.TB) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(p.get(t, "/roots/0")))
	return pool
}

// IssuerRootPEM is IssuerRoot as PEM.
func (p *Pebble) IssuerRootPEM(t testing.TB) string { return p.get(t, "/roots/0") }

// client talks to pebble's management port (its own HTTPS certificate).
func (p *Pebble) client(t testing.TB) *http.Client {
	t.Helper()
	b, err := os.ReadFile(p.CARoot)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func (p *Pebble) get(t testing.TB, path string) string {
	t.Helper()
	resp, err := p.client(t).Get(p.mgmt + path)
	if err != nil {
		t.Fatalf("pebble %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("pebble %s: %s %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body)
}

// PortOf is the port of an ADDR:PORT.
func PortOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// AddA makes name resolve to ip (for pebble and for a pre-check using
// DNSAddr), instead of 127.0.0.1.
func (p *Pebble) AddA(t testing.TB, name, ip string) {
	t.Helper()
	body := fmt.Sprintf(`{"host": %q, "addresses": [%q]}`, name, ip)
	resp, err := http.Post(p.dnsMgmt+"/add-a", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("pebble-challtestsrv add-a %s: %s", name, resp.Status)
	}
}

// Orders is how many new orders pebble has had.
func (p *Pebble) Orders(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "POST /order-plz")
}

// WriteIssuerRoot writes the root that signs this pebble's certificates to
// path (for curl --cacert).
func (p *Pebble) WriteIssuerRoot(t testing.TB, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(p.IssuerRootPEM(t)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// SetRenewalInfo makes pebble's renewal info (ARI) for the certificate in
// certPEM (its leaf first) suggest the window [start, end].
func (p *Pebble) SetRenewalInfo(t testing.TB, certPEM []byte, start, end time.Time) {
	t.Helper()
	ari, _ := json.Marshal(map[string]any{"suggestedWindow": map[string]time.Time{"start": start, "end": end}})
	body, _ := json.Marshal(map[string]string{"Certificate": string(certPEM), "ARIResponse": string(ari)})
	resp, err := p.client(t).Post(p.mgmt+"/set-renewal-info/", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("pebble set-renewal-info: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("pebble set-renewal-info: %s %s", resp.Status, b)
	}
}
