package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// schemePy says how the app sees its request: scheme, HTTPS, host.
const schemePy = `def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s|%s|%s\n" % (environ["wsgi.url_scheme"], environ.get("HTTPS", "-"), environ.get("HTTP_HOST"))).encode()]
`

// TestDeployTLSBroughtCert: --tls cert=FILE,key=FILE serves the site over
// HTTPS on --https-listen with the certificate (checked first: a key that
// is not the certificate's, an expired one or one that does not name an
// alias are refused and change nothing); the app sees https and the port
// the client used; plain HTTP redirects; a renewed certificate brought
// again is what nginx presents once the deploy returns; --tls off goes
// back to HTTP.
func TestDeployTLSBroughtCert(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	dir := e.app("tlsapp", map[string]string{"tlsapp.py": schemePy})
	port := strconv.Itoa(nginxtest.FreePort(t))
	certs := filepath.Join(e.dir, "mycerts")
	cert := func(name string, validFor time.Duration, names ...string) (string, string, *x509.Certificate) {
		c, k := filepath.Join(certs, name+".crt"), filepath.Join(certs, name+".key")
		return c, k, nginxtest.WriteCert(t, c, k, validFor, names...)
	}
	good, goodKey, goodCert := cert("good", 24*time.Hour, "tls.test", "www.tls.test")
	_, otherKey, _ := cert("other", 24*time.Hour, "tls.test", "www.tls.test")
	expired, expiredKey, _ := cert("expired", -time.Minute, "tls.test", "www.tls.test")
	noAlias, noAliasKey, _ := cert("noalias", 24*time.Hour, "tls.test")
	args := []string{"tls.test", "--alias", "www.tls.test", "--app-dir", dir, "--module", "tlsapp", "--venv", venv, "--listen", e.listen,
		"--https-listen", "127.0.0.1:" + port}

	before := e.snapshot(true)
	for name, tls := range map[string]string{"key of another certificate": good + ",key=" + otherKey, "expired": expired + ",key=" + expiredKey,
		"alias not named": noAlias + ",key=" + noAliasKey, "missing file": filepath.Join(certs, "nope.crt") + ",key=" + goodKey} {
		code, _, errOut := e.run(append(append([]string{"deploy"}, args...), "--tls", "cert="+tls, "--yes")...)
		if code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%s: exit %d %q, want a one-line refusal (exit 2)", name, code, errOut)
		}
		e.unchanged(before, true, "a deploy refused for a bad certificate ("+name+")")
		t.Logf("%s: %s", name, strings.TrimSpace(errOut))
	}

	out := e.deploy(append(args, "--tls", "cert="+good+",key="+goodKey)...)
	if !strings.Contains(out, "deployed: https://tls.test:"+port+"/ is live") || !strings.Contains(out, "install the certificate (tls.test www.tls.test") {
		t.Errorf("deploy output:\n%s", out)
	}
	for _, host := range []string{"tls.test", "www.tls.test"} {
		if got := curlTLS(t, good, host, port, "/"); got != "https|on|"+host+":"+port+"\n" {
			t.Errorf("https://%s:%s/ answered %q, want the app seeing https and the port", host, port, got)
		}
	}
	if code, _ := e.get("tls.test", "/x?y=1"); code != 301 {
		t.Errorf("plain HTTP: %d, want a 301 to https", code)
	}
	if loc := redirectOf(t, e, "tls.test", "/x?y=1"); loc != "https://tls.test:"+port+"/x?y=1" {
		t.Errorf("plain HTTP redirects to %q", loc)
	}
	if st, err := os.Stat(filepath.Join(e.state, "certs", "tls.test", "privkey.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("installed key: %v %v, want mode 0600", st, err)
	}

	// A renewed certificate, brought again: nginx presents it when the
	// deploy returns.
	renewed, renewedKey, renewedCert := cert("renewed", 48*time.Hour, "tls.test", "www.tls.test")
	e.deploy(append(args, "--tls", "cert="+renewed+",key="+renewedKey, "--hsts")...)
	if serial := servedSerial(t, renewed, "tls.test", port); serial != renewedCert.SerialNumber.String() || serial == goodCert.SerialNumber.String() {
		t.Errorf("nginx presents serial %s, want the renewed %s", serial, renewedCert.SerialNumber)
	}
	if hdr := curlTLS(t, renewed, "tls.test", port, "/", "-I"); !strings.Contains(strings.ToLower(hdr), "strict-transport-security: max-age=63072000") {
		t.Errorf("--hsts: no Strict-Transport-Security header:\n%s", hdr)
	}
	// A plain redeploy keeps TLS.
	e.deploy(args[:len(args)-2]...)
	if got := curlTLS(t, renewed, "tls.test", port, "/"); !strings.HasPrefix(got, "https|on|") {
		t.Errorf("after a plain redeploy: %q", got)
	}

	e.deploy("tls.test", "--app-dir", dir, "--module", "tlsapp", "--venv", venv, "--tls", "off")
	e.want("tls.test", "/", 200, "http|-|tls.test")

	// undeploy --purge takes the site's certificate and key away (another
	// site keeps the shared venv and app dir).
	e.deploy("keep.test", "--app-dir", dir, "--module", "tlsapp", "--venv", venv, "--listen", e.listen)
	if code, out, errOut := e.run("undeploy", "tls.test", "--purge", "--yes"); code != 0 || !strings.Contains(out, filepath.Join(e.state, "certs", "tls.test")) {
		t.Fatalf("undeploy --purge: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(e.state, "certs", "tls.test")); !os.IsNotExist(err) {
		t.Errorf("the certificate dir after undeploy --purge: %v, want it gone", err)
	}
	e.want("keep.test", "/", 200, "http|-|keep.test")
}

// curlTLS fetches https://host:port/path through nginx on 127.0.0.1 with
// curl, trusting caFile.
func curlTLS(t *testing.T, caFile, host, port, path string, extra ...string) string {
	t.Helper()
	args := append([]string{"-sS", "--max-time", "10", "--cacert", caFile, "--resolve", host + ":" + port + ":127.0.0.1"}, extra...)
	out, err := exec.Command("curl", append(args, fmt.Sprintf("https://%s:%s%s", host, port, path))...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl https://%s:%s%s: %v\n%s", host, port, path, err, out)
	}
	return string(out)
}

// servedSerial is the serial of the certificate nginx presents for host.
func servedSerial(t *testing.T, _ string, host, port string) string {
	t.Helper()
	c, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{ServerName: host, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS to %s:%s: %v", host, port, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// redirectOf is where nginx's answer for host+path redirects to.
func redirectOf(t *testing.T, e *deployEnv, host, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+e.listen+path, nil)
	req.Host = host
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Location")
}
