package pool

import (
	"os"
	"time"
)

// Config is what every app's pool shares: the daemon's flags and plumbing.
type Config struct {
	Python        string        // interpreter when an app has no venv (--python)
	Processes     int           // most workers per app (-p)
	MaxRequests   int           // recycle a worker after this many requests (-R); 0 = never
	Harakiri      time.Duration // kill a worker stuck on one request this long (-t); 0 = never
	LimitAS       int           // RLIMIT_AS of every app process, MB (--limit-as); 0 = none
	Idle          time.Duration // stop an app's processes after this long without requests (--idle); 0 = never
	Lazy          bool          // import the app in every worker instead of once (--lazy-apps)
	BufferSize    int           // largest uwsgi vars block (--buffer-size)
	MaxVars       int
	Logging       bool // one log line per request (off with --disable-logging)
	Vhost         bool
	SingleApp     bool // -w: every request goes to the one app, whatever its vars
	AllowRootApps bool // run apps whose directory root owns, as root
	// SocketTimeout bounds each read and write on a request's connection
	// (--socket-timeout); a peer silent that long is dropped.
	SocketTimeout time.Duration
	// Interface is how the app is called: "wsgi", "asgi", or "" for what
	// its callable is (an ASGI app's is a coroutine function).
	Interface string
	// ASGIConcurrency bounds the connections one ASGI worker serves at
	// once (--asgi-concurrency); past it, it stops accepting.
	ASGIConcurrency int
	// WebSocketMaxMessage is the largest WebSocket message an ASGI worker
	// takes (--websocket-max-message), in bytes; past it, it closes 1009.
	WebSocketMaxMessage int
	// WebSocketPing is how often an ASGI worker pings an open WebSocket
	// (--websocket-ping; 0 = never): the bytes reset nginx's
	// uwsgi_read_timeout, which would otherwise close an idle one.
	WebSocketPing time.Duration

	WorkerScript string   // path of the worker program's __main__.py, written out by the daemon (templates.WriteWorker)
	SpeedupsDir  string   // directory of the compiled C accelerator; "" = pure Python
	LogWriter    *os.File // workers' stdout and stderr: the daemon's log pipe
	// OutputFor, when set, gives a new generation's processes (run as uid,
	// gid) their stdout and stderr instead of LogWriter: the write end of
	// the app's own log pipe. The pool closes its copy once they started.
	OutputFor func(a *App, uid, gid int) (*os.File, error)
	ToMaster  *os.File // write end every worker hands foreign requests to

	Logf func(format string, args ...any) // daemon events

	// AppReady, when set, is called each time an app (or a new generation
	// of it) is ready to serve, under the app's lock; it must not block.
	AppReady func(*App)

	// QueueLimit bounds the requests the daemon holds for one app while it
	// starts or while all its workers are busy; past it they get a 503.
	QueueLimit int

	// Env is the app's own environment (KEY=VALUE), on top of the fixed
	// base its processes get; Own says which pool settings are the app's
	// own ("processes=4 harakiri=30s"; "" = all the daemon's flags), and
	// Stamp identifies the stored settings (never their values).
	Env        []string
	Own, Stamp string
}

func (c *Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}
