package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

// TestNginxRoutesRenderedSites is the nginx half end to end: sites planned
// by `pyvhost diff` are written into a private Debian-style tree, a real
// nginx loads them, and requests reach stand-in uwsgi daemons with the
// params the blocks promise: the seed's two sites sharing one port and one
// venv, and one server with apps at / and /blog plus a static directory.
func TestNginxRoutesRenderedSites(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs a real nginx (make test runs it)")
	}
	dir := t.TempDir()
	debianTree(t, dir, "static")
	write(t, filepath.Join(dir, "static", "hello.txt"), "static hello\n")
	conf := filepath.Join(dir, "nginx.conf")
	write(t, conf, nginxtest.MainConf(dir, "    include sites-enabled/*;"))

	port := nginxtest.FreePort(t)
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	shared := nginxtest.StartUpstream(t, "tcp", "127.0.0.1:0")
	site := nginxtest.StartUpstream(t, "unix", filepath.Join(dir, "site.sock"))
	blog := nginxtest.StartUpstream(t, "unix", filepath.Join(dir, "blog.sock"))

	deploys := [][]string{
		{"app1.example.com", "--app-dir", "/var/www/myappdir1", "--module", "myapp1", "--venv", "/var/www/myenv", "--socket", shared.Addr, "--listen", listen},
		{"app2.example.com", "--app-dir", "/var/www/myappdir2", "--module", "myapp2", "--venv", "/var/www/myenv", "--socket", shared.Addr, "--listen", listen},
		{"example.com", "--app-dir", "/srv/site", "--module", "site.wsgi:application", "--socket", site.Addr, "--listen", listen,
			"--static", "/static/=" + filepath.Join(dir, "static")},
		{"example.com", "--app-dir", "/srv/blog", "--module", "blog.wsgi", "--mount", "/blog", "--socket", blog.Addr},
	}
	for _, args := range deploys {
		deployWithDiff(t, conf, args)
	}
	if out, err := nginxtest.Test(t, conf); err != nil || strings.Contains(out, "[warn]") {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	nginxtest.Start(t, conf, listen)

	tests := []struct {
		host, path string
		status     int
		want       []string
	}{
		{"app1.example.com", "/hello?x=1", 200, []string{"UWSGI_CHDIR=/var/www/myappdir1\n", "UWSGI_SCRIPT=myapp1\n", "UWSGI_PYHOME=/var/www/myenv\n", "PATH_INFO=/hello\n", "QUERY_STRING=x=1\n", "HTTP_HOST=app1.example.com\n"}},
		{"app2.example.com", "/", 200, []string{"UWSGI_CHDIR=/var/www/myappdir2\n", "UWSGI_SCRIPT=myapp2\n", "UWSGI_PYHOME=/var/www/myenv\n"}},
		{"example.com", "/about", 200, []string{"UWSGI_CHDIR=/srv/site\n", "UWSGI_SCRIPT=site.wsgi:application\n", "UWSGI_PYHOME=/srv/site/.venv\n"}},
		{"example.com", "/blog/2026/post", 200, []string{"UWSGI_CHDIR=/srv/blog\n", "UWSGI_SCRIPT=blog.wsgi\n", "SCRIPT_NAME=/blog\n", "PATH_INFO=/blog/2026/post\n"}},
		{"example.com", "/blogroll", 200, []string{"UWSGI_CHDIR=/srv/site\n"}}, // /blog does not swallow /blogroll
		{"example.com", "/blog?page=2", 301, nil},
		{"example.com", "/static/hello.txt", 200, []string{"static hello\n"}},
	}
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range tests {
		req, _ := http.NewRequest("GET", "http://"+listen+tc.path, nil)
		req.Host = tc.host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s%s: %v", tc.host, tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s%s: status %d, want %d\n%s", tc.host, tc.path, resp.StatusCode, tc.status, body)
			continue
		}
		if tc.status == 301 {
			if loc := resp.Header.Get("Location"); !strings.HasSuffix(loc, "/blog/?page=2") {
				t.Errorf("%s%s: Location %q, want .../blog/?page=2", tc.host, tc.path, loc)
			}
		}
		for _, w := range tc.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s%s: response lacks %q:\n%s", tc.host, tc.path, w, body)
			}
		}
	}

	code, out, errOut := pyvhost(t, "sites", "--nginx-conf", conf, "--json")
	if code != 0 || strings.Count(out, `"managed": true`) != 3 || strings.Count(out, `"location": "/blog/"`) != 1 {
		t.Fatalf("sites after deploy: exit %d %s\n%s", code, errOut, out)
	}
}

// deployWithDiff runs `pyvhost diff` and checks it prints exactly the plan,
// then writes the plan's files (the deploy command will do this step
// atomically, with backups and nginx -t).
func deployWithDiff(t *testing.T, conf string, args []string) {
	t.Helper()
	code, out, errOut := pyvhost(t, append([]string{"diff", "--nginx-conf", conf}, args...)...)
	if code != 0 {
		t.Fatalf("diff %q: exit %d: %s", args, code, errOut)
	}
	tree, err := nginxconf.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	spec := nginxconf.SiteSpec{Domain: args[0]}
	app := nginxconf.AppSpec{}
	for i := 1; i+1 < len(args); i += 2 {
		v := args[i+1]
		switch args[i] {
		case "--app-dir":
			app.AppDir = v
		case "--module":
			app.Module = v
		case "--venv":
			app.Venv = v
		case "--socket":
			app.Socket = v
		case "--mount":
			app.Mount = v
		case "--listen":
			spec.Listen = v
		case "--static":
			st, err := nginxconf.ParseStatic(v)
			if err != nil {
				t.Fatal(err)
			}
			spec.Statics = append(spec.Statics, st)
		}
	}
	spec.Apps = []nginxconf.AppSpec{app}
	sc, err := tree.PlanSite(spec)
	if err != nil {
		t.Fatal(err)
	}
	want, err := sc.Diff()
	if err != nil {
		t.Fatal(err)
	}
	if out != want {
		t.Fatalf("diff %q printed:\n%s\n--- want the plan's diff:\n%s", args, out, want)
	}
	for _, c := range sc.Changes {
		switch c.Kind {
		case nginxconf.Create, nginxconf.Modify:
			write(t, c.Path, string(c.New))
		case nginxconf.Symlink:
			if err := os.Symlink(c.Target, c.Path); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
