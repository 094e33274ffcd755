package nginxconf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

// TestSitesCorpus loads every config tree under testdata/nginx and compares
// the sites found (or the error) with testdata/golden/sites. Paths are
// written relative to the tree so the golden files do not depend on where
// the repository is checked out.
func TestSitesCorpus(t *testing.T) {
	trees, err := filepath.Glob("../testdata/nginx/*/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(trees) < 15 {
		t.Fatalf("corpus has %d trees, want at least 15", len(trees))
	}
	for _, conf := range trees {
		root, _ := filepath.Abs(filepath.Dir(conf))
		name := filepath.Base(root)
		t.Run(name, func(t *testing.T) {
			var got []byte
			tree, err := Load(conf)
			if err != nil {
				got = []byte("error: " + err.Error() + "\n")
			} else {
				got, err = json.MarshalIndent(tree.Sites(), "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, '\n')
			}
			got = []byte(strings.ReplaceAll(string(got), root, "TREE"))
			nginxtest.CheckGolden(t, filepath.Join("../testdata/golden/sites", name+".json"), got)
		})
	}
}

// TestLayouts checks which files pyvhost would own in each kind of tree.
func TestLayouts(t *testing.T) {
	tests := []struct {
		tree       string
		kind       LayoutKind
		sitePath   string // relative to the tree
		loadedPath string
		include    string
	}{
		{"debian-stock", LayoutDebian, "sites-available/a.example.conf", "sites-enabled/a.example.conf", ""},
		{"debian-seed", LayoutDebian, "sites-available/a.example.conf", "sites-enabled/a.example.conf", ""},
		{"confd", LayoutConfD, "conf.d/a.example.conf", "conf.d/a.example.conf", ""},
		{"crlf", LayoutConfD, "conf.d/a.example.conf", "conf.d/a.example.conf", ""},
		{"single-file", LayoutSingleFile, "pyvhost.d/a.example.conf", "pyvhost.d/a.example.conf", "include pyvhost.d/*.conf;"},
		// sites-enabled without a sites-available beside it is not Debian's layout
		{"managed-mounts", LayoutDebian, "sites-available/a.example.conf", "sites-enabled/a.example.conf", ""},
		{"nested-globs", LayoutSingleFile, "pyvhost.d/a.example.conf", "pyvhost.d/a.example.conf", "include pyvhost.d/*.conf;"},
	}
	for _, tc := range tests {
		t.Run(tc.tree, func(t *testing.T) {
			root, _ := filepath.Abs(filepath.Join("../testdata/nginx", tc.tree))
			tree, err := Load(filepath.Join(root, "nginx.conf"))
			if err != nil {
				t.Fatal(err)
			}
			l, err := tree.Layout()
			if err != nil {
				t.Fatal(err)
			}
			if l.Kind != tc.kind {
				t.Errorf("kind = %s, want %s", l.Kind, tc.kind)
			}
			if got := l.SitePath("a.example"); got != filepath.Join(root, tc.sitePath) {
				t.Errorf("SitePath = %s, want %s", got, tc.sitePath)
			}
			if got := l.LoadedPath("a.example"); got != filepath.Join(root, tc.loadedPath) {
				t.Errorf("LoadedPath = %s, want %s", got, tc.loadedPath)
			}
			if l.IncludeLine != tc.include {
				t.Errorf("IncludeLine = %q, want %q", l.IncludeLine, tc.include)
			}
		})
	}
}

func TestLayoutNoHTTP(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte("events {}\nstream { server { listen 53 udp; } }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree, err := Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Layout(); err == nil || !strings.Contains(err.Error(), "no http block") {
		t.Fatalf("Layout() error = %v, want 'no http block'", err)
	}
}
