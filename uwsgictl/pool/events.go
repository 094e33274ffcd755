package pool

import (
	"encoding/json"
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// readEvents reads a zygote's events (see event) until it closes its end
// of ctl. Each event is one SOCK_SEQPACKET packet, which must be read whole
// (a short read drops the rest): its size is peeked first, so the buffer
// is as big as the largest event so far — most are a few dozen bytes, a
// failed import's traceback a few kilobytes — rather than a fixed megabyte
// for every running app (1,000 sites visited one after another held 270 MB
// of them). ctl is non-blocking (see newZygoteCtl), so a quiet zygote parks
// a goroutine in the poller, not a thread.
func readEvents(ctl *os.File, onEvent func(event)) {
	rc, err := ctl.SyscallConn()
	if err != nil {
		return
	}
	var buf []byte
	for {
		p, err := readPacket(rc, &buf)
		if err != nil || len(p) == 0 {
			return // closed: the zygote has exited
		}
		var ev event
		if json.Unmarshal(p, &ev) == nil {
			onEvent(ev)
		}
	}
}

// readPacket reads one packet whole into *buf, growing it to fit; an empty
// packet is end of file.
func readPacket(rc syscall.RawConn, buf *[]byte) ([]byte, error) {
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		n, rerr = recvRetry(int(fd), nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if rerr != nil || n == 0 {
			return !errors.Is(rerr, unix.EAGAIN)
		}
		if n > len(*buf) {
			*buf = make([]byte, n)
		}
		n, rerr = recvRetry(int(fd), *buf, 0)
		return true
	})
	if err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	return (*buf)[:n], nil
}

func recvRetry(fd int, p []byte, flags int) (int, error) {
	for {
		n, _, err := unix.Recvfrom(fd, p, flags)
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}

// newZygoteCtl is the socket pair a zygote and the daemon talk on: the
// daemon's end non-blocking (so os.File puts it in the poller), the
// zygote's blocking, as its select-then-read loop expects.
func newZygoteCtl() (ctl, child *os.File, err error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.SetNonblock(pair[0], true); err != nil {
		unix.Close(pair[0])
		unix.Close(pair[1])
		return nil, nil, err
	}
	return os.NewFile(uintptr(pair[0]), "zygote-ctl"), os.NewFile(uintptr(pair[1]), "zygote-ctl-child"), nil
}
