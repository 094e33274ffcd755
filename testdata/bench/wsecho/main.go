// Command wsecho measures WebSocket echo throughput: CONNS sockets, each
// sending a message and waiting for its echo, for SECS seconds; it prints
// the messages per second and the p99 round trip.
//
// usage: go run ./testdata/bench/wsecho -url ws://HOST/echo -addr 127.0.0.1:PORT [-conns 64] [-secs 5] [-size 64]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/websocket"
)

func main() {
	url := flag.String("url", "ws://ws.test/echo", "the WebSocket URL (its host is the Host header)")
	addr := flag.String("addr", "127.0.0.1:80", "where to connect")
	conns := flag.Int("conns", 64, "sockets")
	secs := flag.Float64("secs", 5, "seconds")
	size := flag.Int("size", 64, "message bytes")
	flag.Parse()
	msg := bytes.Repeat([]byte("x"), *size)
	var n atomic.Int64
	var mu sync.Mutex
	var rtts []time.Duration
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Duration(*secs * float64(time.Second)))
	for i := 0; i < *conns; i++ {
		cfg, err := websocket.NewConfig(*url, "http://localhost/")
		if err != nil {
			fail(err)
		}
		tcp, err := net.Dial("tcp", *addr)
		if err != nil {
			fail(err)
		}
		ws, err := websocket.NewClient(cfg, tcp)
		if err != nil {
			fail(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ws.Close()
			buf := make([]byte, *size+16)
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if _, err := ws.Write(msg); err != nil {
					fail(err)
				}
				got := 0
				for got < len(msg) {
					k, err := ws.Read(buf)
					if err != nil {
						fail(err)
					}
					got += k
				}
				mine = append(mine, time.Since(t0))
				n.Add(1)
			}
			mu.Lock()
			rtts = append(rtts, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	p99 := time.Duration(0)
	if len(rtts) > 0 {
		p99 = rtts[len(rtts)*99/100]
	}
	fmt.Printf("%.1f %.3f\n", float64(n.Load())/(*secs), float64(p99.Microseconds())/1000)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "wsecho:", err)
	os.Exit(1)
}
