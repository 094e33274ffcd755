// Package daemon is pyvhost's uwsgi vhost daemon: it owns the listening
// sockets, decides which apps may run, starts each app's pool on demand,
// routes the requests workers hand back, and supervises the pools. Workers
// accept connections themselves, so the daemon is off the request path.
package daemon

import "time"

// Config is the daemon's command line (uWSGI's flags plus pyvhost's own).
type Config struct {
	Sockets []string // -s/--socket: host:port, :port (all interfaces) or a unix path

	// Single-app mode (-w/--module with --chdir and -H/--home): every
	// request runs this app, whatever its vars say.
	Module, Chdir, Home string

	Processes int           // -p: most workers per app
	Harakiri  time.Duration // -t
	LimitAS   int           // --limit-as, MB
	// ASGIConcurrency is --asgi-concurrency: connections one ASGI worker
	// serves at once.
	ASGIConcurrency int
	// WebSocketMaxMessage is --websocket-max-message, bytes.
	WebSocketMaxMessage int
	// WebSocketPing is --websocket-ping.
	WebSocketPing time.Duration
	MaxRequests   int           // -R
	Idle          time.Duration // --idle
	Lazy          bool          // --lazy-apps
	BufferSize    int           // --buffer-size
	Logging       bool          // false with --disable-logging
	Vhost         bool          // --vhost (accepted: routing by vars is always on)
	VhostRoots    []string      // --vhost-root: apps under these directories may run
	NginxConf     string        // --nginx-conf: apps declared there may run
	MaxApps       int           // --max-apps: most apps held from --vhost-root (0 = DefaultMaxApps)
	Python        string        // --python
	AppSockets    string        // --app-sockets: per-app unix sockets live here
	AllowRootApps bool
	Stats         string        // --stats ADDR: uWSGI's stats JSON
	Ctl           string        // --ctl: the control socket
	StatusHTTP    string        // --status-http ADDR: the status page
	StatusPublic  bool          // --status-http-public: allow a non-loopback ADDR
	HistoryStep   time.Duration // --status-history-step: how often the status page's charts sample; 0 = 10 s
	StateDir      string        // --state-dir: the status page token lives here
	LogTo         string        // --logto / -d: log file; "" = stderr
	AppLogs       string        // --app-logs: one log per app in this dir; "" = none
	AppLogSizeMB  int           // --app-log-size: rotate an app's log past this size
	AppLogKeep    int           // --app-log-keep: rotated app logs kept
	NginxPrefix   string        // --nginx-prefix: nginx's -p, for the reload after a certificate renewal
	CertCheck     time.Duration // --cert-check: how often ACME certificates are checked for renewal
	QueueLimit    int           // requests held per app before 503
	SocketTimeout time.Duration // --socket-timeout: deadline of each read and write of a request
	NoSpeedups    bool          // --no-speedups: workers run their request path in pure Python
	Backlog       int           // listen backlog of every socket
	RuntimeDir    string        // where the worker program is written; "" = default
}

// DefaultAppSockets is --app-sockets' default.
const DefaultAppSockets = "/run/pyvhost/apps"
