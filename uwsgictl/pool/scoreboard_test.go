package pool

import (
	"sync/atomic"
	"testing"
)

// A scoreboard holds memory only while it is shared: never started or
// released, it reads as zeros from the one buffer all such share, which
// nothing writes.
func TestScoreboardMemoryOnlyWhileShared(t *testing.T) {
	s := newScoreboard(4)
	if st := s.slot(3); st != (slotStats{}) || s.listenShared() || s.lastOwnShared() != 0 {
		t.Fatalf("a new scoreboard reads %+v", st)
	}
	s.clearSlot(2)
	s.setListenShared(false)
	if s.mem != nil {
		t.Fatal("reads and no-op writes gave a never-started scoreboard memory of its own")
	}
	if err := s.share(); err != nil {
		t.Fatal(err)
	}
	base := appHeaderSize + 3*slotSize
	atomic.StoreUint64(s.u64(base+slotRequests), 7)
	s.setListenShared(true)
	if s.slot(3).Requests != 7 || !s.listenShared() {
		t.Fatal("a shared scoreboard lost what was written")
	}
	s.release()
	if s.mem != nil || s.file != nil {
		t.Fatal("a released scoreboard kept its memory")
	}
	if st := s.slot(3); st != (slotStats{}) || s.listenShared() {
		t.Errorf("a released scoreboard reads %+v", st)
	}
	for i, b := range zeros(s.size()) {
		if b != 0 {
			t.Fatalf("the shared zeros have byte %d = %d", i, b)
		}
	}
	s.setListenShared(true) // written before any share: its own memory, not the zeros
	if s.mem == nil || !s.listenShared() || zeros(s.size())[hdrListenOff] != 0 {
		t.Error("a write to a released scoreboard went to the shared zeros")
	}
	s.close()
}
