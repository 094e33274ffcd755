package control

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Bounds of every HTTP listener the daemon serves (the control socket and
// the status page): a peer that holds connections open cannot take the
// daemon to its descriptor limit, and an idle keep-alive connection is
// closed after a while.
const (
	idleTimeout       = 30 * time.Second
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second // the whole request, body included
	maxHeaderBytes    = 64 << 10
)

// NewHTTPServer is an http.Server with those bounds. No write timeout: a
// control request may wait for an app's import.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, IdleTimeout: idleTimeout, ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout: readTimeout, MaxHeaderBytes: maxHeaderBytes}
}

// LimitListener accepts at most n connections at once; past it, Accept
// waits until one closes (new peers wait in the kernel's backlog, holding
// none of the daemon's descriptors).
func LimitListener(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n)}
}

type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
