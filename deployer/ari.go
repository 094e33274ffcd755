package deployer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
)

// ARI (ACME Renewal Information, RFC 9773) is the CA saying when a
// certificate should be renewed: sooner than a third of its life when the
// CA is about to revoke it (a mis-issuance, a compromised key), or at a
// time of its choosing to spread its load. The renewal check asks for each
// certificate that is not yet due by its lifetime, no more often than the
// CA's Retry-After says (Let's Encrypt: 6 hours), and renews at the time
// picked at random inside the CA's window.

// ARIWindow is what the CA last said about one certificate.
type ARIWindow struct {
	Serial      string    `json:"serial"` // the certificate it is about (hex)
	Start       time.Time `json:"start,omitzero"`
	End         time.Time `json:"end,omitzero"`
	Selected    time.Time `json:"selected,omitzero"` // a random time in the window: the renewal is due from then
	NextCheck   time.Time `json:"next_check"`        // ask again no sooner (the CA's Retry-After)
	Unsupported bool      `json:"unsupported,omitempty"`
	Error       string    `json:"error,omitempty"` // the last request's failure (the lifetime rule still applies)
}

// How long until the CA is asked again when it does not say (no
// Retry-After), has no ARI, or could not be asked.
const (
	ariRecheck            = 6 * time.Hour
	ariRecheckUnsupported = 24 * time.Hour
	ariRecheckFailed      = time.Hour
)

// ariFresh reports whether st holds the CA's answer about leaf that is
// still to be trusted at now.
func ariFresh(st CertStatus, leaf *x509.Certificate, now time.Time) bool {
	return st.ARI != nil && st.ARI.Serial == leaf.SerialNumber.Text(16) && now.Before(st.ARI.NextCheck)
}

// ariSelected is when the CA's window in st makes leaf due (zero when st
// has no window about leaf).
func ariSelected(st CertStatus, leaf *x509.Certificate) time.Time {
	if a := st.ARI; a != nil && a.Serial == leaf.SerialNumber.Text(16) {
		return a.Selected
	}
	return time.Time{}
}

// ariDue reports whether the CA's window in st makes leaf due at now.
func ariDue(st CertStatus, leaf *x509.Certificate, now time.Time) bool {
	t := ariSelected(st, leaf)
	return !t.IsZero() && !now.Before(t)
}

// renewalInfo asks the CA about leaf. A failure is kept in the window (and
// asked again in an hour): the renewal by lifetime does not depend on it.
func (o ACMEOptions) renewalInfo(ctx context.Context, leaf *x509.Certificate, now time.Time) *ARIWindow {
	w := &ARIWindow{Serial: leaf.SerialNumber.Text(16)}
	iss, stop, err := o.issuer()
	if err != nil {
		w.Error, w.NextCheck = err.Error(), now.Add(ariRecheckFailed)
		return w
	}
	defer stop()
	ri, err := iss.GetRenewalInfo(ctx, certmagic.Certificate{Certificate: tls.Certificate{Leaf: leaf}})
	switch {
	case errors.Is(err, acme.ErrUnsupported):
		w.Unsupported, w.NextCheck = true, now.Add(ariRecheckUnsupported)
		return w
	case err != nil:
		w.Error, w.NextCheck = "renewal info from the CA: "+err.Error(), now.Add(ariRecheckFailed)
		return w
	}
	w.Start, w.End, w.Selected = ri.SuggestedWindow.Start, ri.SuggestedWindow.End, ri.SelectedTime
	w.NextCheck = now.Add(ariRecheck)
	if ri.RetryAfter != nil && ri.RetryAfter.After(now) {
		w.NextCheck = *ri.RetryAfter
	}
	return w
}
