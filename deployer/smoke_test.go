package deployer

import (
	"reflect"
	"testing"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
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

// TestFindAppPrefersTheCurrentPool: right after an undeploy and a new
// deploy of the same app the daemon lists the retiring pool too; the
// deploy must watch the current one (it waited 10 s for the retiring
// pool's count to move).
func TestFindAppPrefersTheCurrentPool(t *testing.T) {
	spec := nginxconf.AppSpec{Venv: "/v", AppDir: "/a", Module: "m"}
	same := func(num int, retiring bool) pool.AppStats {
		return pool.AppStats{Num: num, Pyhome: "/v", Chdir: "/a", Script: "m", Retiring: retiring}
	}
	other := pool.AppStats{Num: 9, Pyhome: "/v", Chdir: "/b", Script: "m"}
	for _, tc := range []struct {
		name    string
		apps    []pool.AppStats
		wantNum int
		wantOK  bool
	}{
		{"none", []pool.AppStats{other}, 0, false},
		{"one", []pool.AppStats{other, same(2, false)}, 2, true},
		{"retiring listed first", []pool.AppStats{same(1, true), same(2, false)}, 2, true},
		{"current listed first", []pool.AppStats{same(2, false), same(3, true)}, 2, true},
		{"only a retiring one", []pool.AppStats{same(1, true)}, 1, true},
	} {
		got, ok := findApp(tc.apps, spec)
		if ok != tc.wantOK || got.Num != tc.wantNum {
			t.Errorf("%s: findApp = app %d, %v; want app %d, %v", tc.name, got.Num, ok, tc.wantNum, tc.wantOK)
		}
	}
}
