package nginxconf

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

// copyTree copies testdata/nginx/NAME to a temporary directory, symlinks
// kept as symlinks, and returns the copy's nginx.conf.
func copyTree(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("../testdata/nginx", name)
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(out, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dst, "nginx.conf")
}

// apply writes changes the simple way; the deployer does it atomically.
func apply(t *testing.T, changes []Change) {
	t.Helper()
	for _, c := range changes {
		var err error
		switch c.Kind {
		case Create, Modify:
			if err = os.MkdirAll(filepath.Dir(c.Path), 0o755); err == nil {
				err = os.WriteFile(c.Path, c.New, 0o644)
			}
		case Symlink:
			err = os.Symlink(c.Target, c.Path)
		case Delete:
			err = os.Remove(c.Path)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func plan(t *testing.T, conf string, spec SiteSpec) (*SiteChanges, error) {
	t.Helper()
	tree, err := Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	return tree.PlanSite(spec)
}

func app(domain, mount, dir, module string) SiteSpec {
	return SiteSpec{Domain: domain, Apps: []AppSpec{{Mount: mount, AppDir: dir, Module: module}}}
}

// TestPlanSiteGolden checks the diff a deploy would show, per layout and
// for updates of a site pyvhost already manages; then applies it and has
// nginx load the result.
func TestPlanSiteGolden(t *testing.T) {
	tests := []struct {
		name, tree string
		spec       SiteSpec
	}{
		{"debian-new-site", "debian-seed", SiteSpec{
			Domain: "app3.example.com",
			Apps:   []AppSpec{{Socket: "127.0.0.1:9090", Venv: "/var/www/myenv", AppDir: "/var/www/myappdir3", Module: "myapp3"}},
		}},
		{"confd-new-site", "confd", app("new.example.com", "/", "/srv/new", "new.wsgi")},
		{"crlf-new-site", "crlf", app("new.example.com", "/", "/srv/new", "new")},
		{"single-file-new-site", "single-file", app("three.local", "/", "/srv/three", "three")},
		{"managed-add-mount", "managed-mounts", app("example.com", "/shop", "/srv/shop", "shop.app:app")},
		{"managed-replace-mount", "managed-mounts", app("example.com", "/blog", "/srv/blog2", "blog2.wsgi")},
		{"managed-add-static-alias", "managed-mounts", SiteSpec{
			Domain:  "example.com",
			Aliases: []string{"www.example.com"},
			Statics: []StaticSpec{{URL: "/assets", Dir: "/srv/site/assets"}},
		}},
		{"managed-change-listen", "managed-mounts", SiteSpec{Domain: "example.com", Listen: "8080", Statics: []StaticSpec{{URL: "/static", Dir: "/srv/site/static"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := copyTree(t, tc.tree)
			root := filepath.Dir(conf)
			sc, err := plan(t, conf, tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			checkDiffGolden(t, sc, root, tc.name)

			// Applied, the same spec plans no change, and the tree lists it.
			apply(t, sc.Changes)
			again, err := plan(t, conf, tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Changes) != 0 {
				t.Errorf("second plan still changes %d files: %+v", len(again.Changes), again.Changes[0].Summary())
			}
			tree, err := Load(conf)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, s := range tree.Sites() {
				if len(s.ServerNames) > 0 && s.ServerNames[0] == sc.Spec.Domain && s.Managed {
					found = true
				}
			}
			if !found && len(sc.Spec.Apps) > 0 {
				t.Errorf("deployed site %s not listed by Sites()", sc.Spec.Domain)
			}
		})
	}
}

func TestPlanSiteRefusals(t *testing.T) {
	tests := []struct {
		name, tree string
		spec       SiteSpec
		setup      func(t *testing.T, root string)
		want       string
	}{
		{"exact name taken", "debian-seed", app("app1.example.com", "/", "/srv/x", "x"), nil,
			"app1.example.com is already served on *:80 by a server block pyvhost does not own at TREE/sites-enabled/app1:1"},
		{"alias taken", "debian-seed", SiteSpec{Domain: "new.example.com", Aliases: []string{"app2.example.com"}, Apps: app("", "/", "/srv/x", "x").Apps}, nil,
			"app2.example.com is already served on *:80"},
		{"dot form covers exact", "wildcard-regex", app("example.org", "/", "/srv/x", "x"), nil,
			"example.org is already served on *:80 by a server block pyvhost does not own at TREE/nginx.conf:18"},
		{"same wildcard", "wildcard-regex", app("*.example.com", "/", "/srv/x", "x"), nil,
			"*.example.com is already served on *:80"},
		{"server without listen is on *:80", "default-listen", app("nolisten.example.com", "/", "/srv/x", "x"), nil,
			"nolisten.example.com is already served on *:80"},
		{"foreign file in the way", "debian-seed", app("mine.example.com", "/", "/srv/x", "x"), func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, "sites-available/mine.example.com.conf"), "server { server_name mine.example.com; }\n")
		}, "sites-available/mine.example.com.conf exists and was not written by pyvhost"},
		{"symlink elsewhere", "debian-seed", app("mine.example.com", "/", "/srv/x", "x"), func(t *testing.T, root string) {
			if err := os.Symlink("../sites-available/app1", filepath.Join(root, "sites-enabled/mine.example.com.conf")); err != nil {
				t.Fatal(err)
			}
		}, "sites-enabled/mine.example.com.conf points to ../sites-available/app1, not to pyvhost's"},
		{"regular file as link", "debian-seed", app("mine.example.com", "/", "/srv/x", "x"), func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, "sites-enabled/mine.example.com.conf"), "# not a link\n")
		}, "sites-enabled/mine.example.com.conf is not a symlink pyvhost made"},
		{"invalid input", "debian-seed", app("bad;name", "/", "/srv/x", "x"), nil, `domain "bad;name"`},
		{"name taken on the https port", "debian-seed", SiteSpec{Domain: "tls.example.com", Apps: app("", "/", "/srv/x", "x").Apps,
			TLS: &TLSSpec{Cert: "/c.pem", Key: "/k.pem"}}, func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, "sites-enabled/handmade"), "server { listen 443 ssl; server_name tls.example.com; }\n")
		}, "tls.example.com is already served on *:443 by a server block pyvhost does not own at TREE/sites-enabled/handmade:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := copyTree(t, tc.tree)
			root := filepath.Dir(conf)
			if tc.setup != nil {
				tc.setup(t, root)
			}
			_, err := plan(t, conf, tc.spec)
			if err == nil {
				t.Fatalf("planned, want error containing %q", tc.want)
			}
			msg := strings.ReplaceAll(err.Error(), root, "TREE")
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error = %q, want it to contain %q", msg, tc.want)
			}
		})
	}
}

func TestPlanSiteAllowed(t *testing.T) {
	tests := []struct {
		name, tree string
		spec       SiteSpec
		warnings   int
	}{
		{"same name on another port", "debian-seed", SiteSpec{Domain: "app1.example.com", Listen: "8080", Apps: app("", "/", "/srv/x", "x").Apps}, 0},
		{"exact beats their wildcard", "wildcard-regex", app("www.example.com", "/", "/srv/x", "x"), 0},
		{"exact beats their regex", "wildcard-regex", app("a.example.net", "/", "/srv/x", "x"), 0},
		{"our wildcard loses some hosts", "debian-seed", app("*.example.com", "/", "/srv/x", "x"), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := plan(t, copyTree(t, tc.tree), tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if len(sc.Warnings) != tc.warnings {
				t.Fatalf("warnings = %q, want %d", sc.Warnings, tc.warnings)
			}
		})
	}
}

func TestPlanSiteSingleFileIncludeOnce(t *testing.T) {
	conf := copyTree(t, "single-file")
	sc, err := plan(t, conf, app("three.local", "/", "/srv/three", "three"))
	if err != nil {
		t.Fatal(err)
	}
	apply(t, sc.Changes)
	sc, err = plan(t, conf, app("four.local", "/", "/srv/four", "four"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Changes) != 1 || sc.Changes[0].Kind != Create {
		t.Fatalf("second site changes %d files, want only its own file created", len(sc.Changes))
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil && !errors.Is(err, fs.ErrExist) {
		t.Fatal(err)
	}
}

// checkDiffGolden compares a plan's diff with testdata/golden/diff/NAME.diff,
// the temporary tree's path written as TREE.
func checkDiffGolden(t *testing.T, sc *SiteChanges, root, name string) {
	t.Helper()
	text, err := sc.Diff()
	if err != nil {
		t.Fatal(err)
	}
	text = strings.ReplaceAll(text, strings.TrimPrefix(root, "/"), "TREE")
	text = strings.ReplaceAll(text, root, "/TREE")
	nginxtest.CheckGolden(t, filepath.Join("../testdata/golden/diff", name+".diff"), []byte(text))
}
