package control

import (
	"net"
	"testing"
	"time"
)

// TestLimitListener: past n open connections Accept waits; closing one
// (twice, too) lets exactly one more in.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := LimitListener(inner, 2)
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first := <-accepted
	<-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted past the limit of 2")
	case <-time.After(100 * time.Millisecond): // a wait for what must not happen
	}
	first.Close()
	first.Close() // a second Close must not free a second place
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("closing a connection did not let the waiting one in")
	}
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-accepted:
		t.Fatal("a double Close freed two places")
	case <-time.After(100 * time.Millisecond):
	}
}
