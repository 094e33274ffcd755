package nginxconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseFile feeds arbitrary bytes to the config loader: it must return
// a config or an error, never panic (gonginx panics are recovered), and a
// config it returns must be walkable.
func FuzzParseFile(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/nginx/*/nginx.conf")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("http { server { location / { uwsgi_pass 127.0.0.1:1; } } }"))
	f.Add([]byte("a \"b\\\" c;"))
	f.Add([]byte("x_by_lua_block { ngx.say(\"}\") }"))
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := ParseFile("fuzz.conf", src)
		if err != nil {
			if _, ok := err.(*ConfigError); !ok {
				t.Fatalf("error %v is not a ConfigError", err)
			}
			return
		}
		tree := &Tree{Main: "fuzz.conf", byPath: map[string]*File{"fuzz.conf": file}}
		tree.Servers()
		_, _ = tree.Layout()
	})
}

// FuzzRender: whatever the input, Render either refuses it or produces a
// block that parses back to the same spec and renders to the same bytes,
// so nothing a user types can change the block's structure.
func FuzzRender(f *testing.F) {
	f.Add("app.example.com", "www.app.example.com", "80", "/", "127.0.0.1:9090", "/srv/venv", "/srv/app", "app:application", "/static", "/srv/static")
	f.Add("a.b", "", "127.0.0.1:8080", "/blog", "", "", "/x", "m", "", "")
	f.Add("x;y", "z}", "80;", "/a b", "unix:/a{b", "/v$x", "/d\n", "m#", "/s'", "/t\"")
	f.Fuzz(func(t *testing.T, domain, alias, listen, mount, socket, venv, appDir, module, staticURL, staticDir string) {
		spec := SiteSpec{Domain: domain, Listen: listen, Apps: []AppSpec{{Mount: mount, Socket: socket, Venv: venv, AppDir: appDir, Module: module}}}
		if alias != "" {
			spec.Aliases = []string{alias}
		}
		if staticURL != "" {
			spec.Statics = []StaticSpec{{URL: staticURL, Dir: staticDir}}
		}
		out, err := Render(spec, RenderOptions{IncludeParams: true})
		if err != nil {
			return
		}
		back, err := SpecFromFile("fuzz.conf", out)
		if err != nil {
			t.Fatalf("rendered block does not parse: %v\n%s", err, out)
		}
		again, err := Render(back, RenderOptions{IncludeParams: true})
		if err != nil || string(again) != string(out) {
			t.Fatalf("round trip changed the block (%v):\n%s\n---\n%s", err, again, out)
		}
		if n := strings.Count(string(out), "server {"); n != 1 {
			t.Fatalf("rendered %d server blocks:\n%s", n, out)
		}
	})
}

// FuzzNames: server name matching and listen parsing never panic.
func FuzzNames(f *testing.F) {
	f.Add("*.example.com", "a.example.com", "127.0.0.1:80 ssl")
	f.Add("~^(?<x>.+)$", "b", "[::1]")
	f.Add(".", "", "[")
	f.Fuzz(func(t *testing.T, name, host, listen string) {
		nameMatch(name, host)
		sameName(name, host)
		listenKey(listen)
		beats(name, host)
	})
}
