package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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
	pb := acmetest.Start(t, acmetest.Options{HTTPPort: acmetest.PortOf(e.listen)})
	root := filepath.Join(e.dir, "pebble-root.pem")
	pb.WriteIssuerRoot(t, root)
	dir := e.app("autoapp", map[string]string{"autoapp.py": schemePy})
	https := strconv.Itoa(nginxtest.FreePort(t))
	acme := func(domain string, extra ...string) []string {
		return append([]string{domain, "--app-dir", dir, "--module", "autoapp", "--venv", venv, "--listen", e.listen,
			"--https-listen", "127.0.0.1:" + https, "--tls", "auto", "--acme-ca", pb.Dir, "--acme-ca-root", pb.CARoot,
			"--acme-challenge", fmt.Sprintf("127.0.0.1:%d", nginxtest.FreePort(t)), "--acme-http-port", strconv.Itoa(acmetest.PortOf(e.listen)),
			"--acme-resolver", pb.DNSAddr}, extra...)
	}

	// Failures first: nothing changes, and no order is made for a name the
	// CA could not validate.
	pb.AddA(t, "elsewhere.test", "127.0.0.2")
	before := e.snapshot(true)
	code, _, errOut := e.run(append(append([]string{"deploy"}, acme("elsewhere.test")...), "--yes")...)
	if code == 0 || !strings.Contains(errOut, "the CA could not validate elsewhere.test, so nothing was asked of it") || pb.Orders(t) != 0 {
		t.Fatalf("a name resolving elsewhere: exit %d, %d orders\n%s", code, pb.Orders(t), errOut)
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

	out := e.deploy(acme("auto.test", "--alias", "www.auto.test")...)
	for _, want := range []string{"ACME challenge location", "order a certificate for auto.test, www.auto.test", "deployed: https://auto.test:" + https + "/ is live"} {
		if !strings.Contains(out, want) {
			t.Errorf("the deploy's output lacks %q:\n%s", want, out)
		}
	}
	if n := pb.Orders(t); n != 1 {
		t.Errorf("%d orders, want 1", n)
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
	// A redeploy orders nothing while the certificate is valid.
	if out := e.deploy(acme("auto.test")...); strings.Contains(out, "order a certificate") || pb.Orders(t) != 1 {
		t.Errorf("a redeploy ordered again (%d orders):\n%s", pb.Orders(t), out)
	}
	if got := curlTLS(t, root, "auto.test", https, "/"); !strings.HasPrefix(got, "https|on|") {
		t.Errorf("after the redeploy: %q", got)
	}
}
