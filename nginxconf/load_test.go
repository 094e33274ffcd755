package nginxconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A glob of many files is parsed in parallel, yet the tree is what loading
// them one by one gives: the files in nginx's order, the includes they make
// followed, and the first error in that order the one reported.
func TestLoadManyFilesInOrder(t *testing.T) {
	const n = 40
	site := func(i int) string {
		return fmt.Sprintf("server {\n    listen 80;\n    server_name s%02d.test;\n    include snippets/s%02d;\n}\n", i, i)
	}
	tests := []struct {
		name   string
		broken []int // sites whose file does not parse
		want   string
	}{
		{name: "all parse"},
		{name: "two broken", broken: []int{31, 12}, want: "s12.test.conf:7: unexpected end of file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"sites-enabled", "snippets"} {
				if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			write := func(name, body string) {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("nginx.conf", "events {}\nhttp {\n    include sites-enabled/*;\n}\n")
			for i := range n {
				body := site(i)
				for _, b := range tc.broken {
					if b == i {
						body = "server {\n" + body // an unclosed block
					}
				}
				write(fmt.Sprintf("sites-enabled/s%02d.test.conf", i), body)
				write(fmt.Sprintf("snippets/s%02d", i), "client_max_body_size 1m;\n")
			}
			tree, err := Load(filepath.Join(dir, "nginx.conf"))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want one naming %s", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range tree.Files {
				got = append(got, strings.TrimPrefix(f.Path, dir+"/"))
			}
			want := []string{"nginx.conf"}
			for i := range n {
				want = append(want, fmt.Sprintf("sites-enabled/s%02d.test.conf", i), fmt.Sprintf("snippets/s%02d", i))
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("files in the order\n%v\nwant\n%v", got, want)
			}
			if s := tree.Sites(); len(s) != 0 {
				t.Errorf("%d sites route to uwsgi, want none", len(s))
			}
			if len(tree.ahead) != 0 {
				t.Errorf("%d files parsed ahead were never loaded", len(tree.ahead))
			}
		})
	}
}

// TestLoadMainReadsOnlyTheMainContext: pid and user come from the main
// file and what it includes outside blocks; LoadMain never opens the
// http block's files (10,000 of them on a big box), so one that does not
// even parse changes nothing.
func TestLoadMainReadsOnlyTheMainContext(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"nginx.conf":             "include main.d/*.conf;\nevents {}\nhttp {\n    include sites-enabled/*;\n}\n",
		"main.d/pid.conf":        "pid /run/custom.pid;\nuser www-data;\n",
		"sites-enabled/a.conf":   "server {\n    listen 80;\n    server_name a.test;\n}\n",
		"sites-enabled/bad.conf": "server {\n", // unclosed: Load fails on it
	} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "nginx.conf")
	if _, err := Load(conf); err == nil {
		t.Fatal("Load of a tree with an unclosed block succeeded: the test proves nothing")
	}
	tree, err := LoadMain(conf)
	if err != nil {
		t.Fatalf("LoadMain: %v", err)
	}
	if got := tree.PidFile(); got != "/run/custom.pid" {
		t.Errorf("pid %q, want /run/custom.pid (from a main-context include)", got)
	}
	if got := tree.User(); got != "www-data" {
		t.Errorf("user %q, want www-data", got)
	}
	if len(tree.Files) != 2 {
		t.Errorf("LoadMain read %d files, want the main file and its main-context include", len(tree.Files))
	}
	if got := PidFile("/nonexistent/nginx", conf, dir); got != "/run/custom.pid" {
		t.Errorf("PidFile %q, want /run/custom.pid", got)
	}
}
