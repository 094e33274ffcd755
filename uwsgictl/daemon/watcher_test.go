package daemon

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A listener armed once comes out of wait once, however many connections
// wait in it; armed again it comes out again; forgotten, never.
func TestWatcherOneShot(t *testing.T) {
	w, err := newWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	path := filepath.Join(t.TempDir(), "app.sock")
	l, err := listen(path, 16, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.file.Close()
	other, err := listen(filepath.Join(t.TempDir(), "other.sock"), 16, "")
	if err != nil {
		t.Fatal(err)
	}
	defer other.file.Close()
	for _, x := range []*listener{l, other} {
		if err := w.arm(x); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.wait(10 * time.Millisecond); len(got) != 0 {
		t.Fatalf("nothing waits, yet %d came out", len(got))
	}
	for range 2 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	steps := []struct {
		name string
		do   func()
		want []*listener
	}{
		{"armed, two connections waiting", func() {}, []*listener{l}},
		{"not armed again", func() {
			// the kernel itself reports nothing: a level-triggered listener would wake the loop every tick
			if n, _ := unix.EpollWait(w.ep, make([]unix.EpollEvent, 4), 0); n != 0 {
				t.Errorf("epoll reports %d events for a listener that fired and was not armed again", n)
			}
		}, nil},
		{"armed again", func() { mustArm(t, w, l) }, []*listener{l}},
		{"armed again, then forgotten", func() { mustArm(t, w, l); w.forget(l) }, nil},
	}
	for _, s := range steps {
		s.do()
		got := w.wait(50 * time.Millisecond)
		if len(got) != len(s.want) || (len(got) == 1 && got[0] != s.want[0]) {
			t.Errorf("%s: %d listeners came out, want %d", s.name, len(got), len(s.want))
		}
		if w.isArmed(l) {
			t.Errorf("%s: still armed after wait", s.name)
		}
	}
	if !w.isArmed(other) {
		t.Error("the quiet listener lost its arming")
	}
}

func mustArm(t *testing.T, w *watcher, l *listener) {
	t.Helper()
	if err := w.arm(l); err != nil {
		t.Fatal(err)
	}
}
