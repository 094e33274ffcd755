package deployer

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
)

// ACMEPlan is a certificate to order before the site's TLS goes live.
type ACMEPlan struct {
	Options ACMEOptions
	Names   []string
	// First is the site as HTTP with the challenge location: written and
	// made live before the order when the site does not have it yet.
	First *nginxconf.SiteChanges
	// Replaces is the directory of the CA whose valid certificate this
	// order replaces (the deploy names another CA: staging, then the real
	// one); "" for none.
	Replaces string
}

// ACMEMetaChange is a new acme.json for a valid ACME certificate.
type ACMEMetaChange struct {
	Dir      string // the certificate's dir
	Meta     ACMEMeta
	Describe string // what changes, for the plan
}

// renewFraction: a certificate is renewed once this fraction of its
// lifetime is left (Let's Encrypt's lifetimes are shrinking to 45 days:
// nothing here assumes 90).
const renewFraction = 3

// renewAt is when c is due by its lifetime: a third of it left.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotAfter.Add(-c.NotAfter.Sub(c.NotBefore) / renewFraction)
}

// dueForRenewal reports whether c should be replaced now.
func dueForRenewal(c *x509.Certificate, now time.Time) bool { return now.After(renewAt(c)) }

// prepareACME decides whether a --tls auto deploy orders a certificate: not
// when the installed one names the site and is not due for renewal (a
// retried deploy makes no new order). spec is the user's.
func (d *Deployment) prepareACME(tree *nginxconf.Tree, spec nginxconf.SiteSpec) error {
	final := d.Site.Spec
	names := append([]string{final.Domain}, final.Aliases...)
	for _, n := range names {
		if strings.Contains(n, "*") {
			return invalidf("--tls auto: %s is a wildcard, which HTTP-01 cannot validate: bring its certificate with --tls cert=FILE,key=FILE", n)
		}
	}
	now := time.Now()
	o := d.opts.TLS.ACME
	o.Storage = acmeStorage(d.opts.StateDir)
	plan := &ACMEPlan{Options: o, Names: names}
	// A valid certificate from the same CA is kept (a brought one at the
	// same place is not ACME's: one is ordered, so the daemon has
	// something to renew).
	dir := filepath.Dir(final.TLS.Cert)
	if ci, err := loadCert(final.TLS.Cert, final.TLS.Key, names, now); err == nil && !dueForRenewal(ci.Leaf, now) {
		if m, err := readACMEMeta(dir); err == nil {
			if m.Options.DirectoryURL() != o.DirectoryURL() {
				plan.Replaces = m.Options.DirectoryURL()
			} else {
				d.certLeaf = ci.Leaf.Raw
				next := ACMEMeta{Domain: final.Domain, Names: names, Options: o}
				if what := metaChanges(m, next); what != "" {
					d.ACMEMeta = &ACMEMetaChange{Dir: dir, Meta: next, Describe: what}
				}
				return nil
			}
		}
	}
	if !servesChallenge(tree, final) {
		pending := spec
		t := *spec.TLS
		t.Pending = true
		pending.TLS = &t
		first, err := tree.PlanSite(pending)
		if err != nil {
			return err
		}
		plan.First = first
	}
	d.ACME = plan
	return nil
}

// metaChanges says what differs between how a certificate is renewed and
// how this deploy would have it renewed ("" when nothing does).
func metaChanges(old, next ACMEMeta) string {
	var what []string
	diff := func(name, a, b string) {
		if a == b {
			return
		}
		if a == "" {
			a = "none"
		}
		if b == "" {
			b = "none"
		}
		what = append(what, fmt.Sprintf("%s %s → %s", name, a, b))
	}
	diff("names", strings.Join(old.Names, " "), strings.Join(next.Names, " "))
	diff("contact", old.Options.Email, next.Options.Email)
	diff("CA root", old.Options.CARoot, next.Options.CARoot)
	diff("challenge address", old.Options.Challenge, next.Options.Challenge)
	diff("validation port", strconv.Itoa(old.Options.HTTPPort), strconv.Itoa(next.Options.HTTPPort))
	diff("resolver", old.Options.Resolver, next.Options.Resolver)
	return strings.Join(what, "; ")
}

// acmeStorage is the ACME account's dir.
func acmeStorage(stateDir string) string { return filepath.Join(stateDir, "acme") }

// servesChallenge reports whether the site's file, as it is, already
// proxies the challenge to where this deploy answers it.
func servesChallenge(tree *nginxconf.Tree, spec nginxconf.SiteSpec) bool {
	for _, b := range tree.Servers() {
		for _, n := range b.ServerNames {
			if n == spec.Domain && b.Managed && b.ACMEChallenge == spec.TLS.Challenge {
				return true
			}
		}
	}
	return false
}

// precheck asks, for each name, what the CA will ask before it is asked:
// the name resolves, port HTTPPort answers, and the answer for a probe
// token under /.well-known/acme-challenge/ is the probe, served on the
// challenge address — not a redirect to https by a CDN or an old block,
// not another machine. A failure costs no failed validation at the CA.
func (o ACMEOptions) precheck(ctx context.Context, names []string) error {
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	probe := "pyvhost-probe-" + hex.EncodeToString(token)
	l, err := o.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Release()
	ln, err := net.Listen("tcp", o.Challenge)
	if err != nil {
		return fmt.Errorf("answer ACME challenges on %s: %w", o.Challenge, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/acme-challenge/"+probe {
			_, _ = io.WriteString(w, probe)
			return
		}
		http.NotFound(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	for _, n := range names {
		if err := o.probe(ctx, n, probe); err != nil {
			return fmt.Errorf("the CA could not validate %s, so nothing was asked of it: %w", n, err)
		}
	}
	return nil
}

func (o ACMEOptions) probe(ctx context.Context, name, token string) error {
	r := net.DefaultResolver
	if o.Resolver != "" {
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, o.Resolver)
		}}
	}
	ips, err := r.LookupHost(ctx, name)
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("%s does not resolve (%v): point its DNS at this machine first", name, err)
	}
	port := o.HTTPPort
	if port == 0 {
		port = 80
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	path := "/.well-known/acme-challenge/" + token
	for _, ip := range ips {
		url := "http://" + net.JoinHostPort(ip, strconv.Itoa(port)) + path
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		req.Host = name
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("%s resolves to %s, where port %d does not answer (%v): open it, or point the name here", name, ip, port, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			return fmt.Errorf("http://%s%s (at %s) redirects to %s: a CDN or another server block sends the challenge elsewhere; let it through to this nginx", name, path, ip, resp.Header.Get("Location"))
		case resp.StatusCode != 200 || string(body) != token:
			return fmt.Errorf("http://%s%s (at %s) answered %s, not the probe: the name reaches another server, or nginx does not route it to pyvhost's site", name, path, ip, resp.Status)
		}
	}
	return nil
}
