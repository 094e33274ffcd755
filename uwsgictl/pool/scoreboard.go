package pool

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The scoreboard is shared memory between the daemon and one app's worker
// processes (like uWSGI's): each worker writes its own slot after every
// request and the daemon reads them for scaling, harakiri, idle detection
// and stats, with no message on the request path. The layout is in
// protocol.go. Every field is read and written whole with atomic loads and
// stores (a torn start time would harakiri a healthy worker), and a slot's
// state, start and request name are read under its sequence counter.

type scoreboard struct {
	file *os.File
	mem  []byte
	n    int
}

// newScoreboard is an app's scoreboard, not yet shared: private zeroed
// memory (what a reader of an app never started sees) until share, so an
// idle site holds no descriptor for it.
func newScoreboard(slots int) *scoreboard {
	return &scoreboard{mem: make([]byte, appHeaderSize+slots*slotSize), n: slots}
}

// share puts the scoreboard in shared memory the app's processes map, once
// (before its first process starts).
func (s *scoreboard) share() error {
	if s.file != nil {
		return nil
	}
	// close-on-exec: each zygote gets its own app's scoreboard (ExtraFiles), and
	// no process the daemon starts may hold another's
	fd, err := unix.MemfdCreate("pyvhost-scoreboard", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("create scoreboard: %w", err)
	}
	size := len(s.mem)
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return fmt.Errorf("size scoreboard: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("map scoreboard: %w", err)
	}
	copy(mem, s.mem)
	s.file, s.mem = os.NewFile(uintptr(fd), "scoreboard"), mem
	return nil
}

func (s *scoreboard) close() {
	if s.file != nil {
		_ = unix.Munmap(s.mem)
		s.file.Close()
	}
}

// release unmaps the shared memory of an app whose processes are gone and
// puts a private zeroed copy in its place, so a late reader of its stats
// reads zeros rather than unmapped memory (make's memory is 8-aligned, as
// the atomic loads need).
func (s *scoreboard) release() {
	if s.file == nil {
		return
	}
	old := s.mem
	s.mem = make([]byte, len(old))
	_ = unix.Munmap(old)
	s.file.Close()
	s.file = nil
}

func (s *scoreboard) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&s.mem[off])) }
func (s *scoreboard) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&s.mem[off])) }

func (s *scoreboard) setListenShared(on bool) {
	v := uint32(0)
	if on {
		v = 1
	}
	atomic.StoreUint32(s.u32(hdrListenOff), v)
}

func (s *scoreboard) listenShared() bool { return atomic.LoadUint32(s.u32(hdrListenOff)) != 0 }

// lastOwnShared is when a worker last served a request of its own that came
// through a shared socket (CLOCK_MONOTONIC ns; 0 if never).
func (s *scoreboard) lastOwnShared() uint64 { return atomic.LoadUint64(s.u64(hdrSharedOff)) }

// slotStats is one worker's slot.
type slotStats struct {
	PID        int
	State      uint32
	StartNS    uint64 // CLOCK_MONOTONIC ns when the current request began; 0 when idle
	Requests   uint64
	TotalNS    uint64
	Errors     uint64
	LastUnixMS uint64
	TX         uint64
	Forwarded  uint64
	Request    string // the last request's "METHOD /path"; current while State is busy
	Hist       [histBuckets]uint32
	Classes    [5]uint64 // answers by status class: 1xx, 2xx, 3xx, 4xx, 5xx
}

func (s *scoreboard) slot(i int) slotStats {
	base := appHeaderSize + i*slotSize
	ld := func(off int) uint64 { return atomic.LoadUint64(s.u64(base + off)) }
	st := slotStats{
		PID:        int(atomic.LoadUint32(s.u32(base + slotPID))),
		Requests:   ld(slotRequests),
		TotalNS:    ld(slotTotalNS),
		Errors:     ld(slotErrors),
		LastUnixMS: ld(slotLastMS),
		TX:         ld(slotTX),
		Forwarded:  ld(slotForward),
	}
	st.State, st.StartNS, st.Request = s.mark(base)
	for b := range st.Hist {
		st.Hist[b] = atomic.LoadUint32(s.u32(base + histOffset + 4*b))
	}
	for c := range st.Classes {
		st.Classes[c] = ld(slotClasses + 8*c)
	}
	return st
}

// mark reads a slot's state, start and request name as one: a worker
// changes them between two steps of the slot's sequence counter (odd while
// it writes). After a few tries (a worker killed mid-write leaves it odd)
// it gives what it read.
func (s *scoreboard) mark(base int) (state uint32, start uint64, req string) {
	seq := s.u64(base + slotSeq)
	for try := 0; ; try++ {
		before := atomic.LoadUint64(seq)
		state = atomic.LoadUint32(s.u32(base + slotState))
		start = atomic.LoadUint64(s.u64(base + slotStart))
		var name [reqLen]byte
		for w := 0; w < reqLen; w += 8 {
			binary.NativeEndian.PutUint64(name[w:], atomic.LoadUint64(s.u64(base+reqOffset+w)))
		}
		req = string(bytes.TrimRight(name[:], "\x00"))
		if (before%2 == 0 && atomic.LoadUint64(seq) == before) || try == 100 {
			return state, start, req
		}
		runtime.Gosched()
	}
}

// clearSlot zeroes a slot before a new worker takes it.
func (s *scoreboard) clearSlot(i int) {
	b := s.mem[appHeaderSize+i*slotSize : appHeaderSize+(i+1)*slotSize]
	clear(b)
}

// MonotonicNS reads CLOCK_MONOTONIC, the clock Python's time.monotonic_ns
// uses, so the daemon can compare workers' timestamps with its own.
func MonotonicNS() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

func nsSince(mono uint64) time.Duration {
	now := MonotonicNS()
	if mono == 0 || mono > now {
		return 0
	}
	return time.Duration(now - mono)
}
