package pool

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"sync"
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

// newScoreboard is an app's scoreboard, not yet shared: it reads as zeros
// (zeroBoard, what a reader of an app never started sees) until share, so
// an idle site holds no descriptor and no memory for it.
func newScoreboard(slots int) *scoreboard {
	return &scoreboard{n: slots}
}

func (s *scoreboard) size() int { return appHeaderSize + s.n*slotSize }

// view is the memory the scoreboard is read from: its own once shared (or
// written), else zeroBoard's.
func (s *scoreboard) view() []byte {
	if s.mem != nil {
		return s.mem
	}
	return zeros(s.size())
}

// zeroBoard is what the scoreboards of apps that have no processes read:
// zeros, one buffer for all of them (10,000 sites held 13 MB of private
// zeroed copies). Nothing writes it.
var zeroBoard struct {
	sync.Mutex
	mem atomic.Pointer[[]byte]
}

func zeros(size int) []byte {
	if p := zeroBoard.mem.Load(); p != nil && len(*p) >= size {
		return *p
	}
	zeroBoard.Lock()
	defer zeroBoard.Unlock()
	if p := zeroBoard.mem.Load(); p != nil && len(*p) >= size {
		return *p
	}
	b := make([]byte, size)
	zeroBoard.mem.Store(&b)
	return b
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
	size := s.size()
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

// release unmaps the shared memory of an app whose processes are gone; a
// late reader of its stats reads zeros (zeroBoard) rather than unmapped
// memory.
func (s *scoreboard) release() {
	if s.file == nil {
		return
	}
	old := s.mem
	s.mem = nil
	_ = unix.Munmap(old)
	s.file.Close()
	s.file = nil
}

// u32 and u64 point into the scoreboard for atomic loads (make's memory
// and mmap's are 8-aligned, as they need); only setListenShared and
// clearSlot store, into the scoreboard's own memory.
func (s *scoreboard) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&s.view()[off])) }
func (s *scoreboard) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&s.view()[off])) }

func (s *scoreboard) setListenShared(on bool) {
	if s.mem == nil {
		if !on {
			return // reads as zero already
		}
		s.mem = make([]byte, s.size()) // not shared yet: its own from now on
	}
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
	if s.mem == nil {
		return // reads as zeros already
	}
	clear(s.mem[appHeaderSize+i*slotSize : appHeaderSize+(i+1)*slotSize])
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
