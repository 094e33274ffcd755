package pool

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Every event arrives whole and in order, whatever its size: a packet
// larger than the buffer so far grows it instead of being cut short.
func TestReadEventsWhole(t *testing.T) {
	ctl, child, err := newZygoteCtl()
	if err != nil {
		t.Fatal(err)
	}
	if nb, err := nonblocking(ctl); err != nil || !nb {
		t.Fatalf("the daemon's end is blocking (%v): a quiet zygote would hold a thread", err)
	}
	if nb, err := nonblocking(child); err != nil || nb {
		t.Fatalf("the zygote's end is non-blocking (%v): its select-then-read loop expects blocking", err)
	}
	if err := unix.SetsockoptInt(int(child.Fd()), unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20); err != nil { // Fd: blocking, as it is
		t.Fatal(err)
	}
	sizes := []int{0, 40, 100_000, 10, 300_000, 1}
	var want []event
	for i, n := range sizes {
		ev := event{Ev: "failed", Slot: i, Traceback: strings.Repeat("x", n)}
		b, _ := json.Marshal(ev)
		if _, err := child.Write(b); err != nil {
			t.Fatalf("write packet of %d bytes: %v", len(b), err)
		}
		want = append(want, ev)
	}
	child.Close()

	var got []event
	readEvents(ctl, func(ev event) { got = append(got, ev) }) // returns at the close
	ctl.Close()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: traceback of %d bytes, slot %d; want %d bytes, slot %d",
				i, len(got[i].Traceback), got[i].Slot, len(want[i].Traceback), want[i].Slot)
		}
	}
}

// nonblocking reads f's O_NONBLOCK without f.Fd, which would clear it.
func nonblocking(f *os.File) (bool, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	fl := 0
	if err := rc.Control(func(fd uintptr) { fl, err = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil {
		return false, err
	}
	return fl&unix.O_NONBLOCK != 0, err
}
