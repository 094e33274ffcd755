package nginxtest

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/uwsgictl/wire"
)

// Upstream is a stand-in uwsgi daemon for tests of the nginx side: it
// answers every request with the vars nginx sent, one "KEY=VALUE" a line,
// so a test can see exactly which params a rendered block passes.
type Upstream struct {
	Addr string // as uwsgi_pass wants it: host:port or unix:/path
	l    net.Listener
}

// StartUpstream listens on network ("tcp" or "unix") and addr, and closes
// when the test ends.
func StartUpstream(t testing.TB, network, addr string) *Upstream {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	u := &Upstream{Addr: l.Addr().String(), l: l}
	if network == "unix" {
		u.Addr = "unix:" + addr
	}
	t.Cleanup(func() { l.Close() })
	go u.serve()
	return u
}

func (u *Upstream) serve() {
	for {
		c, err := u.l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			req, _, err := wire.ReadRequest(bufio.NewReader(c), wire.Limits{BufferSize: wire.MaxBufferSize, MaxVars: 1000})
			body := ""
			status := "200 OK"
			if err != nil {
				status, body = "400 Bad Request", err.Error()+"\n"
			} else {
				keys := make([]string, 0, len(req.Vars))
				for _, v := range req.Vars {
					keys = append(keys, v.Key)
				}
				sort.Strings(keys)
				keys = slices.Compact(keys)
				var b strings.Builder
				for _, k := range keys {
					fmt.Fprintf(&b, "%s=%s\n", k, req.Get(k)) // the last value wins, as in uWSGI
				}
				body = b.String()
			}
			fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body)
		}()
	}
}
