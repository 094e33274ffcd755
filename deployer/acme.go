package deployer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// ACME certificates come from certmagic's ACME issuer (Caddy's: the ACME
// account, the order, retries, and the HTTP-01 answer), asked for one
// certificate naming all of a site's names — nginx serves one server
// block with one certificate, where certmagic's own managed flow would get
// one per name for a Go server choosing by SNI. The certificate and key
// are then installed as a brought one is (STATE/certs/DOMAIN), and pyvhost
// schedules renewals itself.

// Let's Encrypt's directories.
const (
	LetsEncrypt        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// ACMEOptions is where and how certificates are obtained.
type ACMEOptions struct {
	CA      string // the directory URL; "" = Let's Encrypt (Staging: its staging directory)
	Staging bool
	Email   string // the account's contact; "" = none
	CARoot  string // a PEM file of roots to trust when talking to the CA (step-ca, pebble); "" = the system's
	// Challenge is the loopback ADDR:PORT HTTP-01 answers are served on
	// while an order is validated: the site's HTTP block proxies
	// /.well-known/acme-challenge/ there.
	Challenge string
	Storage   string // the ACME account's dir (STATE/acme), root-only
	// HTTPPort is where the CA connects to validate (80; a test CA may
	// use another), Resolver a DNS server to look names up with as the
	// CA does ("" = the system's): what the pre-check asks.
	HTTPPort int
	Resolver string
}

// DirectoryURL is the CA's directory the options name.
func (o ACMEOptions) DirectoryURL() string {
	switch {
	case o.CA != "":
		return o.CA
	case o.Staging:
		return LetsEncryptStaging
	}
	return LetsEncrypt
}

// Obtain orders a certificate for names (the first is the site's domain)
// and returns it with a new key, ready to install.
func (o ACMEOptions) Obtain(ctx context.Context, names []string) (*CertInstall, error) {
	l, err := o.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer l.Release()
	iss, stop, err := o.issuer()
	if err != nil {
		return nil, err
	}
	defer stop()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, err
	}
	issued, err := iss.Issue(ctx, csr)
	if err != nil {
		return nil, fmt.Errorf("the CA (%s) did not issue a certificate for %v: %w", o.DirectoryURL(), names, err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	ci := &CertInstall{Chain: issued.Certificate, Key: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})}
	block, _ := pem.Decode(ci.Chain)
	if block == nil {
		return nil, errors.New("the CA's certificate is not PEM")
	}
	if ci.Leaf, err = x509.ParseCertificate(block.Bytes); err != nil {
		return nil, fmt.Errorf("the CA's certificate: %w", err)
	}
	return ci, nil
}

// acmeLockWait bounds the wait for another order (certmagic gives one
// two minutes).
const acmeLockWait = 3 * time.Minute

// lock takes the ACME lock beside the account's dir: the challenge
// address is bound by one order (or pre-check) at a time.
func (o ACMEOptions) lock(ctx context.Context) (*Lock, error) {
	return WaitACMELock(ctx, filepath.Dir(o.Storage), "a certificate order", acmeLockWait)
}

// issuer is certmagic's ACME issuer for the options, and what stops the
// cache certmagic's config needs (its maintenance goroutine).
func (o ACMEOptions) issuer() (*certmagic.ACMEIssuer, func(), error) {
	host, port, err := net.SplitHostPort(o.Challenge)
	if err != nil {
		return nil, nil, fmt.Errorf("ACME challenge address %q: %w", o.Challenge, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, nil, fmt.Errorf("ACME challenge address %q: %w", o.Challenge, err)
	}
	if err := os.MkdirAll(o.Storage, 0o700); err != nil {
		return nil, nil, fmt.Errorf("ACME storage: %w", err)
	}
	var cfg *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		Logger:           zap.NewNop(),
	})
	cfg = certmagic.New(cache, certmagic.Config{Storage: &certmagic.FileStorage{Path: filepath.Clean(o.Storage)}, Logger: zap.NewNop()})
	tmpl := certmagic.ACMEIssuer{CA: o.DirectoryURL(), TestCA: o.DirectoryURL(), Email: o.Email, Agreed: true,
		DisableTLSALPNChallenge: true, ListenHost: host, AltHTTPPort: p, Logger: zap.NewNop(),
		CertObtainTimeout: 2 * time.Minute}
	if o.CARoot != "" {
		b, err := os.ReadFile(o.CARoot)
		if err != nil {
			cache.Stop()
			return nil, nil, fmt.Errorf("--acme-ca-root: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			cache.Stop()
			return nil, nil, fmt.Errorf("--acme-ca-root %s: no PEM certificate in it", o.CARoot)
		}
		tmpl.TrustedRoots = pool
	}
	iss := certmagic.NewACMEIssuer(cfg, tmpl)
	cfg.Issuers = []certmagic.Issuer{iss}
	return iss, cache.Stop, nil
}
