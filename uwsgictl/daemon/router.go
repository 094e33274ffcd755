package daemon

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
	"github.com/pyvhost/pyvhost/uwsgictl/wire"
	"golang.org/x/sys/unix"
)

// maxWaiting bounds the connections the daemon holds while their vars
// arrive (slow or idle peers workers handed over): past it the newest is
// dropped, so idle peers cannot take the daemon to its descriptor limit.
const maxWaiting = 4096

// readForwards receives the connections workers hand back, with what they
// read of them: a request for another app (routed now), or one whose vars
// had not all arrived (the daemon waits for the rest, off the workers).
func (d *Daemon) readForwards() {
	fd := pool.FD(d.toMasterR)
	buf := make([]byte, wire.HeaderSize+wire.MaxBufferSize+64<<10)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return
		}
		conn := -1
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if fds, err := unix.ParseUnixRights(&m); err == nil {
					for i, f := range fds {
						if i == 0 {
							conn = f
						} else {
							unix.Close(f)
						}
					}
				}
			}
		}
		if conn < 0 {
			continue
		}
		prefix := make([]byte, n)
		copy(prefix, buf[:n])
		if packetComplete(prefix) {
			d.route(conn, prefix, true)
			continue
		}
		d.awaitPacket(conn, prefix, false)
	}
}

// packetComplete reports whether b holds a whole header and vars block.
func packetComplete(b []byte) bool {
	if len(b) < wire.HeaderSize {
		return false
	}
	h := wire.ParseHeader([wire.HeaderSize]byte(b[:wire.HeaderSize]))
	return len(b) >= wire.HeaderSize+int(h.Size)
}

// acceptAndRoute accepts what waits on a listener the daemon watches (no
// worker accepts there right now) and routes each connection.
func (d *Daemon) acceptAndRoute(l *listener, viaShared bool) {
	for {
		conn, _, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: nothing more waits
		}
		d.awaitPacket(conn, nil, viaShared)
	}
}

// awaitPacket reads the rest of a connection's header and vars in a
// goroutine, then routes it; at most maxWaiting at once.
func (d *Daemon) awaitPacket(conn int, prefix []byte, viaShared bool) {
	if d.waiting.Add(1) > maxWaiting {
		d.waiting.Add(-1)
		d.log.logf("dropped a connection: %d are already waiting for their request to arrive", maxWaiting)
		unix.Close(conn)
		return
	}
	go func() {
		defer d.waiting.Add(-1)
		if conn, prefix, ok := d.readPacket(conn, prefix); ok {
			d.route(conn, prefix, viaShared)
		}
	}()
}

// readPacket reads the rest of a request's header and vars (after prefix)
// within --socket-timeout, on Go's poller: a silent peer costs a parked
// goroutine, not a thread or a worker. It returns the connection (a new
// descriptor for it) and the bytes read; false when the peer went away,
// was too slow or sent too much (answered and closed).
func (d *Daemon) readPacket(conn int, prefix []byte) (int, []byte, bool) {
	if err := unix.SetNonblock(conn, true); err != nil {
		unix.Close(conn)
		return -1, nil, false
	}
	f := os.NewFile(uintptr(conn), "request")
	defer f.Close()
	_ = f.SetReadDeadline(time.Now().Add(d.socketTimeout()))
	buf := append(make([]byte, 0, 4096), prefix...)
	tmp := make([]byte, 65536)
	for !packetComplete(buf) {
		if len(buf) >= wire.HeaderSize {
			if h := wire.ParseHeader([wire.HeaderSize]byte(buf[:wire.HeaderSize])); int(h.Size) > d.cfg.BufferSize {
				d.log.logf("refused a request: uwsgi vars block of %d bytes is larger than --buffer-size %d", h.Size, d.cfg.BufferSize)
				respondFile(f, 431)
				return -1, nil, false
			}
		}
		n, err := f.Read(tmp)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				d.log.logf("dropped a connection whose request did not arrive within --socket-timeout %s (%d bytes came)", d.socketTimeout(), len(buf))
			}
			return -1, nil, false
		}
		buf = append(buf, tmp[:n]...)
	}
	// The connection outlives f: hand on a descriptor of its own.
	nfd := -1
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { nfd, _ = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) })
	}
	if nfd < 0 {
		return -1, nil, false
	}
	return nfd, buf, true
}

// respondFile answers a connection held as an *os.File with a small error page.
func respondFile(f *os.File, code int) {
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { pool.Respond(int(fd), code) })
	}
}

// socketTimeout is --socket-timeout, 4 s (uWSGI's default) when unset.
func (d *Daemon) socketTimeout() time.Duration {
	if d.cfg.SocketTimeout > 0 {
		return d.cfg.SocketTimeout
	}
	return 4 * time.Second
}

// route sends a request to the app its vars name, starting the app if it
// may run; the daemon owns conn until an app takes it.
func (d *Daemon) route(conn int, prefix []byte, viaShared bool) {
	req, err := wire.Decode(prefix, d.limits)
	if err != nil {
		d.log.logf("refused a malformed request: %v", err)
		code := 400
		if errors.Is(err, wire.ErrTooLarge) {
			code = 431
		}
		pool.Respond(conn, code)
		unix.Close(conn)
		return
	}
	for _, v := range pool.RefusedVars {
		if _, ok := req.Lookup(v); ok {
			d.log.logf("refused a request carrying %s from %s: pyvhost never loads code from request vars", v, req.Get("REMOTE_ADDR"))
			pool.Respond(conn, 403)
			unix.Close(conn)
			return
		}
	}
	if d.single != nil {
		d.single.Handoff(conn, prefix, viaShared)
		return
	}
	k := keyOf(req)
	if k.Script == "" {
		d.log.logf("refused a request for %s%s: no UWSGI_SCRIPT (or UWSGI_MODULE) says which app to run", req.Get("HTTP_HOST"), req.Get("REQUEST_URI"))
		pool.Respond(conn, 500)
		unix.Close(conn)
		return
	}
	a, err := d.app(k)
	if errors.Is(err, errTooManyApps) {
		d.logRefusal(fmt.Sprintf("%s %s%s: %v", req.Get("REMOTE_ADDR"), req.Get("HTTP_HOST"), req.Get("REQUEST_URI"), err))
		pool.Respond(conn, 503)
		unix.Close(conn)
		return
	}
	if err != nil {
		d.log.logf("%s %s%s: %v", req.Get("REMOTE_ADDR"), req.Get("HTTP_HOST"), req.Get("REQUEST_URI"), err)
		pool.Respond(conn, 403)
		unix.Close(conn)
		return
	}
	a.Handoff(conn, prefix, viaShared)
}

// keyOf is the app a request names, by uWSGI's precedence: UWSGI_SCRIPT,
// else UWSGI_MODULE[:UWSGI_CALLABLE]; UWSGI_PYHOME, else UWSGI_HOME.
func keyOf(r *wire.Request) pool.Key {
	k := pool.Key{Pyhome: r.Get("UWSGI_PYHOME"), Chdir: r.Get("UWSGI_CHDIR")}
	if k.Pyhome == "" {
		k.Pyhome = r.Get("UWSGI_HOME")
	}
	if s, ok := r.Lookup("UWSGI_SCRIPT"); ok {
		k.Script = s
	} else if m := r.Get("UWSGI_MODULE"); m != "" {
		k.Script = m
		if c := r.Get("UWSGI_CALLABLE"); c != "" {
			k.Script += ":" + c
		}
	}
	return k
}

// app returns the pool of an app that may run, creating it on first use.
func (d *Daemon) app(k pool.Key) (*pool.App, error) {
	d.mu.Lock()
	a, ok := d.apps[k]
	d.mu.Unlock()
	if ok {
		return a, nil
	}
	name, err := d.policy.allowed(k)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, ok := d.apps[k]; ok {
		return a, nil
	}
	admitted := name == "" // under a --vhost-root, not declared: bounded by --max-apps
	if admitted {
		if err := d.makeRoomLocked(k); err != nil {
			return nil, err
		}
	}
	cfg, err := d.appConfig(k)
	if err != nil {
		return nil, err
	}
	a, err = pool.New(cfg, k, d.nextNum, name, nil, d.sharedFiles())
	if err != nil {
		return nil, err
	}
	d.nextNum++
	d.apps[k] = a
	if admitted {
		d.admitted[k] = struct{}{}
	}
	return a, nil
}
