package nginxconf

import (
	"strings"
	"testing"
)

func TestValidators(t *testing.T) {
	tests := []struct {
		name  string
		check func(string, string) error
		ok    []string
		bad   []string
	}{
		{"domain", ValidateDomain,
			[]string{"example.com", "a.b.example.com", "localhost", "xn--bcher-kva.example", "*.example.com", "www.example.*", "a-b.example", "127.0.0.1", strings.Repeat("a", 63) + ".com"},
			[]string{"", "Example.com", "-a.example.com", "a-.example.com", "a..example.com", ".example.com", "example.com.", "*", "*.*", "a.*.example.com", "*example.com", "a_b.example.com", "ex ample.com", "a;b.com", "~^re$", strings.Repeat("a", 63) + "a.com", "bücher.example"}},
		{"path", ValidatePath,
			[]string{"/", "/srv/app", "/var/www/my-app_1.2", "/srv/app+x@y,z"},
			[]string{"", "srv/app", "./app", "/srv/app/", "/srv//app", "/srv/../etc", "/srv/./app", "/srv/my app", "/srv/$app", "/srv/a;b", "/srv/a{b", "/srv/a\nb", "/srv/a#b", `/srv/a\b`}},
		{"module", ValidateModule,
			[]string{"app", "my_app", "pkg.sub.wsgi", "pkg.wsgi:application", "_private:_app", "app2:create_app", "flaskr:create_app()", "pkg.sub:make_app()"},
			[]string{"", "1app", "pkg..wsgi", "pkg.", ".pkg", "app:", ":app", "app:1x", "app:a:b", "app-x", "app()", "app:make(1)", "app:make(", "app:()", "app:make()()", "app:make(x=1)", "app;x", "app x"}},
		{"socket", ValidateSocket,
			[]string{"127.0.0.1:9090", "localhost:9090", "[::1]:9090", "unix:/run/pyvhost/apps/a.sock", "uwsgi.internal:3031", "unix:/" + strings.Repeat("s", 106)},
			[]string{"unix:/" + strings.Repeat("s", 107), "", ":9090", "9090", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:http", "unix:run/a.sock", "unix:/run/a b.sock", "http://127.0.0.1:9090", "*:9090"}},
		{"size", ValidateSize,
			[]string{"0", "16m", "512k", "1g", "1G", "100", "2M"},
			[]string{"", "m", "16mb", "1.5m", "-1", "16 m", "16m;", "1t", "99999999999999m"}},
		{"listen", ValidateListen,
			[]string{"80", "8080", "127.0.0.1:8080", "[::]:80", "*:80", "localhost:80"},
			[]string{"", "0", "65536", "80 default_server", "127.0.0.1", ":80", "80;", "unix:/run/x.sock", "0080"}},
		{"url path", ValidateURLPath,
			[]string{"/", "/blog", "/a/b", "/static-files", "/v1.0", "/~user"},
			[]string{"", "blog", "/blog/", "//blog", "/a//b", "/a/../b", "/a/./b", "/a b", "/a?b", "/a%20b", "/a;b", "/a$b"}},
	}
	for _, tc := range tests {
		for _, v := range tc.ok {
			if err := tc.check("--x", v); err != nil {
				t.Errorf("%s %q: unexpected error %v", tc.name, v, err)
			}
		}
		for _, v := range tc.bad {
			if err := tc.check("--x", v); err == nil {
				t.Errorf("%s %q: accepted, want an error", tc.name, v)
			}
		}
	}
}

func TestSpecValidate(t *testing.T) {
	base := func() SiteSpec { return seedApp("1") }
	tests := []struct {
		name string
		mut  func(*SiteSpec)
		want string // substring of the error; "" means valid
	}{
		{"valid", func(*SiteSpec) {}, ""},
		{"no apps", func(s *SiteSpec) { s.Apps = nil }, "nothing to serve"},
		{"no module", func(s *SiteSpec) { s.Apps[0].Module = "" }, "--module is required"},
		{"same mount twice", func(s *SiteSpec) { s.Apps = append(s.Apps, s.Apps[0]) }, "both want location /"},
		{"static over app", func(s *SiteSpec) {
			s.Apps[0].Mount = "/static"
			s.Statics = []StaticSpec{{URL: "/static/", Dir: "/srv/static"}}
		}, "both want location /static/"},
		{"relative app dir", func(s *SiteSpec) { s.Apps[0].AppDir = "app" }, "absolute"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.mut(&s)
			s.Normalize()
			err := s.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseStatic(t *testing.T) {
	st, err := ParseStatic("/media/=/srv/media")
	if err != nil || st.URL != "/media/" || st.Dir != "/srv/media" {
		t.Fatalf("ParseStatic = %+v, %v", st, err)
	}
	if _, err := ParseStatic("/media"); err == nil {
		t.Fatal("ParseStatic without = accepted")
	}
}
