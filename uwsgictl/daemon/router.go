package daemon

import (
	"errors"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
	"github.com/pyvhost/pyvhost/uwsgictl/wire"
	"golang.org/x/sys/unix"
)

// readForwards receives the requests workers hand back (they were for
// another app) and routes them.
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
		d.route(conn, prefix, true)
	}
}

// acceptAndRoute accepts what waits on a listener the daemon watches (no
// worker accepts there right now) and routes each connection.
func (d *Daemon) acceptAndRoute(l *listener, viaShared bool) {
	for {
		conn, _, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: nothing more waits
		}
		go func() {
			prefix, ok := d.readPacket(conn)
			if ok {
				d.route(conn, prefix, viaShared)
			}
		}()
	}
}

// readPacket reads a request's header and vars from a connection the
// daemon accepted itself, with a timeout so a silent client cannot hold a
// goroutine forever.
func (d *Daemon) readPacket(conn int) ([]byte, bool) {
	tv := unix.NsecToTimeval(int64(5 * time.Second))
	_ = unix.SetsockoptTimeval(conn, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 65536)
	need := wire.HeaderSize
	for len(buf) < need {
		n, err := unix.Read(conn, tmp)
		if err != nil || n <= 0 {
			unix.Close(conn)
			return nil, false
		}
		buf = append(buf, tmp[:n]...)
		if need == wire.HeaderSize && len(buf) >= wire.HeaderSize {
			h := wire.ParseHeader([wire.HeaderSize]byte(buf[:wire.HeaderSize]))
			if int(h.Size) > d.cfg.BufferSize {
				d.log.logf("refused a request: uwsgi vars block of %d bytes is larger than --buffer-size %d", h.Size, d.cfg.BufferSize)
				pool.Respond(conn, 431)
				unix.Close(conn)
				return nil, false
			}
			need = wire.HeaderSize + int(h.Size)
		}
	}
	setIOTimeouts(conn)
	return buf, true
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
	a, err = pool.New(d.pcfg, k, d.nextNum, name, nil, d.sharedFiles())
	if err != nil {
		return nil, err
	}
	d.nextNum++
	d.apps[k] = a
	return a, nil
}
