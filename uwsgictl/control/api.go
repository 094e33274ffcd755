// Package control is the daemon's control API: HTTP/JSON over a unix
// socket only its owner can open. The types here are shared by the server
// (in the daemon) and clients (pyvhost ctl, pyvhost deploy).
package control

import (
	"os"
	"path/filepath"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// Status is GET /v1/status.
type Status struct {
	Version   string   `json:"version"`
	PID       int      `json:"pid"`
	UptimeSec float64  `json:"uptime_seconds"`
	Sockets   []string `json:"sockets"`
	Apps      int      `json:"apps"`
	Requests  uint64   `json:"requests"`
	Errors    uint64   `json:"errors"`
	RSS       int64    `json:"rss"` // bytes, the daemon and every app process
}

// Apps is GET /v1/apps.
type Apps struct {
	Apps []pool.AppStats `json:"apps"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// DefaultSocket is where the control socket lives: /run/pyvhost/ctl.sock
// for root, $XDG_RUNTIME_DIR/pyvhost/ctl.sock (or a per-user directory
// under the temp dir) otherwise.
func DefaultSocket() string {
	if os.Geteuid() == 0 {
		return "/run/pyvhost/ctl.sock"
	}
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" {
		base = filepath.Join(os.TempDir(), "pyvhost-"+itoa(os.Geteuid()))
	}
	return filepath.Join(base, "pyvhost", "ctl.sock")
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
