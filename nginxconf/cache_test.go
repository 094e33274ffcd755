package nginxconf

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// TestParseCache: a second load through the cache reuses the files stat
// says are unchanged and parses again every file that was rewritten,
// replaced, repointed, added or removed — the tree is what a fresh Load
// gives. A file changed just before it was read is never kept, so a
// rewrite within one clock tick cannot hide.
func TestParseCache(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	site := func(name string) string {
		return "server {\n    listen 80;\n    server_name " + name + ";\n}\n"
	}
	write("nginx.conf", "events {}\nhttp {\n    include sites-enabled/*;\n}\n")
	for _, n := range []string{"same", "resized", "replaced", "removed", "inplace"} {
		write("sites-enabled/"+n+".conf", site(n+".test"))
	}
	write("sites-available/one.conf", site("one.test"))
	write("sites-available/two.conf", site("two.test"))
	link := filepath.Join(dir, "sites-enabled", "linked.conf")
	if err := os.Symlink(filepath.Join(dir, "sites-available", "one.conf"), link); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")

	defer func(w time.Duration) { racyWindow = w }(racyWindow)
	racyWindow = 0 // the files above count as old
	c := NewParseCache()
	first, err := c.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	path := func(n string) string { return filepath.Join(dir, "sites-enabled", n+".conf") }
	write("sites-enabled/resized.conf", site("resized2.test"))
	write("sites-enabled/replaced.conf.tmp", site("replace.test"))
	if err := os.Rename(path("replaced")+".tmp", path("replaced")); err != nil {
		t.Fatal(err)
	}
	os.Remove(path("removed"))
	write("sites-enabled/added.conf", site("added.test"))
	os.Remove(link)
	if err := os.Symlink(filepath.Join(dir, "sites-available", "two.conf"), link); err != nil {
		t.Fatal(err)
	}
	second, err := c.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(serverNames(second), serverNames(fresh)) {
		t.Errorf("through the cache: %v\nfresh: %v", serverNames(second), serverNames(fresh))
	}
	if second.File(path("same")) != first.File(path("same")) {
		t.Error("an unchanged file was parsed again")
	}
	for _, n := range []string{"resized", "replaced", "linked"} {
		if second.File(path(n)) == first.File(path(n)) {
			t.Errorf("%s: the changed file's old parse was reused", n)
		}
	}
}

// TestParseCacheKeepsOnlySettledFiles: a file changed within racyWindow of
// its read may be changed again within the same clock tick, keeping its
// times and size: its parse is not kept.
func TestParseCacheKeepsOnlySettledFiles(t *testing.T) {
	read := time.Unix(1000, 0)
	at := func(d time.Duration) int64 { return read.Add(d).UnixNano() }
	for _, tc := range []struct {
		name         string
		mtime, ctime int64
		want         bool
	}{
		{"changed long ago", at(-time.Hour), at(-time.Hour), true},
		{"just written", at(-time.Millisecond), at(-time.Millisecond), false},
		{"an old mtime put back, changed just now", at(-time.Hour), at(-10 * time.Millisecond), false},
		{"exactly the window", at(-racyWindow), at(-racyWindow), true},
		{"a clock ahead of the read", at(time.Second), at(time.Second), false},
	} {
		if got := (fileID{mtime: tc.mtime, ctime: tc.ctime}).settled(read); got != tc.want {
			t.Errorf("%s: settled %v, want %v", tc.name, got, tc.want)
		}
	}
}

func serverNames(t *Tree) []string {
	var out []string
	for _, s := range t.Servers() {
		out = append(out, s.ServerNames...)
	}
	return out
}
