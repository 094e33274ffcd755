package pool

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The scoreboard is shared memory between the daemon and one app's worker
// processes (like uWSGI's): each worker writes its own slot after every
// request and the daemon reads them for scaling, harakiri, idle detection
// and stats, with no message on the request path. Layout, kept in step with
// templates/worker.py:
//
//	app header (64 bytes): u32 listen_shared (daemon writes), u32 pad,
//	                       u64 last_own_shared_ns (workers write)
//	slot i (256 bytes) at 64+256*i: u32 pid, u32 state, u64 start_ns,
//	    u64 requests, u64 total_ns, u64 errors, u64 last_unix_ms, u64 tx,
//	    u64 forwarded (requests handed back for another app), at +64 the
//	    request in progress as "METHOD /path" (64 bytes), then at +128: 32 x u32 latency buckets (bucket b counts
//	    requests that took less than 2^b microseconds).
const (
	appHeaderSize = 64
	slotSize      = 256
	reqOffset     = 64 // "METHOD /path" of the request in progress, NUL-padded
	reqLen        = 64
	histOffset    = 128
	histBuckets   = 32
)

// Worker states in a slot.
const (
	stateFree = 0
	stateIdle = 1
	stateBusy = 2
)

type scoreboard struct {
	file *os.File
	mem  []byte
	n    int
}

func newScoreboard(slots int) (*scoreboard, error) {
	fd, err := unix.MemfdCreate("pyvhost-scoreboard", 0)
	if err != nil {
		return nil, fmt.Errorf("create scoreboard: %w", err)
	}
	size := appHeaderSize + slots*slotSize
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("size scoreboard: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("map scoreboard: %w", err)
	}
	return &scoreboard{file: os.NewFile(uintptr(fd), "scoreboard"), mem: mem, n: slots}, nil
}

func (s *scoreboard) close() {
	_ = unix.Munmap(s.mem)
	s.file.Close()
}

func (s *scoreboard) setListenShared(on bool) {
	v := uint32(0)
	if on {
		v = 1
	}
	binary.LittleEndian.PutUint32(s.mem[0:], v)
}

func (s *scoreboard) listenShared() bool { return binary.LittleEndian.Uint32(s.mem[0:]) != 0 }

// lastOwnShared is when a worker last served a request of its own that came
// through a shared socket (CLOCK_MONOTONIC ns; 0 if never).
func (s *scoreboard) lastOwnShared() uint64 { return binary.LittleEndian.Uint64(s.mem[8:]) }

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
}

func (s *scoreboard) slot(i int) slotStats {
	b := s.mem[appHeaderSize+i*slotSize:]
	st := slotStats{
		PID:        int(binary.LittleEndian.Uint32(b[0:])),
		State:      binary.LittleEndian.Uint32(b[4:]),
		StartNS:    binary.LittleEndian.Uint64(b[8:]),
		Requests:   binary.LittleEndian.Uint64(b[16:]),
		TotalNS:    binary.LittleEndian.Uint64(b[24:]),
		Errors:     binary.LittleEndian.Uint64(b[32:]),
		LastUnixMS: binary.LittleEndian.Uint64(b[40:]),
		TX:         binary.LittleEndian.Uint64(b[48:]),
		Forwarded:  binary.LittleEndian.Uint64(b[56:]),
		Request:    string(bytes.TrimRight(b[reqOffset:reqOffset+reqLen], "\x00")),
	}
	for i := range st.Hist {
		st.Hist[i] = binary.LittleEndian.Uint32(b[histOffset+4*i:])
	}
	return st
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
