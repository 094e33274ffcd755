package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/muesli/termenv"
	"github.com/pyvhost/pyvhost/nginxconf"
)

// pyvhost runs the CLI in-process and returns its exit code and streams.
func pyvhost(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"pyvhost"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersionAndHelp(t *testing.T) {
	code, out, _ := pyvhost(t, "--version")
	if code != 0 || !strings.HasPrefix(out, "pyvhost version ") {
		t.Fatalf("--version: code %d, %q", code, out)
	}
	for _, cmd := range []string{"deploy", "undeploy", "rollback", "run", "config", "logs", "certs", "sites", "render", "diff", "uwsgi", "ctl"} {
		code, out, _ := pyvhost(t, cmd, "--help")
		if code != 0 || !strings.Contains(out, "Example") || !strings.Contains(out, "pyvhost "+cmd) {
			t.Errorf("%s --help: code %d, missing an example:\n%s", cmd, code, out)
		}
	}
}

// TestRenderMatchesGolden: the CLI renders the seed's site byte for byte
// as the nginxconf golden file (which a real nginx accepts).
func TestRenderMatchesGolden(t *testing.T) {
	want, err := os.ReadFile("../../testdata/golden/render/seed-app1.conf")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := pyvhost(t, "render", "app1.example.com", "--app-dir", "/var/www/myappdir1",
		"--module", "myapp1", "--venv", "/var/www/myenv", "--socket", "127.0.0.1:9090",
		"--nginx-conf", "../../testdata/nginx/debian-seed/nginx.conf")
	if code != 0 || out != string(want) {
		t.Fatalf("render: code %d, stderr %q\n%s\n--- want:\n%s", code, errOut, out, want)
	}
	// A whole deploy line works too: deploy's own flags change nothing here.
	code, out2, errOut := pyvhost(t, "render", "app1.example.com", "--app-dir", "/var/www/myappdir1",
		"--module", "myapp1", "--venv", "/var/www/myenv", "--socket", "127.0.0.1:9090",
		"--nginx-conf", "../../testdata/nginx/debian-seed/nginx.conf",
		"--python", "/usr/bin/python3", "--system-site-packages", "--user", "www-data", "--yes", "--state-dir", "/nonexistent")
	if code != 0 || out2 != out {
		t.Fatalf("render with deploy's flags: code %d, stderr %q\n%s", code, errOut, out2)
	}
}

func TestBadInputIsOneLineAndExit2(t *testing.T) {
	tests := [][]string{
		{"render", "app.example.com", "--app-dir", "/srv/app", "--module", "app;evil"},
		{"render", "app.example.com", "--app-dir", "relative", "--module", "app"},
		{"render", "bad domain", "--app-dir", "/srv/app", "--module", "app"},
		{"render", "app.example.com", "--app-dir", "/srv/app"},
		{"render", "app.example.com", "--mount", "/x"},
		{"render", "--app-dir", "/srv/app", "--module", "app"},
		{"render", "a.example.com", "b.example.com", "--app-dir", "/srv/app", "--module", "app"},
		{"render", "app.example.com", "--app-dir", "/srv/app", "--module", "app", "--static", "/nodir"},
		{"diff", "app.example.com", "--app-dir", "/srv/app", "--module", "app", "--listen", "80 default_server"},
		{"render", "app.example.com", "--no-such-flag"},
		{"sites", "extra-arg"},
		{"deploy", "bad domain", "--app-dir", "/srv/app", "--module", "app"},
		{"deploy", "app.example.com", "--app-dir", "/srv/app", "--module", "app;evil", "--yes"},
		{"deploy", "app.example.com", "--app-dir", "/srv/app"},
		{"deploy", "app.example.com", "--app-dir", "/srv/app", "--module", "app", "--socket", "unix:/" + strings.Repeat("x", 120)},
		{"deploy"},
		{"undeploy"},
		{"rollback", "a.example.com", "b.example.com"},
		{"undeploy", "bad;domain"},
		{"rollback", "-x.example.com"},
	}
	state := os.Getenv("PYVHOST_STATE_DIR")
	for _, args := range tests {
		code, out, errOut := pyvhost(t, args...)
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Errorf("%q: bad input created the state dir %s", args, state)
		}
		if code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, errOut)
		}
		if out != "" {
			t.Errorf("%q: printed to stdout: %q", args, out)
		}
		lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
		if !strings.HasPrefix(lines[len(lines)-1], "pyvhost: ") {
			t.Errorf("%q: stderr does not end with a one-line error: %q", args, errOut)
		}
	}
}

func TestSitesJSON(t *testing.T) {
	conf, _ := filepath.Abs("../../testdata/nginx/debian-seed/nginx.conf")
	code, out, errOut := pyvhost(t, "sites", "--json", "--nginx-conf", conf)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var sites []struct {
		File        string   `json:"file"`
		Line        int      `json:"line"`
		ServerNames []string `json:"server_names"`
		Listen      []string `json:"listen"`
		Managed     bool     `json:"managed"`
		Apps        []struct {
			Location, UwsgiPass, Pyhome, Chdir, Script string
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(out), &sites); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(sites) != 2 || sites[0].ServerNames[0] != "app1.example.com" || sites[1].Apps[0].Chdir != "/var/www/myappdir2" {
		t.Fatalf("unexpected sites: %+v", sites)
	}
}

func TestSitesTable(t *testing.T) {
	code, out, _ := pyvhost(t, "sites", "--nginx-conf", "../../testdata/nginx/managed-mounts/nginx.conf")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"SERVER NAMES", "example.com", "/blog/", "/srv/blog", "blog.wsgi", "pyvhost", "layout: debian", "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colour codes in non-TTY output:\n%q", out)
	}
	code, out, _ = pyvhost(t, "sites", "--nginx-conf", "../../testdata/nginx/debian-stock/nginx.conf")
	if code != 0 || !strings.Contains(out, "no server block") {
		t.Fatalf("stock tree: exit %d:\n%s", code, out)
	}
}

func TestSitesBrokenConfigNamesFileAndLine(t *testing.T) {
	code, _, errOut := pyvhost(t, "sites", "--nginx-conf", "../../testdata/nginx/broken/nginx.conf")
	if code != 1 || !strings.Contains(errOut, "broken/conf.d/bad.conf:7: unexpected end of file") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = pyvhost(t, "sites", "--nginx-conf", "/nonexistent/nginx.conf")
	if code != 1 || !strings.Contains(errOut, "/nonexistent/nginx.conf") {
		t.Fatalf("missing conf: exit %d, stderr %q", code, errOut)
	}
}

func TestDiffChangesNothing(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte("events {}\nhttp {\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	code, out, errOut := pyvhost(t, "diff", "new.example.com", "--app-dir", "/srv/new", "--module", "new", "--nginx-conf", conf)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"# create " + dir + "/pyvhost.d/new.example.com.conf", "+    include pyvhost.d/*.conf;", "--- a" + conf} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
	if after := snapshot(t, dir); after != before {
		t.Fatalf("diff changed the tree:\n%s\n---\n%s", before, after)
	}
}

func TestDiffEnvConfAndConflict(t *testing.T) {
	conf, _ := filepath.Abs("../../testdata/nginx/debian-seed/nginx.conf")
	t.Setenv("PYVHOST_NGINX_CONF", conf)
	code, _, errOut := pyvhost(t, "diff", "app1.example.com", "--app-dir", "/srv/x", "--module", "x")
	if code != 1 || !strings.Contains(errOut, "app1.example.com is already served on *:80") || !strings.Contains(errOut, "sites-enabled/app1:1") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// snapshot lists every path under dir with its bytes, for before/after
// comparisons.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(p + " " + info.Mode().String() + "\n")
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestIntersperse(t *testing.T) {
	app := newApp(nil, nil, nil)
	tests := []struct{ in, want string }{
		{"pyvhost render d.example --app-dir /x --module m", "pyvhost render --app-dir /x --module m -- d.example"},
		{"pyvhost --no-color diff d.example --static /s=/d --static=/t=/e", "pyvhost --no-color diff --static /s=/d --static=/t=/e -- d.example"},
		{"pyvhost sites --json", "pyvhost sites --json"},
		{"pyvhost render --app-dir /x d.example", "pyvhost render --app-dir /x -- d.example"},
		{"pyvhost unknown a --b", "pyvhost unknown a --b"},
		// flags before a subcommand go after it; pyvhost's own before the command
		{"pyvhost ctl --ctl /s status", "pyvhost ctl status --ctl /s"},
		{"pyvhost ctl --ctl=/s --json apps", "pyvhost ctl apps --ctl=/s --json"},
		{"pyvhost ctl --ctl /s reload app1 --json", "pyvhost ctl reload --ctl /s --json -- app1"},
		{"pyvhost ctl status --ctl /s", "pyvhost ctl status --ctl /s"},
		{"pyvhost sites --no-color --json", "pyvhost --no-color sites --json"},
		{"pyvhost deploy d.example --no-color --app-dir /x", "pyvhost --no-color deploy --app-dir /x -- d.example"},
		{"pyvhost ctl --ctl /s", "pyvhost ctl --ctl /s"},
		{"pyvhost certs renew d.example --json", "pyvhost certs renew --json -- d.example"},
	}
	for _, tc := range tests {
		got := strings.Join(intersperse(app, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("intersperse(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSitesDefaultsToInstalledNginx: with no --nginx-conf, sites reads the
// configuration the installed nginx was built to read (nginx -V).
func TestSitesDefaultsToInstalledNginx(t *testing.T) {
	t.Setenv("PYVHOST_NGINX_CONF", "")
	conf := nginxconf.DiscoverConfPath()
	tree, err := nginxconf.Load(conf)
	if err != nil {
		t.Fatalf("this machine's nginx config %s does not load: %v", conf, err)
	}
	want, _ := json.MarshalIndent(tree.Sites(), "", "  ")
	code, out, errOut := pyvhost(t, "sites", "--json")
	if code != 0 || out != string(want)+"\n" {
		t.Fatalf("exit %d (%s):\n%s\n--- want:\n%s", code, errOut, out, want)
	}
}

func TestColorDiff(t *testing.T) {
	diff := "# create /x\n--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n+added\n-removed\n context\n"
	plain := newUI(&bytes.Buffer{}, false)
	if got := plain.colorDiff(diff); got != diff {
		t.Fatalf("non-TTY diff changed:\n%q", got)
	}
	colored := newUI(&bytes.Buffer{}, false)
	colored.color = true
	colored.r.SetColorProfile(termenv.ANSI256)
	got := colored.colorDiff(diff)
	if !strings.Contains(got, "\x1b[") || !strings.Contains(got, "added") || strings.Count(got, "\n") != strings.Count(diff, "\n") {
		t.Fatalf("TTY diff not coloured line by line:\n%q", got)
	}
}
