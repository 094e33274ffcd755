package deployer

import (
	"reflect"
	"testing"

	"github.com/pyvhost/pyvhost/nginxconf"
)

func TestSmokeHosts(t *testing.T) {
	for _, tc := range []struct {
		domain  string
		aliases []string
		want    []string
	}{
		{"example.com", nil, []string{"example.com"}},
		{"example.com", []string{"www.example.com", "example.org"}, []string{"example.com", "www.example.com", "example.org"}},
		{"*.example.com", nil, []string{"pyvhost-smoke.example.com"}},
		{"example.com", []string{".example.net", "www.example.*", "~^app\\d+\\.example\\.com$"}, []string{"example.com", "example.net", "www.example.pyvhost-smoke"}},
	} {
		got := smokeHosts(nginxconf.SiteSpec{Domain: tc.domain, Aliases: tc.aliases})
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("smokeHosts(%s %v) = %v, want %v", tc.domain, tc.aliases, got, tc.want)
		}
	}
}
