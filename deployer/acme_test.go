package deployer

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/deployer/acmetest"
	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

// TestACMEObtain: a real ACME server (pebble) issues one certificate for
// all of a site's names, validating HTTP-01 through a real nginx that
// proxies /.well-known/acme-challenge/ to the challenge address; the
// chain verifies against the CA's root, and the account is kept root-only.
func TestACMEObtain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pebble and nginx")
	}
	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", nginxtest.FreePort(t))
	challenge := fmt.Sprintf("127.0.0.1:%d", nginxtest.FreePort(t))
	conf := filepath.Join(dir, "nginx.conf")
	site := fmt.Sprintf(`    server { listen %s; server_name a.test www.a.test;
        location ^~ /.well-known/acme-challenge/ { proxy_pass http://%s; proxy_set_header Host $host; }
        location / { return 301 https://$host$request_uri; } }`, listen, challenge)
	if err := os.WriteFile(conf, []byte(nginxtest.MainConf(dir, site)), 0o644); err != nil {
		t.Fatal(err)
	}
	nginxtest.Start(t, conf, listen)
	pb := acmetest.Start(t, acmetest.Options{HTTPPort: acmetest.PortOf(listen)})
	o := ACMEOptions{CA: pb.Dir, CARoot: pb.CARoot, Email: "admin@a.test", Challenge: challenge, Storage: filepath.Join(dir, "state", "acme")}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	ci, err := o.Obtain(ctx, []string{"a.test", "www.a.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("obtained in %s", time.Since(start))
	if !slices.Contains(ci.Leaf.DNSNames, "a.test") || !slices.Contains(ci.Leaf.DNSNames, "www.a.test") {
		t.Errorf("the certificate names %v, want a.test and www.a.test", ci.Leaf.DNSNames)
	}
	inter := x509.NewCertPool()
	rest := ci.Chain
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil && c.IsCA {
			inter.AddCert(c)
		}
	}
	if _, err := ci.Leaf.Verify(x509.VerifyOptions{DNSName: "www.a.test", Roots: pb.IssuerRoot(t), Intermediates: inter}); err != nil {
		t.Errorf("the chain does not verify against the CA's root: %v", err)
	}
	// The same checks a brought certificate passes, key included.
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	_ = os.WriteFile(certFile, ci.Chain, 0o600)
	_ = os.WriteFile(keyFile, ci.Key, 0o600)
	if _, err := loadCert(certFile, keyFile, []string{"a.test", "www.a.test"}, time.Now()); err != nil {
		t.Errorf("the issued certificate fails the install checks: %v", err)
	}
	if st, err := os.Stat(o.Storage); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("ACME storage %v %v, want 0700", st, err)
	}
}
