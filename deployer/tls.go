package deployer

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
)

// TLSOptions is deploy's --tls and its companions.
type TLSOptions struct {
	Off               bool // --tls off: back to HTTP only
	Auto              bool // --tls auto: a certificate from an ACME CA (ACME says which and how)
	ACME              ACMEOptions
	CertFile, KeyFile string // --tls cert=FILE,key=FILE: a certificate the user brings
	HTTPSListen       string // --https-listen; "" = 443
	HSTS              bool   // --hsts
}

// ParseTLS parses --tls: "auto", "off", or "cert=FILE,key=FILE".
func ParseTLS(v string) (TLSOptions, error) {
	switch v {
	case "off":
		return TLSOptions{Off: true}, nil
	case "auto":
		return TLSOptions{Auto: true}, nil
	}
	var o TLSOptions
	for _, part := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(part, "=")
		switch k {
		case "cert":
			o.CertFile = val
		case "key":
			o.KeyFile = val
		default:
			return o, fmt.Errorf("--tls %q: want auto (a certificate from Let's Encrypt or --acme-ca), cert=FILE,key=FILE (one you bring) or off", v)
		}
	}
	if o.CertFile == "" || o.KeyFile == "" {
		return o, fmt.Errorf("--tls %q: want both cert=FILE and key=FILE", v)
	}
	return o, nil
}

// CertInstall is a brought certificate deploy installs in the state dir,
// where the site's nginx block names it.
type CertInstall struct {
	Dir        string // STATE/certs/DOMAIN
	Chain, Key []byte // PEM, as checked
	Leaf       *x509.Certificate
}

// CertPath and KeyPath are where the installed files go.
func (c *CertInstall) CertPath() string { return filepath.Join(c.Dir, "fullchain.pem") }
func (c *CertInstall) KeyPath() string  { return filepath.Join(c.Dir, "privkey.pem") }

// Describe is the certificate as the plan shows it.
func (c *CertInstall) Describe() string {
	return fmt.Sprintf("%s, issued by %s, valid until %s", strings.Join(c.Leaf.DNSNames, " "), c.Leaf.Issuer.CommonName,
		c.Leaf.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
}

// loadCert reads and checks a brought certificate and key: the key is the
// certificate's, each certificate of the chain is signed by the next, the
// leaf is valid now and names every one of names.
func loadCert(certFile, keyFile string, names []string, now time.Time) (*CertInstall, error) {
	chain, err := os.ReadFile(certFile)
	if err != nil {
		return nil, invalidf("--tls cert=%s: %v", certFile, bare(err))
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, invalidf("--tls key=%s: %v", keyFile, bare(err))
	}
	pair, err := tls.X509KeyPair(chain, key)
	if err != nil {
		return nil, invalidf("--tls cert=%s,key=%s: %v", certFile, keyFile, err)
	}
	certs := make([]*x509.Certificate, len(pair.Certificate))
	for i, der := range pair.Certificate {
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, invalidf("--tls cert=%s: certificate %d: %v", certFile, i+1, err)
		}
	}
	leaf := certs[0]
	for i := 0; i+1 < len(certs); i++ {
		if err := certs[i].CheckSignatureFrom(certs[i+1]); err != nil {
			return nil, invalidf("--tls cert=%s: certificate %d is not signed by certificate %d after it (%v): put the chain in order, leaf first", certFile, i+1, i+2, err)
		}
	}
	switch {
	case now.Before(leaf.NotBefore):
		return nil, invalidf("--tls cert=%s: not valid before %s", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	case !now.Before(leaf.NotAfter):
		return nil, invalidf("--tls cert=%s: expired on %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	for _, n := range names {
		covered := coversWildcard(leaf, n) // a site *.example.com needs that wildcard itself
		if !strings.Contains(n, "*") {
			covered = leaf.VerifyHostname(n) == nil
		}
		if !covered {
			return nil, invalidf("--tls cert=%s: it does not name %s (it names %s)", certFile, n, strings.Join(leaf.DNSNames, ", "))
		}
	}
	return &CertInstall{Chain: chain, Key: key, Leaf: leaf}, nil
}

// coversWildcard reports whether the certificate lists name n as it is.
func coversWildcard(c *x509.Certificate, n string) bool {
	for _, d := range c.DNSNames {
		if strings.EqualFold(d, n) {
			return true
		}
	}
	return false
}

func invalidf(format string, a ...any) error {
	return &nginxconf.InvalidError{Err: fmt.Errorf(format, a...)}
}

// install writes the certificate and key (root-only) within tx.
func (c *CertInstall) install(tx *Transaction) error {
	if _, err := os.Stat(c.Dir); err != nil {
		for _, d := range []string{filepath.Dir(c.Dir), c.Dir} {
			if _, err := os.Stat(d); err != nil {
				if err := tx.Track(d, true); err != nil {
					return err
				}
			}
		}
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("certificate dir: %w", err)
	}
	for path, b := range map[string][]byte{c.CertPath(): c.Chain, c.KeyPath(): c.Key} {
		if err := tx.Track(path, false); err != nil {
			return err
		}
		if err := writeFileAtomic(path, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// certDir is where a site's brought certificate is installed.
func certDir(stateDir, domain string) string {
	return filepath.Join(stateDir, "certs", nginxconf.FileStem(strings.ToLower(domain)))
}

// tlsSpec puts --tls into the spec the site is planned with.
func (d *Deployment) tlsSpec(spec *nginxconf.SiteSpec) {
	o := d.opts.TLS
	switch {
	case o == nil:
	case o.Off:
		spec.TLSOff = true
	default:
		dir := certDir(d.opts.StateDir, spec.Domain)
		spec.TLS = &nginxconf.TLSSpec{Listen: o.HTTPSListen, Cert: filepath.Join(dir, "fullchain.pem"),
			Key: filepath.Join(dir, "privkey.pem"), HSTS: o.HSTS}
		if o.Auto {
			spec.TLS.Challenge = o.ACME.Challenge
		}
	}
}

// prepareCert checks a brought certificate against the site's names as
// the change leaves them; it is installed unless the same files are.
func (d *Deployment) prepareCert(tree *nginxconf.Tree, spec nginxconf.SiteSpec) error {
	o := d.opts.TLS
	if o == nil || o.Off {
		return nil
	}
	if o.Auto {
		return d.prepareACME(tree, spec)
	}
	spec = d.Site.Spec
	ci, err := loadCert(o.CertFile, o.KeyFile, append([]string{spec.Domain}, spec.Aliases...), time.Now())
	if err != nil {
		return err
	}
	ci.Dir = certDir(d.opts.StateDir, spec.Domain)
	old, _ := os.ReadFile(ci.CertPath())
	oldKey, _ := os.ReadFile(ci.KeyPath())
	if string(old) != string(ci.Chain) || string(oldKey) != string(ci.Key) {
		d.Cert = ci
	}
	d.certLeaf = ci.Leaf.Raw
	return nil
}
