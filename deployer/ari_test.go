package deployer

import (
	"crypto/x509"
	"math/big"
	"testing"
	"time"
)

// TestARIWindow: the CA's renewal info is trusted only about the
// certificate it was asked about and only until its Retry-After; the
// certificate is due from the time chosen in the window, never when the
// CA gave no window (no ARI, or the request failed).
func TestARIWindow(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(0xabc)}
	win := func(serial string, selected, next time.Duration) *ARIWindow {
		return &ARIWindow{Serial: serial, Selected: now.Add(selected), NextCheck: now.Add(next)}
	}
	for _, tc := range []struct {
		name       string
		ari        *ARIWindow
		fresh, due bool
	}{
		{"never asked", nil, false, false},
		{"window ahead", win("abc", time.Hour, 6*time.Hour), true, false},
		{"chosen time passed", win("abc", -time.Minute, 6*time.Hour), true, true},
		{"chosen time is now", win("abc", 0, 6*time.Hour), true, true},
		{"retry-after passed: ask again", win("abc", time.Hour, -time.Second), false, false},
		{"about the certificate before the renewal", win("abd", -time.Hour, 6*time.Hour), false, false},
		{"the CA has no ARI", &ARIWindow{Serial: "abc", Unsupported: true, NextCheck: now.Add(ariRecheckUnsupported)}, true, false},
		{"the request failed", &ARIWindow{Serial: "abc", Error: "timeout", NextCheck: now.Add(ariRecheckFailed)}, true, false},
	} {
		st := CertStatus{ARI: tc.ari}
		if got := ariFresh(st, leaf, now); got != tc.fresh {
			t.Errorf("%s: fresh = %v, want %v", tc.name, got, tc.fresh)
		}
		if got := ariDue(st, leaf, now); got != tc.due {
			t.Errorf("%s: due = %v, want %v", tc.name, got, tc.due)
		}
	}
}
