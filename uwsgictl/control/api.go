// Package control is the daemon's control API: HTTP/JSON over a unix
// socket only its owner can open. The types here are shared by the server
// (in the daemon) and clients (pyvhost ctl, pyvhost deploy).
package control

import (
	"os"
	"path/filepath"
	"strconv"
	"time"

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
	RPS       float64  `json:"rps"` // requests per second over the last 10 s
	RSS       int64    `json:"rss"` // bytes, the daemon and every app process

	// What the daemon was started with, so deploy can check that it will
	// see the site it writes: the nginx config it reads its apps from,
	// the directory of its per-app sockets, and whether root-owned apps
	// may run.
	NginxConf     string `json:"nginx_conf,omitempty"`
	AppSockets    string `json:"app_sockets,omitempty"`
	AllowRootApps bool   `json:"allow_root_apps,omitempty"`
	LogFile       string `json:"log_file,omitempty"` // where the daemon and its apps log; "" = stderr
	AppLogs       string `json:"app_logs,omitempty"` // --app-logs: each app's own log is there; "" = none

	// Certs are the TLS sites' certificates, as of the last renewal check.
	Certs []Cert `json:"certs,omitempty"`
}

// Cert is one TLS site's certificate in the daemon's status.
type Cert struct {
	Domain      string    `json:"domain"`
	NotAfter    time.Time `json:"not_after"`
	Auto        bool      `json:"auto"`
	NextRenewal time.Time `json:"next_renewal,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
}

// Apps is GET /v1/apps.
type Apps struct {
	Apps []pool.AppStats `json:"apps"`
}

// LoadRequest is POST /v1/load: start an app's pool and wait until it has
// imported.
type LoadRequest struct {
	Pyhome string `json:"pyhome"`
	Chdir  string `json:"chdir"`
	Script string `json:"script"`
}

// Error is the body of every non-2xx answer; Traceback is Python's when an
// app failed to import.
type Error struct {
	Error     string `json:"error"`
	Traceback string `json:"traceback,omitempty"`
}

// RuntimeDir is pyvhost's runtime directory: $PYVHOST_RUNTIME_DIR when set, else /run/pyvhost for root, else
// $XDG_RUNTIME_DIR/pyvhost (or a per-user directory under the temp dir).
// The control socket, the worker program and per-app sockets live here.
func RuntimeDir() string {
	if d := os.Getenv("PYVHOST_RUNTIME_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return RootRuntimeDir
	}
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" {
		base = filepath.Join(os.TempDir(), "pyvhost-"+strconv.Itoa(os.Geteuid()))
	}
	return filepath.Join(base, "pyvhost")
}

// RootRuntimeDir is the runtime directory of a daemon run as root (the
// Debian package's).
const RootRuntimeDir = "/run/pyvhost"

// DefaultSocket is where the control socket lives: RuntimeDir/ctl.sock.
func DefaultSocket() string { return filepath.Join(RuntimeDir(), "ctl.sock") }
