package main

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// TestTablesFitTheTerminal: sites, ctl apps, certs and rollback --list at
// 80 and 120 columns (golden: paths shortened in the middle, the least
// important columns dropped first) and in full (--wide, or no terminal);
// no line of a fitted table is wider than the terminal.
func TestTablesFitTheTerminal(t *testing.T) {
	u := newUI(nil, true)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	saved := time.Local
	time.Local = time.UTC // rollback --list prints local times
	defer func() { time.Local = saved }()
	tables := map[string]func(width int) string{
		"sites": func(w int) string { return sitesTable(u, tableSites(), true, true, w) },
		"apps":  func(w int) string { return appsTable(u, tableApps(now), w, now) },
		"certs": func(w int) string { return certsTable(u, tableCerts(now), w) },
		"releases": func(w int) string {
			return releasesTable(u, tableReleases(now), w)
		},
	}
	for name, render := range tables {
		for _, width := range []int{80, 120, 0} {
			got := render(width)
			for _, line := range strings.Split(got, "\n") {
				if width > 0 && lipgloss.Width(line) > width {
					t.Errorf("%s at %d columns: a line of %d: %q", name, width, lipgloss.Width(line), line)
				}
			}
			label := fmt.Sprint(width)
			if width == 0 {
				label = "wide"
			}
			nginxtest.CheckGolden(t, "../../testdata/golden/tables/"+name+"-"+label+".txt", []byte(got+"\n"))
		}
	}
}

func tableSites() []nginxconf.ServerBlock {
	app := func(loc, chdir, script, venv, sock, state string) nginxconf.App {
		return nginxconf.App{Location: loc, Chdir: chdir, Script: script, Pyhome: venv, UwsgiPass: sock, State: state}
	}
	return []nginxconf.ServerBlock{
		{File: "/etc/nginx/sites-enabled/shop.example.com.conf", Line: 3, ServerNames: []string{"shop.example.com", "www.shop.example.com"},
			Listen: []string{"443 ssl", "80"}, Managed: true, Apps: []nginxconf.App{
				app("/", "/srv/www/shop.example.com/current/app", "shop.wsgi:application", "/srv/www/shop.example.com/.venv", "unix:/run/pyvhost/apps/shop.example.com.sock", "ready"),
				app("/api/", "/srv/www/shop.example.com/current/api", "api.main:app", "/srv/www/shop.example.com/.venv", "unix:/run/pyvhost/apps/shop.example.com-api.sock", "cold")}},
		{File: "/etc/nginx/conf.d/blog.conf", Line: 1, ServerNames: []string{"blog.example.org"}, Listen: []string{"80"},
			Apps: []nginxconf.App{app("/", "/home/anna/projects/blog", "blog:app", "/home/anna/.virtualenvs/blog", "127.0.0.1:9090", "failed")}},
	}
}

func tableApps(now time.Time) []pool.AppStats {
	last := float64(now.Add(-42*time.Second).UnixMilli()) / 1000
	return []pool.AppStats{
		{Name: "shop.example.com", ID: "66facc9d", State: pool.Ready, Processes: 4, Requests: 120345, Errors: 12, AvgLatencyMS: 3.21,
			P99LatencyMS: 48.5, ZygoteRSS: 30 << 20, LastRequest: last, Own: "-p 4", EnvVars: 6,
			Workers: []pool.WorkerStats{{State: "busy", RSS: 40 << 20}, {State: "idle", RSS: 38 << 20}}},
		{Name: "shop.example.com/api", ID: "a1b2c3d4", State: pool.Ready, Interface: "asgi", Processes: 2, Requests: 9, AvgLatencyMS: 1.5,
			P99LatencyMS: 2.0, LastRequest: last},
		{Name: "blog.example.org", ID: "0badcafe", State: pool.Failed, Processes: 2, LastError: "ImportError"},
	}
}

func tableCerts(now time.Time) []deployer.CertInfo {
	return []deployer.CertInfo{
		{Domain: "shop.example.com", Names: []string{"shop.example.com", "www.shop.example.com"}, Issuer: "(STAGING) Let's Encrypt R11",
			NotAfter: now.Add(60 * 24 * time.Hour), Auto: true, NextRenewal: now.Add(30 * 24 * time.Hour), RenewalBy: "ca"},
		{Domain: "blog.example.org", Names: []string{"blog.example.org"}, Issuer: "Example Corp CA", NotAfter: now.Add(300 * 24 * time.Hour)},
		{Domain: "old.example.net", Names: []string{"old.example.net"}, Issuer: "Let's Encrypt R10", NotAfter: now.Add(5 * 24 * time.Hour),
			Auto: true, NextRenewal: now.Add(time.Hour), LastError: "urn:ietf:params:acme:error:connection: 203.0.113.7: Timeout during connect"},
	}
}

func tableReleases(now time.Time) []deployer.Release {
	spec := func(apps ...nginxconf.AppSpec) nginxconf.SiteSpec { return nginxconf.SiteSpec{Apps: apps} }
	return []deployer.Release{
		{N: 1, Time: now.Add(-48 * time.Hour), Spec: spec(nginxconf.AppSpec{Mount: "/", Module: "shop.wsgi"})},
		{N: 2, Time: now.Add(-time.Hour), Spec: spec(nginxconf.AppSpec{Mount: "/", Module: "shop.wsgi:application"},
			nginxconf.AppSpec{Mount: "/api", Module: "api.main:app"}, nginxconf.AppSpec{Mount: "/admin", Module: "shop.admin.wsgi:application"},
			nginxconf.AppSpec{Mount: "/reports", Module: "reports.asgi:application"})},
	}
}

func TestShortenMiddle(t *testing.T) {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.ANSI256) // colour, as on a terminal
	red := r.NewStyle().Foreground(lipgloss.Color("9"))
	tests := []struct {
		in   string
		w    int
		want string
	}{
		{"/srv/www/shop.example.com/current/app", 20, "/srv/www/…urrent/app"},
		{"/srv/www/shop.example.com/current/app", 21, "/srv/www/s…urrent/app"},
		{"short", 20, "short"},
		{"/é/ü/ö/ä/long/long/long", 10, "/é/ü…/long"},
		{"ab", 1, "ab"}, // too narrow to say anything: left whole
	}
	for _, tc := range tests {
		if got := shortenMiddle(tc.in, tc.w); got != tc.want || (lipgloss.Width(got) > tc.w && tc.w >= 3) {
			t.Errorf("shortenMiddle(%q, %d) = %q, want %q", tc.in, tc.w, got, tc.want)
		}
	}
	// A coloured cell: its escape codes are not cut in half.
	colored := red.Render("renewal failed: a long message about a timeout")
	if !strings.Contains(colored, "\x1b") {
		t.Fatalf("no colour to test with: %q", colored)
	}
	if got := shortenMiddle(colored, 20); strings.Contains(got, "\x1b") || lipgloss.Width(got) != 20 {
		t.Errorf("a coloured cell shortened: %q", got)
	}
	// Nothing left to drop or shorten: the widths stay, no loop.
	if w := fitColumns([]col{{name: "A"}, {name: "B"}}, [][]string{{"aaaaaaaa", "bbbbbbbb"}}, 5); w[0] != 8 || w[1] != 8 {
		t.Errorf("fitColumns with nothing to give: %v", w)
	}
}
