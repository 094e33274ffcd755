package nginxtest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"testing"
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
			vars, err := readVars(bufio.NewReader(c))
			body := ""
			status := "200 OK"
			if err != nil {
				status, body = "400 Bad Request", err.Error()+"\n"
			} else {
				keys := make([]string, 0, len(vars))
				for k := range vars {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				var b strings.Builder
				for _, k := range keys {
					fmt.Fprintf(&b, "%s=%s\n", k, vars[k])
				}
				body = b.String()
			}
			fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body)
		}()
	}
}

// readVars decodes one uwsgi request header and its vars; the last value of
// a repeated key wins, as in uWSGI.
func readVars(r io.Reader) (map[string]string, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	block := make([]byte, binary.LittleEndian.Uint16(hdr[1:3]))
	if _, err := io.ReadFull(r, block); err != nil {
		return nil, fmt.Errorf("read vars: %w", err)
	}
	vars := map[string]string{}
	for len(block) > 0 {
		var kv [2]string
		for i := range kv {
			if len(block) < 2 {
				return nil, fmt.Errorf("truncated var")
			}
			n := int(binary.LittleEndian.Uint16(block))
			if len(block) < 2+n {
				return nil, fmt.Errorf("truncated var")
			}
			kv[i] = string(block[2 : 2+n])
			block = block[2+n:]
		}
		vars[kv[0]] = kv[1]
	}
	return vars, nil
}
