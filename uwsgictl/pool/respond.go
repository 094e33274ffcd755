package pool

import (
	"fmt"
	"net/http"
	"os"

	"golang.org/x/sys/unix"
)

// Respond writes a small plain-text HTTP error response on a connection
// the daemon holds (a request it cannot hand to a worker); nginx passes the
// status on to the client.
func Respond(fd int, code int) {
	body := fmt.Sprintf("%d %s\n", code, http.StatusText(code))
	msg := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, http.StatusText(code), len(body), body)
	_, _ = unix.Write(fd, []byte(msg))
}

// FD returns a file's descriptor without (*os.File).Fd's side effect of
// switching it to blocking mode: the sockets here are shared with worker
// processes that rely on them staying non-blocking.
func FD(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}

// SharedFile wraps a socket the daemon shares with worker processes and
// makes it non-blocking (several workers wait on it; one wake-up may find
// nothing). The *os.File is made while the descriptor is still blocking so
// Go's netpoller never registers it: otherwise every connection arriving
// for a worker would wake the daemon too.
func SharedFile(fd int, name string) *os.File {
	f := os.NewFile(uintptr(fd), name)
	_ = unix.SetNonblock(fd, true)
	return f
}
