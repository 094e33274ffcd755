package daemon

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
	"golang.org/x/sys/unix"
)

// listener is a listening socket the daemon owns and hands to workers.
type listener struct {
	addr string   // as given: host:port or a unix path
	file *os.File // non-blocking, shared with the worker processes
	fd   int
}

// listen binds a -s address: host:port, :port (every interface) or a unix
// socket path. The socket is non-blocking: many workers wait on it. ctl is
// the daemon's control socket: a unix socket path still answering while no
// daemon answers there is held by leftovers of a dead daemon, and is taken
// over.
func listen(addr string, backlog int, ctl string) (*listener, error) {
	var (
		fd  int
		err error
	)
	if strings.Contains(addr, "/") || strings.HasPrefix(addr, "unix:") {
		path := strings.TrimPrefix(addr, "unix:")
		fd, err = listenUnix(path, backlog, ctl)
	} else {
		fd, err = listenTCP(addr, backlog)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return &listener{addr: addr, file: pool.SharedFile(fd, addr), fd: fd}, nil
}

// deferAccept is how long the kernel holds a TCP connection that has not
// sent anything before a worker is woken for it.
const deferAccept = 4 * time.Second

func listenTCP(addr string, backlog int) (int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return -1, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return -1, fmt.Errorf("bad port %q", port)
	}
	ip := net.IPv4zero
	if host != "" {
		ips, err := net.LookupIP(host)
		if err != nil || len(ips) == 0 {
			return -1, fmt.Errorf("resolve %s: %v", host, err)
		}
		ip = ips[0]
	}
	var sa unix.Sockaddr
	family := unix.AF_INET
	if v4 := ip.To4(); v4 != nil {
		sa4 := &unix.SockaddrInet4{Port: p}
		copy(sa4.Addr[:], v4)
		sa = sa4
	} else {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Port: p}
		copy(sa6.Addr[:], ip.To16())
		sa = sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	// As uWSGI does on Linux: a connection is accepted only once its request
	// has arrived, so a worker never accepts and then waits for nginx.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, int(deferAccept/time.Second))
	return bindListen(fd, sa, backlog)
}

// bindListen binds and listens, closing fd on failure.
func bindListen(fd int, sa unix.Sockaddr, backlog int) (int, error) {
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func listenUnix(path string, backlog int, ctl string) (int, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return -1, err
	}
	// A socket file left by an earlier run is replaced; anything else is not.
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return -1, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			if !leftover(ctl) {
				return -1, fmt.Errorf("%s is in use by another process (a daemon answers on %s: stop it first, or give this one other sockets)", path, ctl)
			}
			// Those holding it (processes a killed daemon's apps started,
			// say) keep their socket; new connections come to ours.
		}
		os.Remove(path)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	// Connecting needs write permission on the socket file, which the
	// umask denies others until grantNginx sets the final owner and mode.
	return bindListen(fd, &unix.SockaddrUnix{Name: path}, backlog)
}

// leftover reports whether a socket that still accepts can only be held by
// leftovers of a dead daemon: no daemon answers on its control socket.
func leftover(ctl string) bool {
	if ctl == "" {
		return false
	}
	c, err := net.DialTimeout("unix", ctl, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// isAllInterfaces reports whether a -s address binds every interface.
func isAllInterfaces(addr string) bool {
	if strings.Contains(addr, "/") {
		return false
	}
	host, _, err := net.SplitHostPort(addr)
	return err == nil && (host == "" || host == "0.0.0.0" || host == "::")
}

// grantNginx lets nginx's workers, and nobody else, connect to a unix
// socket: as root the socket is given to nginx's user; otherwise it must
// stay open to others (nginx runs as another user) and the log says so.
func grantNginx(path, nginxUser string, logf func(string, ...any)) {
	if os.Geteuid() != 0 {
		_ = os.Chmod(path, 0o666)
		logf("warning: %s is connectable by every local user (not root, so it cannot be given to nginx's user alone)", path)
		return
	}
	uid, gid := 65534, 65534
	if u, err := user.Lookup(nginxUser); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	_ = os.Chown(path, uid, gid)
	_ = os.Chmod(path, 0o600)
}
