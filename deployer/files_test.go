package deployer

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/nginxconf"
)

// tree writes a small single-file nginx configuration (pyvhost will modify
// nginx.conf itself) and a Debian-style enabled site, and returns the conf.
func tree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"nginx.conf":                   "events {}\r\nhttp {\r\n    include sites-enabled/*;\r\n    server { listen 8080; server_name keep.test; }\r\n}\r\n",
		"sites-available/other.conf":   "server { listen 8081; server_name other.test; }\n",
		"sites-available/.hidden-note": "not loaded\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "sites-enabled"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../sites-available/other.conf", filepath.Join(dir, "sites-enabled", "other.conf")); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "nginx.conf")
}

// snapshot lists every path with its mode, link target or bytes.
func snapshotTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		b.WriteString(p + " " + info.Mode().String())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			b.WriteString(" -> " + target)
		case info.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			b.WriteString(" " + string(data))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func planChanges(t *testing.T, conf string, spec nginxconf.SiteSpec) []nginxconf.Change {
	t.Helper()
	tr, err := nginxconf.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := tr.PlanSite(spec)
	if err != nil {
		t.Fatal(err)
	}
	return sc.Changes
}

func spec(domain string) nginxconf.SiteSpec {
	return nginxconf.SiteSpec{Domain: domain, Apps: []nginxconf.AppSpec{{AppDir: "/srv/" + domain, Module: "app"}}}
}

func TestTransactionRollbackIsByteExact(t *testing.T) {
	for _, layout := range []string{"debian", "single-file"} {
		t.Run(layout, func(t *testing.T) { testRollback(t, layout) })
	}
}

// testRollback: Debian (a new file and its symlink) and single file (a new
// directory and file, and nginx.conf itself edited: CRLF and mode 0640
// must come back exactly).
func testRollback(t *testing.T, layout string) {
	conf := tree(t)
	if layout == "single-file" {
		if err := os.WriteFile(conf, []byte("events {}\r\nhttp {\r\n    server { listen 8080; server_name keep.test; }\r\n}\r\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Dir(conf)
	before := snapshotTree(t, root)
	changes := planChanges(t, conf, spec("new.test"))
	if len(changes) != 2 {
		t.Fatalf("want two changes, got %d", len(changes))
	}
	state := t.TempDir()
	tx, err := Begin(state, changes)
	if err != nil {
		t.Fatal(err)
	}
	if snapshotTree(t, root) == before {
		t.Fatal("Begin changed nothing")
	}
	if _, err := os.Stat(filepath.Join(state, journalName)); err != nil {
		t.Fatalf("no journal while the change is open: %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if after := snapshotTree(t, root); after != before {
		t.Fatalf("rollback is not byte for byte:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(state, journalName)); err == nil {
		t.Fatal("journal left after rollback")
	}
}

func TestTransactionCommitKeepsChanges(t *testing.T) {
	conf := tree(t)
	changes := planChanges(t, conf, spec("new.test"))
	state := t.TempDir()
	tx, err := Begin(state, changes)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Kind == nginxconf.Create || c.Kind == nginxconf.Modify {
			if b, err := os.ReadFile(c.Path); err != nil || string(b) != string(c.New) {
				t.Errorf("%s not written: %v", c.Path, err)
			}
		}
	}
	// No temp files left in nginx's directories.
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(conf), "*", ".*.pyvhost-*"))
	top, _ := filepath.Glob(filepath.Join(filepath.Dir(conf), ".*.pyvhost-*"))
	if len(matches)+len(top) > 0 {
		t.Errorf("temp files left: %v %v", matches, top)
	}
}

// TestRecoverAfterCrash: a run that died between writing and finishing
// leaves a journal; the next run puts the old files back.
func TestRecoverAfterCrash(t *testing.T) {
	conf := tree(t)
	root := filepath.Dir(conf)
	before := snapshotTree(t, root)
	state := t.TempDir()
	if _, err := Begin(state, planChanges(t, conf, spec("crash.test"))); err != nil {
		t.Fatal(err)
	}
	// ... the process dies here. A new change is refused until repaired:
	if _, err := Begin(state, planChanges(t, conf, spec("other2.test"))); err == nil || !strings.Contains(err.Error(), "unfinished change") {
		t.Fatalf("Begin over an unfinished change: %v", err)
	}
	repaired, err := Recover(state)
	if err != nil || !repaired {
		t.Fatalf("Recover: %v %v", repaired, err)
	}
	if after := snapshotTree(t, root); after != before {
		t.Fatalf("recovery is not byte for byte:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if repaired, err := Recover(state); err != nil || repaired {
		t.Fatalf("second Recover: %v %v, want nothing to do", repaired, err)
	}
}

// TestRepairRemovesStaleTemps: a write killed between creating its temp
// file and renaming it leaves a dot-file next to the target; the repair
// (and the next journal) takes it away with the rest of the half-done
// change.
func TestRepairRemovesStaleTemps(t *testing.T) {
	state, dir := t.TempDir(), t.TempDir()
	target := filepath.Join(dir, "x[1].conf") // glob characters in the name are matched literally
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Begin(state, []nginxconf.Change{{Kind: nginxconf.Modify, Path: target, New: []byte("new")}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tempPrefix(target) + "123", tempPrefix(filepath.Join(state, journalName)) + "456"} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(dir, ".x.conf.pyvhost-789") // another file's temp: left alone
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if repaired, err := Recover(state); err != nil || !repaired {
		t.Fatalf("Recover: %v %v", repaired, err)
	}
	if b, _ := os.ReadFile(target); string(b) != "old" {
		t.Fatalf("target %q after the repair", b)
	}
	if _, err := Begin(state, nil); err != nil { // the next change clears the journal's own temp
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 2 || !slices.Contains(names, ".x.conf.pyvhost-789") {
		t.Fatalf("files after the repair: %v, want the target and the other file's temp", names)
	}
	if m, _ := filepath.Glob(filepath.Join(state, ".*pyvhost-*")); len(m) != 0 {
		t.Fatalf("the journal's stale temp is still there: %v", m)
	}
}

// TestInterruptedChangeTakesItsRelease: a change killed after recording
// its release but before its commit loses the release with its nginx
// files, so the newest release is what nginx has (a deploy after the
// repair would otherwise take the restored file for a hand edit).
func TestInterruptedChangeTakesItsRelease(t *testing.T) {
	state, dir := t.TempDir(), t.TempDir()
	site := filepath.Join(dir, "example.com.conf")
	cfg := []byte("server {\n    listen 80;\n    server_name example.com;\n    location / { return 200; }\n}\n")
	sc := &nginxconf.SiteChanges{SitePath: site, Spec: nginxconf.SiteSpec{Domain: "example.com"},
		Changes: []nginxconf.Change{{Kind: nginxconf.Create, Path: site, New: cfg}}}
	tx, err := Begin(state, sc.Changes)
	if err != nil {
		t.Fatal(err)
	}
	if err := recordChange(state, sc, tx); err != nil {
		t.Fatal(err)
	}
	if all, _ := Releases(state, "example.com"); len(all) != 1 {
		t.Fatalf("%d releases recorded, want 1", len(all))
	}
	// killed here: no Commit
	if repaired, err := Recover(state); err != nil || !repaired {
		t.Fatalf("Recover: %v %v", repaired, err)
	}
	if _, err := os.Stat(site); !os.IsNotExist(err) {
		t.Fatalf("the site file after the repair: %v", err)
	}
	if _, err := os.Stat(releaseDir(state, "example.com")); !os.IsNotExist(err) {
		t.Fatalf("the release dir after the repair: %v, want it gone with its release", err)
	}
}
