package nginxconf

import "testing"

// TestNamePrecedence checks nginx's server_name selection order (verified
// against nginx 1.22 in the reference notes): exact, longest leading
// wildcard, longest trailing wildcard, then regex.
func TestNamePrecedence(t *testing.T) {
	tests := []struct {
		host  string
		names []string // candidates, one per server, in config order
		want  string   // the winner; "" when none matches
	}{
		{"mixed.example.com", []string{"*.example.com", "Mixed.Example.COM"}, "Mixed.Example.COM"},
		{"x.a.example.com", []string{"*.example.com", "*.a.example.com"}, "*.a.example.com"},
		{"www.example.org", []string{"~^www\\..*$", "www.example.*"}, "www.example.*"},
		{"www.example.com", []string{"~^www\\..*$", "*.example.com"}, "*.example.com"},
		{"www.example.com", []string{"www.example.*", "*.example.com"}, "*.example.com"},
		{"example.com", []string{"*.example.com", ".example.com"}, ".example.com"},
		{"a.example.com", []string{".example.com"}, ".example.com"},
		{"example.com", []string{"*.example.com"}, ""},
		{"api7.example.io", []string{`"~^api\d{1,3}\.example\.io$"`}, `"~^api\d{1,3}\.example\.io$"`},
		{"anything", []string{"_"}, ""},
		{"a.b", []string{"~^a", "~b$"}, "~^a"}, // first regex in order wins
	}
	for _, tc := range tests {
		best, bestScore := "", -1
		for _, n := range tc.names {
			if s, ok := nameMatch(n, tc.host); ok && s > bestScore {
				best, bestScore = n, s
			}
		}
		if best != tc.want {
			t.Errorf("host %s among %q: got %q, want %q", tc.host, tc.names, best, tc.want)
		}
	}
}

func TestSameName(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"example.com", "example.com", true},
		{"example.com", "EXAMPLE.com", true},
		{"example.com", ".example.com", true},
		{"*.example.com", ".example.com", true},
		{"*.example.com", "*.example.com", true},
		{"www.example.com", "*.example.com", false},
		{"example.com", "www.example.com", false},
		{"example.*", "example.*", true},
		{"~^a$", "~^a$", true},
	}
	for _, tc := range tests {
		if got := sameName(tc.a, tc.b); got != tc.want {
			t.Errorf("sameName(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestListenKey(t *testing.T) {
	tests := map[string]string{
		"80":                        "*:80",
		"*:80":                      "*:80",
		"0.0.0.0:80":                "*:80",
		"80 default_server":         "*:80",
		"127.0.0.1":                 "127.0.0.1:80",
		"localhost:8080":            "127.0.0.1:8080",
		"[::]:80":                   "[::]:80",
		"[::1]":                     "[::1]:80",
		"443 ssl http2":             "*:443",
		"unix:/run/nginx.sock":      "unix:/run/nginx.sock",
		"127.0.0.1:8443 ssl":        "127.0.0.1:8443",
		"":                          "*:80",
		"example.internal:8080 ssl": "example.internal:8080",
	}
	for in, want := range tests {
		if got := listenKey(in); got != want {
			t.Errorf("listenKey(%q) = %q, want %q", in, got, want)
		}
	}
}
