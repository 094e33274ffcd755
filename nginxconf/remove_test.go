package nginxconf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

// TestPlanRemoveGolden: taking one mount out of a managed site rewrites
// its file; taking the whole site deletes the file and its symlink.
func TestPlanRemoveGolden(t *testing.T) {
	tests := []struct{ name, mount string }{
		{"remove-mount", "/blog/"},
		{"remove-site", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := copyTree(t, "managed-mounts")
			root := filepath.Dir(conf)
			tree, err := Load(conf)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := tree.PlanRemove("Example.com", tc.mount)
			if err != nil {
				t.Fatal(err)
			}
			checkDiffGolden(t, sc, root, tc.name)
			apply(t, sc.Changes)
			if out, err := nginxTest(t, conf); err != nil {
				t.Fatalf("nginx -t after the removal: %v\n%s", err, out)
			}
		})
	}
}

func TestPlanRemoveRefusals(t *testing.T) {
	conf := copyTree(t, "managed-mounts")
	tree, err := Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ domain, mount, want string }{
		{"absent.example.com", "", "absent.example.com is not deployed"},
		{"example.com", "/shop", "has no app at --mount /shop"},
	} {
		if _, err := tree.PlanRemove(tc.domain, tc.mount); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PlanRemove(%q, %q): %v, want %q", tc.domain, tc.mount, err, tc.want)
		}
	}
	// A file at pyvhost's path that someone else wrote is never removed.
	site := filepath.Join(filepath.Dir(conf), "sites-available", "mine.test.conf")
	if err := os.WriteFile(site, []byte("server { server_name mine.test; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.PlanRemove("mine.test", ""); err == nil || !strings.Contains(err.Error(), "was not written by pyvhost") {
		t.Errorf("removing a file pyvhost does not own: %v", err)
	}
}

// TestPlanRestore: an earlier release's bytes are written back exactly,
// with the symlink that enables them when it is gone.
func TestPlanRestore(t *testing.T) {
	conf := copyTree(t, "managed-mounts")
	root := filepath.Dir(conf)
	site := filepath.Join(root, "sites-available", "example.com.conf")
	release, err := os.ReadFile(site)
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := Load(conf)
	gone, err := tree.PlanRemove("example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	apply(t, gone.Changes)
	tree, _ = Load(conf)
	sc, err := tree.PlanRestore("example.com", release)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, sc.Changes)
	if got, _ := os.ReadFile(site); string(got) != string(release) {
		t.Fatalf("restored bytes differ:\n%s", got)
	}
	if target, err := os.Readlink(filepath.Join(root, "sites-enabled", "example.com.conf")); err != nil || target != site {
		t.Fatalf("symlink: %q %v", target, err)
	}
	if len(sc.Spec.Apps) != 2 || sc.Spec.Apps[1].Mount != "/blog" {
		t.Fatalf("spec read back: %+v", sc.Spec)
	}
}

// TestRedeployKeepsUnsetFields: redeploying a mount without --socket or
// --venv keeps the ones the site has (the app's socket does not flip to
// the default), while a new app dir gets its own default venv.
func TestRedeployKeepsUnsetFields(t *testing.T) {
	conf := copyTree(t, "managed-mounts")
	site := filepath.Join(filepath.Dir(conf), "sites-available", "example.com.conf")
	b, _ := os.ReadFile(site)
	custom := strings.Replace(string(b), "unix:/run/pyvhost/apps/example.com_blog.sock", "127.0.0.1:9090", 1)
	custom = strings.Replace(custom, "UWSGI_PYHOME /srv/blog/.venv", "UWSGI_PYHOME /srv/shared-env", 1)
	if err := os.WriteFile(site, []byte(custom), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := plan(t, conf, app("example.com", "/blog/", "/srv/blog", "blog.wsgi"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Changes) != 0 {
		t.Fatalf("a redeploy with the same flags changes the file:\n%s", sc.Changes[0].New)
	}
	sc, err = plan(t, conf, app("example.com", "/blog", "/srv/blog2", "blog.wsgi"))
	if err != nil {
		t.Fatal(err)
	}
	blog := sc.Spec.Apps[1]
	if blog.Socket != "127.0.0.1:9090" || blog.Venv != "/srv/blog2/.venv" {
		t.Fatalf("moved app: %+v", blog)
	}
}

// nginxTest runs `nginx -t` on a corpus tree, its pid and logs pointed at
// a temporary directory.
func nginxTest(t *testing.T, conf string) (string, error) {
	t.Helper()
	tmp := t.TempDir()
	out, err := exec.Command(nginxtest.Binary(t), "-t", "-q", "-c", conf, "-p", filepath.Dir(conf),
		"-g", "pid "+tmp+"/nginx.pid; error_log "+tmp+"/error.log;").CombinedOutput()
	return string(out), err
}
