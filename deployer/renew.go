package deployer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
)

// A --tls auto site's certificate dir (STATE/certs/DOMAIN) keeps, beside
// the certificate and key, how it was obtained (acme.json: the daemon
// renews from it) and how its last renewal went (status.json: `pyvhost
// certs` shows it).

// ACMEMeta is how a site's certificate is obtained again.
type ACMEMeta struct {
	Domain  string      `json:"domain"`
	Names   []string    `json:"names"`
	Options ACMEOptions `json:"options"`
}

// CertStatus is a certificate's last renewal attempt.
type CertStatus struct {
	LastAttempt time.Time  `json:"last_attempt,omitzero"`
	LastError   string     `json:"last_error,omitempty"`
	Failures    int        `json:"failures,omitempty"`
	NextAttempt time.Time  `json:"next_attempt,omitzero"` // backoff after a failure
	ARI         *ARIWindow `json:"ari,omitempty"`         // the CA's renewal info about the current certificate
}

func metaPath(dir string) string   { return filepath.Join(dir, "acme.json") }
func statusPath(dir string) string { return filepath.Join(dir, "status.json") }

// ACMESites are the sites whose certificates are obtained by ACME.
func ACMESites(stateDir string) ([]ACMEMeta, error) {
	paths, err := filepath.Glob(filepath.Join(stateDir, "certs", "*", "acme.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []ACMEMeta
	for _, p := range paths {
		m, err := readACMEMeta(filepath.Dir(p))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// readACMEMeta is how the certificate in dir is renewed.
func readACMEMeta(dir string) (ACMEMeta, error) {
	var m ACMEMeta
	b, err := os.ReadFile(metaPath(dir))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s is damaged: %w", metaPath(dir), err)
	}
	return m, nil
}

// ReadCertStatus is a site's last renewal attempt (zero when none).
func ReadCertStatus(stateDir, domain string) CertStatus {
	var st CertStatus
	if b, err := os.ReadFile(statusPath(certDir(stateDir, domain))); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

// renewBackoff is how long after the n-th failure in a row the next
// attempt waits: 1, 2, 4 … minutes, at most 6 hours (Let's Encrypt's
// failed-validation limit is per hour).
func renewBackoff(n int) time.Duration {
	d := time.Minute << min(n-1, 9)
	return min(d, 6*time.Hour)
}

// Renewal is one renewal check's outcome.
type Renewal struct {
	Domain  string
	Renewed bool
	Err     error
}

// RenewScope is what a renewal check covers.
type RenewScope struct {
	Domain string // only this site's certificate ("" = all)
	Force  bool   // renew even what is not due
	// AskCA asks the CA's renewal info now, not when its last answer's
	// Retry-After says (a user's `certs renew`).
	AskCA bool
	// Lock takes the deploy lock for installing a renewed certificate, if
	// the caller does not hold it already (the daemon: ordering, which can
	// take minutes, does not keep deploys waiting).
	Lock func() (*Lock, error)
}

// RenewDue renews every ACME certificate in scope that is due — a third of
// its life left, or the CA's renewal info (ARI) says so: each new
// certificate is written over the old atomically, nginx -t must pass (else
// the old files go back), then nginx reloads. A failure keeps the old
// certificate serving and backs off. The caller holds the deploy lock, or
// gives scope.Lock.
func RenewDue(ctx context.Context, stateDir string, nginx *Nginx, scope RenewScope, now time.Time) []Renewal {
	sites, err := ACMESites(stateDir)
	if err != nil {
		return []Renewal{{Err: err}}
	}
	served, challenge := servedCerts(nginx.Conf)
	var out []Renewal
	for _, m := range sites {
		dir := certDir(stateDir, m.Domain)
		if scope.Domain != "" && m.Domain != scope.Domain {
			continue
		}
		if !served[filepath.Join(dir, "fullchain.pem")] {
			continue // the site went back to HTTP, was given a brought certificate, or is gone
		}
		if c := challenge[m.Domain]; c != "" {
			m.Options.Challenge = c // where nginx sends the challenge now (a redeploy may have moved it)
		}
		if r, ok := renewIfDue(ctx, stateDir, m, nginx, scope, now); ok {
			out = append(out, r)
		}
	}
	return out
}

// renewIfDue renews one site's certificate if it is due; ok is whether it
// was tried. The CA's renewal info it asked for is kept in status.json.
func renewIfDue(ctx context.Context, stateDir string, m ACMEMeta, nginx *Nginx, scope RenewScope, now time.Time) (Renewal, bool) {
	dir := certDir(stateDir, m.Domain)
	ci, err := loadCert(filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem"), m.Names, now)
	st := ReadCertStatus(stateDir, m.Domain)
	due := scope.Force || err != nil || dueForRenewal(ci.Leaf, now)
	if !due && (scope.AskCA || !ariFresh(st, ci.Leaf, now)) {
		st.ARI = m.Options.renewalInfo(ctx, ci.Leaf, now)
		if err := writeJSONAtomic(statusPath(dir), st); err != nil {
			return Renewal{Domain: m.Domain, Err: err}, true
		}
	}
	due = due || ariDue(st, ci.Leaf, now)
	if !due || (!scope.Force && now.Before(st.NextAttempt)) {
		return Renewal{}, false
	}
	r := Renewal{Domain: m.Domain, Err: renewOne(ctx, stateDir, dir, m, nginx, scope.Lock)}
	r.Renewed = r.Err == nil
	st.LastAttempt = now
	if r.Err != nil {
		st.Failures++
		st.LastError = r.Err.Error()
		st.NextAttempt = now.Add(renewBackoff(st.Failures))
	} else {
		st = CertStatus{LastAttempt: now} // the CA's renewal info was about the old certificate
	}
	if err := writeJSONAtomic(statusPath(dir), st); err != nil && r.Err == nil {
		r.Err = err
	}
	return r, true
}

func renewOne(ctx context.Context, stateDir, dir string, m ACMEMeta, nginx *Nginx, lock func() (*Lock, error)) error {
	ci, err := m.Options.Obtain(ctx, m.Names)
	if err != nil {
		return err
	}
	ci.Dir = dir
	if lock != nil {
		l, err := lock()
		if err != nil {
			return fmt.Errorf("install the renewed certificate: %w", err)
		}
		defer l.Release()
		// A deploy may have changed the site meanwhile.
		if served, _ := servedCerts(nginx.Conf); !served[filepath.Join(dir, "fullchain.pem")] {
			return fmt.Errorf("the site stopped serving this certificate while it was renewed: the new one is not installed")
		}
	}
	tx, err := Begin(stateDir, nil)
	if err != nil {
		return err
	}
	if err := ci.install(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if r, err := nginx.Test(ctx); err != nil || !r.OK {
		return errors.Join(fmt.Errorf("nginx -t with the renewed certificate: %v %v; the old one is back", err, r.Errors), tx.Rollback())
	}
	if err := nginx.Reload(ctx); err != nil {
		return errors.Join(fmt.Errorf("reload nginx with the renewed certificate: %w", err), tx.Rollback())
	}
	return tx.Commit()
}

// writeACMEMeta records how a site's certificate is obtained, in tx.
func writeACMEMeta(dir string, m ACMEMeta, tx *Transaction) error {
	if err := tx.Track(metaPath(dir), false); err != nil {
		return err
	}
	return writeJSONAtomic(metaPath(dir), m)
}

// servedCerts are the certificate files nginx's config serves, and where
// each site's HTTP block proxies ACME's challenge (by domain).
func servedCerts(conf string) (map[string]bool, map[string]string) {
	certs, challenge := map[string]bool{}, map[string]string{}
	tree, err := nginxconf.Load(conf)
	if err != nil {
		return certs, challenge
	}
	for _, b := range tree.Servers() {
		if b.TLSCert != "" {
			certs[b.TLSCert] = true
		}
		if b.ACMEChallenge != "" && len(b.ServerNames) > 0 {
			challenge[b.ServerNames[0]] = b.ACMEChallenge
		}
	}
	return certs, challenge
}

// CertInfo is one TLS site's certificate as `pyvhost certs` shows it.
type CertInfo struct {
	Domain      string    `json:"domain"`
	Names       []string  `json:"names"`
	Issuer      string    `json:"issuer"`
	NotAfter    time.Time `json:"not_after"`
	Auto        bool      `json:"auto"`                  // obtained and renewed by ACME
	NextRenewal time.Time `json:"next_renewal,omitzero"` // auto: when it is due (or the next try after a failure)
	RenewalBy   string    `json:"renewal_by,omitempty"`  // auto: "ca" when NextRenewal is the CA's choice (its renewal info), else by lifetime
	LastError   string    `json:"last_error,omitempty"`  // auto: the last renewal's failure
	ARIError    string    `json:"ari_error,omitempty"`   // auto: why the CA's renewal info could not be had (renewal by lifetime goes on)
	Error       string    `json:"error,omitempty"`       // the installed files cannot be read
}

// Certs describes the certificate of every TLS site nginx serves from
// pyvhost's files.
func Certs(stateDir, conf string) ([]CertInfo, error) {
	tree, err := nginxconf.Load(conf)
	if err != nil {
		return nil, err
	}
	return CertsIn(stateDir, tree), nil
}

// CertsIn is Certs of a tree already loaded (the daemon's re-read: a
// second parse of 10,000 sites would double its cost).
func CertsIn(stateDir string, tree *nginxconf.Tree) []CertInfo {
	if !tree.Mentions("ssl_certificate") {
		return nil // no TLS server anywhere: no walk of every server block
	}
	var out []CertInfo
	for _, b := range tree.Servers() {
		if !b.Managed || b.TLSCert == "" || len(b.ServerNames) == 0 {
			continue
		}
		info := CertInfo{Domain: b.ServerNames[0]}
		dir := filepath.Dir(b.TLSCert)
		_, err := os.Stat(metaPath(dir))
		info.Auto = err == nil
		ci, err := loadCert(b.TLSCert, b.TLSKey, nil, time.Now())
		if err != nil {
			info.Error = err.Error()
			out = append(out, info)
			continue
		}
		info.Names, info.Issuer, info.NotAfter = ci.Leaf.DNSNames, ci.Leaf.Issuer.CommonName, ci.Leaf.NotAfter
		if info.Auto {
			info.NextRenewal = renewAt(ci.Leaf)
			st := ReadCertStatus(stateDir, info.Domain)
			if t := ariSelected(st, ci.Leaf); !t.IsZero() && t.Before(info.NextRenewal) {
				info.NextRenewal, info.RenewalBy = t, "ca"
			}
			if st.ARI != nil {
				info.ARIError = st.ARI.Error
			}
			if st.LastError != "" {
				info.LastError, info.NextRenewal = st.LastError, st.NextAttempt
			}
		}
		out = append(out, info)
	}
	return out
}
