package appconf

import (
	"os"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	k := pool.Key{Pyhome: "/srv/a/.venv", Chdir: "/srv/a", Script: "app"}
	if s, err := Load(dir, k); err != nil || len(s.Env) != 0 || !s.Pool.IsZero() {
		t.Fatalf("no file: %+v, %v; want empty settings", s, err)
	}
	four := 4
	want := Settings{App: k, Env: map[string]string{"SECRET_KEY": "s3cr3t\nline2", "DEBUG": "False"}, Pool: Pool{Processes: &four}}
	if err := Save(dir, want); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(Path(dir, k))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("settings file: %v, %v; want mode 0600", st, err)
	}
	if d, _ := os.Stat(Dir(dir)); d.Mode().Perm() != 0o700 {
		t.Errorf("settings dir mode %v, want 0700", d.Mode().Perm())
	}
	got, err := Load(dir, k)
	if err != nil || got.Env["SECRET_KEY"] != "s3cr3t\nline2" || *got.Pool.Processes != 4 || got.Stamp() != want.Stamp() {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, want)
	}
	if strings.Join(got.Environ(), ",") != "DEBUG=False,SECRET_KEY=s3cr3t\nline2" {
		t.Errorf("Environ = %q", got.Environ())
	}
	other := pool.Key{Pyhome: "/srv/a/.venv", Chdir: "/srv/a", Script: "app:other"}
	if s, _ := Load(dir, other); len(s.Env) != 0 {
		t.Errorf("another app got this one's env: %v", s.Env)
	}
	// A file that names another app (copied by hand, say) is refused, not used.
	b, _ := os.ReadFile(Path(dir, k))
	if err := os.WriteFile(Path(dir, other), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, other); err == nil || !strings.Contains(err.Error(), "names app") {
		t.Errorf("Load of a file naming another app = %v, want an error", err)
	}
	// Nothing left to store: the file goes.
	if err := Save(dir, Settings{App: k}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(Path(dir, k)); !os.IsNotExist(err) {
		t.Errorf("empty settings left their file: %v", err)
	}
}

func TestPool(t *testing.T) {
	two, zero, big := 2, 0, 5000
	p := Pool{Processes: &two}.Merge(Pool{Harakiri: &zero})
	if p.String() != "processes=2 harakiri=0s" {
		t.Errorf("String = %q", p.String())
	}
	cfg := pool.Config{Processes: 8, Harakiri: 30e9, Idle: 60e9}
	p.Apply(&cfg)
	if cfg.Processes != 2 || cfg.Harakiri != 0 || cfg.Idle != 60e9 {
		t.Errorf("Apply: %+v", cfg)
	}
	if err := (Pool{Processes: &big}).Validate(); err == nil || !strings.Contains(err.Error(), "--processes 5000: want 1 to 1024") {
		t.Errorf("Validate = %v", err)
	}
	if err := (Pool{Processes: &zero}).Validate(); err == nil {
		t.Error("--processes 0 accepted")
	}
}
