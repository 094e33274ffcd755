package nginxconf

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

func seedApp(n string) SiteSpec {
	return SiteSpec{
		Domain: "app" + n + ".example.com",
		Apps: []AppSpec{{
			Socket: "127.0.0.1:9090",
			Venv:   "/var/www/myenv",
			AppDir: "/var/www/myappdir" + n,
			Module: "myapp" + n,
		}},
	}
}

var renderCases = []struct {
	name string
	spec SiteSpec
	opt  RenderOptions
}{
	{"seed-app1", seedApp("1"), RenderOptions{IncludeParams: true}},
	{"seed-app2", seedApp("2"), RenderOptions{IncludeParams: true}},
	{"defaults", SiteSpec{
		Domain: "hello.example.com",
		Apps:   []AppSpec{{AppDir: "/srv/hello", Module: "hello"}},
	}, RenderOptions{IncludeParams: true}},
	{"two-mounts", SiteSpec{
		Domain: "example.com",
		Apps: []AppSpec{
			{Mount: "/blog/", AppDir: "/srv/blog", Module: "blog.wsgi:application"},
			{Mount: "/", AppDir: "/srv/site", Module: "site.wsgi"},
		},
		Statics: []StaticSpec{{URL: "/static/", Dir: "/srv/site/static/"}, {URL: "/media", Dir: "/srv/site/media"}},
	}, RenderOptions{IncludeParams: true}},
	{"aliases-listen", SiteSpec{
		Domain:  "Shop.Example.com",
		Aliases: []string{"www.shop.example.com", "shop.example.net", "www.shop.example.com"},
		Listen:  "127.0.0.1:8080",
		Apps:    []AppSpec{{AppDir: "/srv/shop", Venv: "/opt/venvs/shop", Module: "shop.app:create", Socket: "unix:/run/shop/uwsgi.sock"}},
	}, RenderOptions{IncludeParams: true}},
	{"ipv6-wildcard", SiteSpec{
		Domain:  "*.apps.example.com",
		Aliases: []string{"apps.example.*"},
		Listen:  "[::]:8080",
		Apps:    []AppSpec{{AppDir: "/srv/tenant", Module: "tenant"}},
	}, RenderOptions{IncludeParams: true}},
	{"inline-params", SiteSpec{
		Domain: "noparams.example.com",
		Apps:   []AppSpec{{Mount: "/api", AppDir: "/srv/api", Module: "api"}},
	}, RenderOptions{IncludeParams: false}},
	{"static-only", SiteSpec{
		Domain:  "files.example.com",
		Statics: []StaticSpec{{URL: "/", Dir: "/srv/files"}},
	}, RenderOptions{IncludeParams: true}},
	{"tls", SiteSpec{
		Domain:  "secure.example.com",
		Aliases: []string{"www.secure.example.com"},
		Apps:    []AppSpec{{AppDir: "/srv/secure", Module: "secure.wsgi"}},
		TLS:     &TLSSpec{Cert: goldenCert, Key: goldenKey, Challenge: "127.0.0.1:8402"},
	}, RenderOptions{IncludeParams: true}},
	{"tls-port-hsts", SiteSpec{
		Domain:  "secure.example.com",
		Listen:  "127.0.0.1:8080",
		Apps:    []AppSpec{{Mount: "/app", AppDir: "/srv/secure", Module: "secure.wsgi"}},
		Statics: []StaticSpec{{URL: "/static", Dir: "/srv/secure/static"}},
		TLS:     &TLSSpec{Listen: "127.0.0.1:8443", Cert: goldenCert, Key: goldenKey, HSTS: true},
	}, RenderOptions{IncludeParams: true, HTTP2Directive: false}},
}

// The TLS goldens' certificate: written where they name it before nginx -t
// reads them (nginx opens the files to check them).
const (
	goldenCert = "/tmp/pyvhost-golden-tls/cert.pem"
	goldenKey  = "/tmp/pyvhost-golden-tls/key.pem"
)

func writeGoldenCert(t *testing.T) {
	t.Helper()
	nginxtest.WriteCert(t, goldenCert, goldenKey, 24*time.Hour, "secure.example.com", "www.secure.example.com")
}

// TestRenderGolden renders each case, compares it with its golden file and
// has a real nginx accept it.
func TestRenderGolden(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(tc.spec, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			nginxtest.CheckGolden(t, filepath.Join("../testdata/golden/render", tc.name+".conf"), got)
			if tc.spec.TLS != nil {
				writeGoldenCert(t)
			}
			nginxtest.CheckBlock(t, got)
		})
	}
}

// TestRenderRoundTrip reads every rendered block back into a spec and
// renders it again: the bytes must not change, or an update would rewrite
// a site it did not mean to.
func TestRenderRoundTrip(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			first, err := Render(tc.spec, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			back, err := SpecFromFile("site.conf", first)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Render(back, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(first) {
				t.Errorf("round trip changed the block:\n%s\n--- want:\n%s", again, first)
			}
		})
	}
}

// TestRenderRefusesInjection feeds every input field values that would
// inject nginx syntax if they reached the template.
func TestRenderRefusesInjection(t *testing.T) {
	evil := []string{
		"a;b", "a{b", "a}b", `a"b`, "a'b", "a#b", "a b", "a\tb", "a\nb", "a\rb", "a$b", `a\b`, "a\x00b",
		"x; } server { listen 81", "$http_x_evil",
	}
	fields := []struct {
		name string
		set  func(*SiteSpec, string)
	}{
		{"domain", func(s *SiteSpec, v string) { s.Domain = "a" + v + ".example.com" }},
		{"alias", func(s *SiteSpec, v string) { s.Aliases = []string{"a" + v + ".example.com"} }},
		{"listen", func(s *SiteSpec, v string) { s.Listen = "127.0.0.1:80" + v }},
		{"socket", func(s *SiteSpec, v string) { s.Apps[0].Socket = "unix:/run/" + v + ".sock" }},
		{"venv", func(s *SiteSpec, v string) { s.Apps[0].Venv = "/srv/" + v }},
		{"app-dir", func(s *SiteSpec, v string) { s.Apps[0].AppDir = "/srv/" + v }},
		{"module", func(s *SiteSpec, v string) { s.Apps[0].Module = "app" + v }},
		{"tls cert", func(s *SiteSpec, v string) { s.TLS = &TLSSpec{Cert: "/c/" + v, Key: "/k"} }},
		{"tls key", func(s *SiteSpec, v string) { s.TLS = &TLSSpec{Cert: "/c", Key: "/k/" + v} }},
		{"https listen", func(s *SiteSpec, v string) { s.TLS = &TLSSpec{Listen: "127.0.0.1:443" + v, Cert: "/c", Key: "/k"} }},
		{"acme challenge", func(s *SiteSpec, v string) { s.TLS = &TLSSpec{Cert: "/c", Key: "/k", Challenge: "127.0.0.1:8402" + v} }},
		{"mount", func(s *SiteSpec, v string) { s.Apps[0].Mount = "/m" + v }},
		{"static url", func(s *SiteSpec, v string) { s.Statics = []StaticSpec{{URL: "/s" + v, Dir: "/srv/s"}} }},
		{"static dir", func(s *SiteSpec, v string) { s.Statics = []StaticSpec{{URL: "/s", Dir: "/srv/" + v}} }},
	}
	for _, f := range fields {
		for _, v := range evil {
			spec := seedApp("1")
			f.set(&spec, v)
			out, err := Render(spec, RenderOptions{IncludeParams: true})
			if err == nil {
				t.Errorf("%s %q: rendered, want refusal:\n%s", f.name, v, out)
				continue
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("%s %q: error is not one line: %q", f.name, v, err)
			}
		}
	}
}

func TestHasHTTP2Directive(t *testing.T) {
	for v, want := range map[string]bool{"nginx version: nginx/1.22.1": false, "nginx version: nginx/1.25.0": false,
		"nginx version: nginx/1.25.1": true, "nginx version: nginx/1.26.3": true, "nginx version: nginx/2.0.0": true, "garbage": false} {
		if got := HasHTTP2Directive(v); got != want {
			t.Errorf("%q: %v, want %v", v, got, want)
		}
	}
}
