package deployer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

func TestParseTLS(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want TLSOptions
		err  string
	}{
		{"off", TLSOptions{Off: true}, ""},
		{"cert=/a.pem,key=/a.key", TLSOptions{CertFile: "/a.pem", KeyFile: "/a.key"}, ""},
		{"key=/a.key,cert=/a.pem", TLSOptions{CertFile: "/a.pem", KeyFile: "/a.key"}, ""},
		{"cert=/a.pem", TLSOptions{}, "want both cert=FILE and key=FILE"},
		{"auto", TLSOptions{Auto: true}, ""},
		{"cert=/a,key=/b,chain=/c", TLSOptions{}, "cert=FILE,key=FILE (one you bring)"},
		{"letsencrypt", TLSOptions{}, "want auto"},
	} {
		got, err := ParseTLS(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseTLS(%q) = %v, want an error with %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseTLS(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestLoadCert: a brought certificate is checked against the site's names
// (a wildcard site needs the wildcard itself), its validity and its key;
// a chain out of order is refused.
func TestLoadCert(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, validFor time.Duration, names ...string) (string, string) {
		c, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		nginxtest.WriteCert(t, c, k, validFor, names...)
		return c, k
	}
	c, k := write("site", time.Hour, "example.com", "*.apps.example.com")
	now := time.Now()
	for _, tc := range []struct {
		names []string
		err   string
	}{
		{[]string{"example.com"}, ""},
		{[]string{"example.com", "a.apps.example.com"}, ""},
		{[]string{"*.apps.example.com"}, ""},
		{[]string{"www.example.com"}, "does not name www.example.com"},
		{[]string{"*.example.com"}, "does not name *.example.com"},
	} {
		_, err := loadCert(c, k, tc.names, now)
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("names %v: %v, want %q", tc.names, err, tc.err)
		}
	}
	if _, err := loadCert(c, k, []string{"example.com"}, now.Add(2*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired on") {
		t.Errorf("an hour after it expired: %v", err)
	}
	if _, err := loadCert(c, k, []string{"example.com"}, now.Add(-2*time.Hour)); err == nil || !strings.Contains(err.Error(), "not valid before") {
		t.Errorf("before it is valid: %v", err)
	}
	// Two unrelated self-signed certificates as a "chain": the first is not
	// signed by the second.
	c2, _ := write("other", time.Hour, "example.com")
	a, _ := os.ReadFile(c)
	b, _ := os.ReadFile(c2)
	chain := filepath.Join(dir, "chain.crt")
	if err := os.WriteFile(chain, append(a, b...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCert(chain, k, []string{"example.com"}, now); err == nil || !strings.Contains(err.Error(), "put the chain in order") {
		t.Errorf("a chain out of order: %v", err)
	}
}
