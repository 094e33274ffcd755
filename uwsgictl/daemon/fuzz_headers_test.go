package daemon

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pyvhost/pyvhost/templates"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// headerOracle is testdata/header_fuzz.py, started once: the worker's C
// and Python header checks, asked one header at a time.
type headerOracle struct {
	mu  sync.Mutex
	in  *json.Encoder
	out *bufio.Scanner
}

var (
	oracleOnce sync.Once
	oracle     *headerOracle
	oracleErr  string
)

func startHeaderOracle(t *testing.T) *headerOracle {
	oracleOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pyvhost-header-fuzz-")
		if err != nil {
			oracleErr = err.Error()
			return
		}
		built := buildSpeedups(dir, "/usr/bin/python3", func(string, ...any) {})
		if built == "" {
			oracleErr = "C speedups did not build: make test installs gcc and python3-dev"
			return
		}
		worker, err := templates.WriteWorker(dir)
		if err != nil {
			oracleErr = err.Error()
			return
		}
		script, _ := filepath.Abs("../../testdata/header_fuzz.py")
		proto, _ := json.Marshal(pool.WorkerProtocol())
		cmd := exec.Command("/usr/bin/python3", script, built, worker)
		cmd.Env = append(os.Environ(), "PYVHOST_PROTOCOL="+string(proto))
		cmd.Stderr = os.Stderr
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			oracleErr = err.Error()
			return
		}
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		o := &headerOracle{in: json.NewEncoder(in), out: sc}
		// Once it has answered, Python has loaded the speedups and the
		// worker: their files can go (the process ends with the test's).
		if err := o.in.Encode([2]string{"X-Probe", "1"}); err != nil || !o.out.Scan() {
			oracleErr = "the header oracle did not start"
			return
		}
		os.RemoveAll(dir)
		oracle = o
	})
	if oracle == nil {
		t.Fatal(oracleErr)
	}
	return oracle
}

// ask returns the responses of the C and the Python path.
func (o *headerOracle) ask(t *testing.T, name, value string) (c, py string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.in.Encode([2]string{name, value}); err != nil {
		t.Fatalf("header oracle: %v", err)
	}
	if !o.out.Scan() {
		t.Fatalf("header oracle exited: %v", o.out.Err())
	}
	var got struct{ C, Py string }
	if err := json.Unmarshal(o.out.Bytes(), &got); err != nil {
		t.Fatalf("header oracle said %q: %v", o.out.Text(), err)
	}
	return got.C, got.Py
}

// headerAllowed is the rule, written from RFC 9110 and PEP 3333 rather
// than from either implementation: a token name, a value without CR, LF or
// NUL, and not a hop-by-hop header.
func headerAllowed(name, value string) bool {
	if name == "" || strings.ContainsAny(value, "\r\n\x00") {
		return false
	}
	for _, r := range name {
		if r > 126 || !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	switch strings.ToLower(name) {
	case "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers", "transfer-encoding", "upgrade":
		return false
	}
	return true
}

// latin1 maps bytes to the code points a WSGI app's native strings hold.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// errorPage500 is the worker's own 500 page: nothing of the app's in it.
const errorPage500 = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 26\r\nConnection: close\r\n\r\n500 Internal Server Error\n"

// FuzzWorkerHeaders: whatever header an app sends, the C and Python paths
// answer alike, and both follow the rule: an allowed header is sent in a
// 200, anything else gets a 500 that does not carry it.
func FuzzWorkerHeaders(f *testing.F) {
	for _, s := range [][2]string{{"X-A", "ok"}, {"X-A", "ok\r\nSet-Cookie: evil=1"}, {"Connection", "close"},
		{"Bad Name", "v"}, {"X-A", "v\x00"}, {"", "v"}, {"X-Ä", "v"}, {"X-A", "caf\xe9"}, {"Content-Length", "4"}} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, name, value []byte) {
		if len(name) > 200 || len(value) > 2000 {
			return
		}
		n, v := latin1(name), latin1(value)
		c, py := startHeaderOracle(t).ask(t, n, v)
		if c != py {
			t.Fatalf("header %q: %q: C answered %q, Python %q", n, v, c, py)
		}
		if strings.EqualFold(n, "content-length") {
			return // the app's own Content-Length is the app's business
		}
		if headerAllowed(n, v) {
			if !strings.HasPrefix(c, "HTTP/1.1 200 OK\r\n") || !strings.Contains(c, "\r\n"+n+": "+v+"\r\n") {
				t.Fatalf("allowed header %q: %q answered %q, want it sent in a 200", n, v, c)
			}
		} else if c != errorPage500 {
			t.Fatalf("refused header %q: %q answered %q, want the plain 500 page", n, v, c)
		}
	})
}
