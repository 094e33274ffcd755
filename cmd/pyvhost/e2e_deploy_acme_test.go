package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/deployer/acmetest"
	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestDeployTLSAuto: deploy --tls auto against a real ACME server (pebble):
// a new site's challenge location goes live, the pre-check passes, one
// certificate for the domain and its alias is ordered and installed, and
// the site answers over HTTPS with it (the app sees https); HTTP redirects
// except the challenge path; a redeploy orders nothing; a name that does
// not reach this nginx is refused before any order, and a CA that cannot
// be reached fails the deploy — both leaving every file as it was.
func TestDeployTLSAuto(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	pb := acmetest.Start(t, acmetest.Options{HTTPPort: acmetest.PortOf(e.listen), Blocked: []string{"blocked.test"}})
	root := filepath.Join(e.dir, "pebble-root.pem")
	pb.WriteIssuerRoot(t, root)
	dir := e.app("autoapp", map[string]string{"autoapp.py": schemePy})
	https := strconv.Itoa(nginxtest.FreePort(t))
	challenge := fmt.Sprintf("127.0.0.1:%d", nginxtest.FreePort(t))
	acme := func(domain string, extra ...string) []string {
		return append([]string{domain, "--app-dir", dir, "--module", "autoapp", "--venv", venv, "--listen", e.listen,
			"--https-listen", "127.0.0.1:" + https, "--tls", "auto", "--acme-ca", pb.Dir, "--acme-ca-root", pb.CARoot,
			"--acme-challenge", challenge, "--acme-http-port", strconv.Itoa(acmetest.PortOf(e.listen)),
			"--acme-resolver", pb.DNSAddr}, extra...)
	}

	// Failures first: nothing changes, and no order is made for a name the
	// CA could not validate.
	pb.AddA(t, "elsewhere.test", "127.0.0.2")
	before := e.snapshot(true)
	for attempt := 1; attempt <= 2; attempt++ { // retried as a user would: still no order
		code, _, errOut := e.run(append(append([]string{"deploy"}, acme("elsewhere.test")...), "--yes")...)
		if code == 0 || !strings.Contains(errOut, "the CA could not validate elsewhere.test, so nothing was asked of it") || pb.Orders(t) != 0 {
			t.Fatalf("a name resolving elsewhere, attempt %d: exit %d, %d orders\n%s", attempt, code, pb.Orders(t), errOut)
		}
	}
	e.unchanged(before, true, "a --tls auto deploy refused by the pre-check")
	e.want("elsewhere.test", "/", 200, "other site")
	bad := acme("unreach.test")
	for i, a := range bad {
		if a == pb.Dir {
			bad[i] = "https://127.0.0.1:1/dir"
		}
	}
	if code, _, errOut := e.run(append(append([]string{"deploy"}, bad...), "--yes")...); code == 0 || !strings.Contains(errOut, "did not issue a certificate") {
		t.Fatalf("an unreachable CA: exit %d\n%s", code, errOut)
	}
	e.unchanged(before, true, "a --tls auto deploy whose CA was unreachable")
	if code, _, errOut := e.run(append(append([]string{"deploy"}, acme("blocked.test")...), "--yes")...); code == 0 || !strings.Contains(errOut, "did not issue a certificate") || !strings.Contains(errOut, "everything was put back") {
		t.Fatalf("an order the CA rejects: exit %d\n%s", code, errOut)
	}
	e.unchanged(before, true, "a --tls auto deploy whose order the CA rejected")
	e.want("blocked.test", "/", 200, "other site")

	start := time.Now()
	out := e.deploy(acme("auto.test", "--alias", "www.auto.test")...)
	firstTook := time.Since(start)
	for _, want := range []string{"ACME challenge location", "order a certificate for auto.test, www.auto.test", "deployed: https://auto.test:" + https + "/ is live"} {
		if !strings.Contains(out, want) {
			t.Errorf("the deploy's output lacks %q:\n%s", want, out)
		}
	}
	if n := pb.Orders(t); n != 2 { // the rejected one, and this one
		t.Errorf("%d orders, want 2", n)
	}
	for _, host := range []string{"auto.test", "www.auto.test"} {
		if got := curlTLS(t, root, host, https, "/"); got != "https|on|"+host+":"+https+"\n" {
			t.Errorf("https://%s:%s/ answered %q", host, https, got)
		}
	}
	if code, _ := e.get("auto.test", "/page"); code != 301 {
		t.Errorf("plain HTTP: %d, want a 301 to https", code)
	}
	if code, _ := e.get("auto.test", "/.well-known/acme-challenge/x"); code == 301 || code == 200 {
		t.Errorf("the challenge path on HTTP: %d, want it proxied to pyvhost (nothing answers there now: 502)", code)
	}
	keysStayPut(t, e)
	// A redeploy orders nothing while the certificate is valid.
	start = time.Now()
	if out := e.deploy(acme("auto.test")...); strings.Contains(out, "order a certificate") || pb.Orders(t) != 2 {
		t.Errorf("a redeploy ordered again (%d orders):\n%s", pb.Orders(t), out)
	}
	t.Logf("deploy --tls auto of a new site: %s; a redeploy: %s", firstTook, time.Since(start))
	if got := curlTLS(t, root, "auto.test", https, "/"); !strings.HasPrefix(got, "https|on|") {
		t.Errorf("after the redeploy: %q", got)
	}

	// An HTTP site moves to --tls auto: it keeps serving HTTP while the
	// challenge goes live and the certificate is ordered.
	e.deploy("plain.test", "--app-dir", dir, "--module", "autoapp", "--venv", venv, "--listen", e.listen)
	e.want("plain.test", "/", 200, "http|-|plain.test")
	if out := e.deploy(acme("plain.test")...); !strings.Contains(out, "ACME challenge location (modify") {
		t.Errorf("the move to TLS did not go through the challenge step:\n%s", out)
	}
	if got := curlTLS(t, root, "plain.test", https, "/"); got != "https|on|plain.test:"+https+"\n" {
		t.Errorf("plain.test over https: %q", got)
	}
	e.run("undeploy", "plain.test", "--yes")

	// sites, ctl status and the daemon's status (the status page's JSON)
	// show the certificate.
	if _, out, _ := e.run("sites"); !strings.Contains(out, "CERTIFICATE") || !strings.Contains(out, "until ") {
		t.Errorf("pyvhost sites does not show the certificate:\n%s", out)
	}
	if _, out, _ := e.run("ctl", "status"); !strings.Contains(out, "cert:     auto.test expires") || !strings.Contains(out, "renewed from") {
		t.Errorf("pyvhost ctl status does not show the certificate:\n%s", out)
	}

	// pyvhost certs shows it; certs renew --force orders a new one now.
	if _, out, _ := e.run("certs"); !strings.Contains(out, "auto.test www.auto.test") || !strings.Contains(out, "auto, from ") {
		t.Errorf("pyvhost certs:\n%s", out)
	}
	_, js, _ := e.run("certs", "--json")
	var certs []struct {
		Domain   string
		Auto     bool
		NotAfter time.Time `json:"not_after"`
	}
	if err := json.Unmarshal([]byte(js), &certs); err != nil || len(certs) != 1 || !certs[0].Auto || certs[0].NotAfter.Before(time.Now()) {
		t.Errorf("certs --json: %v %s", err, js)
	}
	// A redeploy that moves the challenge address (no order: the
	// certificate is valid) moves where renewals answer the CA too.
	challenge = fmt.Sprintf("127.0.0.1:%d", nginxtest.FreePort(t))
	if out := e.deploy(acme("auto.test")...); strings.Contains(out, "order a certificate") {
		t.Errorf("moving the challenge address ordered a certificate:\n%s", out)
	}
	oldSerial := servedSerial(t, root, "auto.test", https)
	if code, out, errOut := e.run("certs", "renew", "auto.test", "--force"); code != 0 || !strings.Contains(out, "auto.test: renewed, nginx reloaded") {
		t.Fatalf("certs renew --force: exit %d\n%s%s", code, out, errOut)
	}
	if serial := servedSerial(t, root, "auto.test", https); serial == oldSerial || pb.Orders(t) != 4 {
		t.Errorf("after certs renew --force: serial %s (was %s), %d orders", serial, oldSerial, pb.Orders(t))
	}
	checkARIRenewal(t, e, pb, root, https)

	// Another CA (staging first, then the real one) is ordered from at
	// once, though the certificate is valid; a new contact changes only
	// how renewals are asked for.
	pb2 := acmetest.Start(t, acmetest.Options{HTTPPort: acmetest.PortOf(e.listen)})
	root2 := filepath.Join(e.dir, "pebble2-root.pem")
	pb2.WriteIssuerRoot(t, root2)
	other := strings.NewReplacer(pb.Dir, pb2.Dir, pb.CARoot, pb2.CARoot, pb.DNSAddr, pb2.DNSAddr)
	args := acme("auto.test")
	for i := range args {
		args[i] = other.Replace(args[i])
	}
	if out := e.deploy(args...); !strings.Contains(out, "replacing the one from "+pb.Dir) || pb2.Orders(t) != 1 {
		t.Errorf("a redeploy naming another CA: %d orders there\n%s", pb2.Orders(t), out)
	}
	if got := curlTLS(t, root2, "www.auto.test", https, "/"); !strings.HasPrefix(got, "https|on|") {
		t.Errorf("with the other CA's certificate: %q", got)
	}
	if out := e.deploy(append(args, "--acme-email", "ops@auto.test")...); !strings.Contains(out, "contact none → ops@auto.test") || pb2.Orders(t) != 1 {
		t.Errorf("a new contact: %d orders\n%s", pb2.Orders(t), out)
	}
	if b, _ := os.ReadFile(filepath.Join(e.state, "certs", "auto.test", "acme.json")); !strings.Contains(string(b), `"Email":"ops@auto.test"`) || !strings.Contains(string(b), pb2.Dir) {
		t.Errorf("acme.json after the new contact: %s", b)
	}
}

// keysStayPut: the sites' keys and the ACME account's are root-only
// (0600) and in no other file — a log, a release, a status file — nor in
// any command's output.
func keysStayPut(t *testing.T, e *deployEnv) {
	t.Helper()
	keys := map[string]string{} // a line of each key's base64 → its file
	err := filepath.WalkDir(filepath.Join(e.state), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if !strings.Contains(string(b), "PRIVATE KEY-----") {
			return nil
		}
		if st, _ := d.Info(); st.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", p, st.Mode().Perm())
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		keys[lines[len(lines)/2]] = p
		return nil
	})
	if err != nil || len(keys) < 2 {
		t.Fatalf("want the site's key and the ACME account's in the state dir: %v %v", keys, err)
	}
	err = filepath.WalkDir(e.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for line, file := range keys {
			if p != file && strings.Contains(string(b), line) {
				t.Errorf("the key %s is also in %s", file, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"certs", "--json"}, {"sites", "--json"}, {"ctl", "status", "--json"}} {
		_, out, _ := e.run(args...)
		for line, file := range keys {
			if strings.Contains(out, line) {
				t.Errorf("pyvhost %v shows the key %s", args, file)
			}
		}
	}
}

// checkARIRenewal: a certificate not due by its lifetime is renewed when
// the CA's renewal info (ARI) says so — what a CA about to revoke it does —
// and not before.
func checkARIRenewal(t *testing.T, e *deployEnv, pb *acmetest.Pebble, root, https string) {
	t.Helper()
	orders := pb.Orders(t)
	if code, out, errOut := e.run("certs", "renew", "auto.test"); code != 0 || !strings.Contains(out, "nothing is due") || pb.Orders(t) != orders {
		t.Fatalf("certs renew of a certificate the CA does not want renewed: exit %d, %d orders (were %d)\n%s%s", code, pb.Orders(t), orders, out, errOut)
	}
	var st struct {
		ARI struct{ Serial, Error string }
	}
	b, _ := os.ReadFile(filepath.Join(e.state, "certs", "auto.test", "status.json"))
	oldSerial := servedSerial(t, root, "auto.test", https)
	n, _ := new(big.Int).SetString(oldSerial, 10)
	if err := json.Unmarshal(b, &st); err != nil || st.ARI.Serial != n.Text(16) || st.ARI.Error != "" {
		t.Errorf("status.json does not keep the CA's renewal info about serial %s: %v %s", oldSerial, err, b)
	}
	chain, err := os.ReadFile(filepath.Join(e.state, "certs", "auto.test", "fullchain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pb.SetRenewalInfo(t, chain, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	if code, out, errOut := e.run("certs", "renew", "auto.test"); code != 0 || !strings.Contains(out, "auto.test: renewed, nginx reloaded") {
		t.Fatalf("certs renew when the CA's renewal info says now: exit %d\n%s%s", code, out, errOut)
	}
	if serial := servedSerial(t, root, "auto.test", https); serial == oldSerial || pb.Orders(t) != orders+1 {
		t.Errorf("after the CA asked for renewal: serial %s (was %s), %d orders (were %d)", serial, oldSerial, pb.Orders(t), orders)
	}
}

// TestDeployTLSAutoRenewal: the daemon renews a --tls auto certificate
// (pebble issues them for 40 s here, so a third of its life is left
// after ~27 s) while HTTPS load runs against the site: the serial nginx
// presents changes, and no request fails.
func TestDeployTLSAutoRenewal(t *testing.T) {
	skipShort(t)
	t.Setenv("PYVHOST_CERT_CHECK", "1") // the daemon deploy starts checks every second
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	pb := acmetest.Start(t, acmetest.Options{HTTPPort: acmetest.PortOf(e.listen), Validity: 40 * time.Second})
	root := filepath.Join(e.dir, "pebble-root.pem")
	pb.WriteIssuerRoot(t, root)
	dir := e.app("renewapp", map[string]string{"renewapp.py": schemePy})
	https := strconv.Itoa(nginxtest.FreePort(t))
	e.deploy("renew.test", "--app-dir", dir, "--module", "renewapp", "--venv", venv, "--listen", e.listen,
		"--https-listen", "127.0.0.1:"+https, "--tls", "auto", "--acme-ca", pb.Dir, "--acme-ca-root", pb.CARoot,
		"--acme-challenge", fmt.Sprintf("127.0.0.1:%d", nginxtest.FreePort(t)), "--acme-http-port", strconv.Itoa(acmetest.PortOf(e.listen)),
		"--acme-resolver", pb.DNSAddr)
	first := servedSerial(t, root, "renew.test", https)
	load := startHTTPSLoad(t, root, "renew.test", https, 4)
	waitFor(t, 90*time.Second, "the daemon renews the certificate", func() bool { return servedSerial(t, root, "renew.test", https) != first })
	ok, bad := load.stop()
	if len(bad) > 0 || ok == 0 {
		t.Fatalf("%d HTTPS requests failed during the renewal (%d ok): %v", len(bad), ok, bad[:min(len(bad), 5)])
	}
	// nginx presents the new certificate from the reload on; the daemon
	// logs it once nginx's old workers have stopped.
	waitFor(t, 20*time.Second, "the daemon's log says it renewed", func() bool {
		return strings.Contains(e.daemonLog(), "certificate of renew.test renewed and nginx reloaded")
	})
	t.Logf("renewed under load: %d requests ok", ok)

	// A renewal that fails (the name now points elsewhere, so the CA's
	// validation cannot reach this nginx) keeps the certificate serving
	// and says so loudly, in the log and in pyvhost certs. (A renewal
	// already validated when the name moved may still install one more
	// certificate: what nginx serves after the failure is the installed
	// one, whole.)
	pb.AddA(t, "renew.test", "127.0.0.2")
	waitFor(t, 60*time.Second, "the daemon's log says the renewal failed", func() bool {
		return strings.Contains(e.daemonLog(), "*** CERTIFICATE RENEWAL FAILED for renew.test")
	})
	chain := filepath.Join(e.state, "certs", "renew.test", "fullchain.pem")
	installed := installedSerial(t, chain)
	if got := servedSerial(t, root, "renew.test", https); got != installed {
		t.Errorf("after a failed renewal nginx serves serial %s, the installed certificate is %s", got, installed)
	}
	var st struct {
		LastAttempt time.Time `json:"last_attempt"`
		Failures    int
	}
	b, _ := os.ReadFile(filepath.Join(e.state, "certs", "renew.test", "status.json"))
	fi, err := os.Stat(chain)
	if json.Unmarshal(b, &st) != nil || st.Failures == 0 || err != nil || !fi.ModTime().Before(st.LastAttempt) {
		t.Errorf("the failed attempt (status %s) touched the installed certificate (written %v)", b, fi.ModTime())
	}
	if _, out, _ := e.run("certs"); !strings.Contains(out, "renewal failed: ") {
		t.Errorf("pyvhost certs does not show the failed renewal:\n%s", out)
	}
}

// installedSerial is the serial of the leaf in a PEM chain file.
func installedSerial(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

// startHTTPSLoad requests https://host:port/ through nginx from clients
// goroutines, each on new connections, trusting caFile.
func startHTTPSLoad(t *testing.T, caFile, host, port string, clients int) *soakLoad {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: host},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, "127.0.0.1:"+port)
		}}}
	l := &soakLoad{quit: make(chan struct{})}
	l.run(clients, "", func() (*http.Response, error) { return client.Get("https://" + host + ":" + port + "/") })
	return l
}
