package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pyvhost/pyvhost/templates"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
	"github.com/pyvhost/pyvhost/uwsgictl/wire"
	"golang.org/x/sys/unix"
)

// Supervision cadence: scaling and harakiri checks, and the choice of
// which apps accept on the shared sockets.
const (
	tickEvery         = 20 * time.Millisecond
	sharedPolicyEvery = 250 * time.Millisecond
	sharedQuietAfter  = 2 * time.Second
	shutdownMercy     = 30 * time.Second
)

// Daemon is a running vhost daemon.
type Daemon struct {
	cfg  Config
	log  *logger
	pcfg *pool.Config // the daemon's flags: every app's defaults
	// settingsDir is the state dir of apps' own settings (settings.go).
	settingsDir string
	appLogs     *appLogs                       // --app-logs; nil when off
	certs       atomic.Pointer[[]control.Cert] // the TLS sites' certificates (renew.go)
	policy      *policy
	limits      wire.Limits

	shared     []*listener
	waiting    atomic.Int64         // connections held until their vars arrive (awaitPacket)
	appSockets map[string]*listener // per-app socket path -> listener
	sockApp    map[*listener]*pool.App

	mu      sync.Mutex
	apps    map[pool.Key]*pool.App
	nextNum int
	single  *pool.App
	// Apps whose per-app socket left the nginx config (appsockets.go).
	retiring         []retiring
	retired          []*pool.App
	retiredListeners []*listener
	sockVersion      int // counts syncAppSockets: the supervise loop looks for new sockets when it changes
	readyMu          sync.Mutex
	readied          []*pool.App           // apps ready since the supervise loop last looked (noteReady)
	admitted         map[pool.Key]struct{} // apps from a --vhost-root, at most --max-apps (evict.go)
	refusalLogged    time.Time
	refusalsQuiet    int

	sigs                 chan os.Signal // caught from New on: a signal before Run must not kill the daemon
	toMasterR, toMasterW *os.File
	traffic              map[*pool.App][2]uint64 // served, forwarded at the last shared-policy round
	rate                 requestRate
	started              time.Time
	stopping             chan struct{}
	shutdownReq          chan struct{} // a graceful shutdown asked for on the control socket
	notify               *notifier     // systemd's readiness protocol (does nothing outside systemd)
	history              *history      // the status page's charts
}

// New validates the configuration, binds every socket and prepares the
// apps the nginx configuration declares; no Python runs yet.
func New(cfg Config) (d *Daemon, err error) {
	if cfg.Processes < 1 {
		cfg.Processes = 1
	}
	if cfg.BufferSize == 0 {
		cfg.BufferSize = wire.DefaultBufferSize
	}
	if cfg.BufferSize < 1 || cfg.BufferSize > wire.MaxBufferSize {
		return nil, fmt.Errorf("--buffer-size %d: must be 1 to %d", cfg.BufferSize, wire.MaxBufferSize)
	}
	if cfg.QueueLimit == 0 {
		cfg.QueueLimit = 1000
	}
	if cfg.Backlog == 0 {
		cfg.Backlog = 1024
	}
	if cfg.Python == "" {
		cfg.Python = "python3"
	}
	if len(cfg.Sockets) == 0 && cfg.AppSockets == "" {
		return nil, errors.New("nothing to listen on: give -s/--socket ADDR (e.g. -s 127.0.0.1:9090) or --app-sockets DIR")
	}
	lg, err := newLogger(cfg.LogTo)
	if err != nil {
		return nil, err
	}
	// Before any process starts: systemd's variables leave the environment.
	notify, nerr := newNotifier()
	if nerr != nil {
		lg.logf("%v: systemd is not told when the daemon is ready", nerr)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1)
	d = &Daemon{
		cfg: cfg, log: lg, limits: wire.Limits{BufferSize: cfg.BufferSize, MaxVars: wire.DefaultMaxVars},
		appSockets: map[string]*listener{}, sockApp: map[*listener]*pool.App{}, apps: map[pool.Key]*pool.App{}, admitted: map[pool.Key]struct{}{},
		started: time.Now(), stopping: make(chan struct{}), traffic: map[*pool.App][2]uint64{}, sigs: sigs,
		shutdownReq: make(chan struct{}, 1), notify: notify, history: newHistory(historyStep(cfg)),
	}
	// A failed start releases what it took. The daemon is captured here:
	// `return nil, err` sets the named result d to nil before this runs.
	built := d
	defer func() {
		if err != nil {
			signal.Stop(sigs)
			built.closeSockets()
			if built.toMasterR != nil {
				built.toMasterR.Close()
				built.toMasterW.Close()
			}
			lg.close()
		}
	}()
	script, err := writeWorkerScript(cfg.RuntimeDir)
	if err != nil {
		return nil, err
	}
	speedups := ""
	if cfg.NoSpeedups {
		lg.logf("C speedups off (--no-speedups): workers run their request path in pure Python")
	} else {
		speedups = buildSpeedups(filepath.Dir(script), cfg.Python, lg.logf)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("worker-to-daemon socket: %w", err)
	}
	for _, fd := range pair {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	d.toMasterR, d.toMasterW = os.NewFile(uintptr(pair[0]), "tomaster-r"), os.NewFile(uintptr(pair[1]), "tomaster-w")
	d.pcfg = &pool.Config{
		Python: cfg.Python, Processes: cfg.Processes, MaxRequests: cfg.MaxRequests, Harakiri: cfg.Harakiri,
		LimitAS: cfg.LimitAS, ASGIConcurrency: cfg.ASGIConcurrency, WebSocketMaxMessage: cfg.WebSocketMaxMessage,
		WebSocketPing: cfg.WebSocketPing, Idle: cfg.Idle, Lazy: cfg.Lazy, BufferSize: cfg.BufferSize, MaxVars: wire.DefaultMaxVars,
		Logging: cfg.Logging, Vhost: cfg.Vhost, SingleApp: cfg.Module != "", AllowRootApps: cfg.AllowRootApps,
		WorkerScript: script, SpeedupsDir: speedups, LogWriter: lg.pipeW, ToMaster: d.toMasterW, Logf: lg.logf, QueueLimit: cfg.QueueLimit,
		SocketTimeout: cfg.SocketTimeout, AppReady: d.noteReady,
	}
	d.settingsDir = settingsDir(&cfg, lg.logf)
	if d.appLogs, err = newAppLogs(cfg.AppLogs, cfg.AppLogSizeMB, cfg.AppLogKeep, lg); err != nil {
		return nil, err
	}
	if d.appLogs != nil {
		d.pcfg.OutputFor = d.appLogs.output
	}
	// The nginx config first: it says which apps may run and which user
	// nginx's workers run as (who may connect to unix sockets).
	d.policy = newPolicy(&cfg, lg.logf)
	tree, err := d.policy.reload()
	if err != nil {
		return nil, err
	}
	d.noteCerts(tree) // before the renewal loop's first check, from the same read
	_, _, nginxUser := d.policy.snapshot()
	for _, addr := range cfg.Sockets {
		l, err := listen(addr, cfg.Backlog, cfg.Ctl)
		if err != nil {
			return nil, err
		}
		d.shared = append(d.shared, l)
		if isAllInterfaces(addr) {
			lg.logf("warning: socket %s listens on every interface: the uwsgi port must never be reachable from outside (bind 127.0.0.1 or a unix socket)", addr)
		}
		if filepath.IsAbs(addr) {
			grantNginx(addr, nginxUser, lg.logf)
		}
	}
	if cfg.Module != "" {
		if err := d.setupSingleApp(); err != nil {
			return nil, err
		}
	}
	if _, err := d.syncAppSockets(); err != nil { // nothing to replace yet
		return nil, err
	}
	return d, nil
}

// writeWorkerScript writes the embedded worker program where every app's
// user can read it; it returns the path to run.
func writeWorkerScript(dir string) (string, error) {
	if dir == "" {
		// The runtime dir is pyvhost's own: app users must reach lib/ and
		// nginx must reach apps/, so it stays 0755 (the control socket in
		// it is protected by its own mode, 0600).
		root := control.RuntimeDir()
		if err := os.MkdirAll(root, 0o755); err != nil {
			return "", fmt.Errorf("runtime dir: %w", err)
		}
		_ = os.Chmod(root, 0o755)
		dir = filepath.Join(root, "lib")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("runtime dir: %w", err)
	}
	_ = os.Chmod(dir, 0o755)
	return templates.WriteWorker(dir)
}

func (d *Daemon) setupSingleApp() error {
	chdir := d.cfg.Chdir
	if chdir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		chdir = wd
	}
	k := pool.Key{Pyhome: d.cfg.Home, Chdir: chdir, Script: d.cfg.Module}
	cfg, err := d.appConfig(k)
	if err != nil {
		return err
	}
	a, err := pool.New(cfg, k, 0, k.String(), nil, d.sharedFiles())
	if err != nil {
		return err
	}
	d.apps[k] = a
	d.single = a
	return nil
}

func (d *Daemon) sharedFiles() []*os.File {
	var fs []*os.File
	for _, l := range d.shared {
		fs = append(fs, l.file)
	}
	return fs
}

func (d *Daemon) appList() []*pool.App {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*pool.App, 0, len(d.apps)+len(d.retiring)+len(d.retired))
	for _, a := range d.apps {
		out = append(out, a)
	}
	for _, r := range d.retiring {
		if d.apps[r.app.Key] != r.app {
			out = append(out, r.app)
		}
	}
	return append(out, d.retired...)
}

// shutdown stops every app (gracefully: in-flight requests finish, for at
// most shutdownMercy) and releases the sockets.
func (d *Daemon) shutdown(graceful bool) {
	close(d.stopping)
	apps := d.appList()
	for _, a := range apps {
		a.Close(graceful)
	}
	deadline := time.Now().Add(shutdownMercy)
	if !graceful {
		deadline = time.Now().Add(2 * time.Second)
	}
	for time.Now().Before(deadline) {
		done := true
		for _, a := range apps {
			done = done && a.Done()
		}
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, a := range apps {
		a.Close(false)
	}
	d.closeSockets()
	d.log.logf("pyvhost daemon pid %d stopped", os.Getpid())
	d.log.close()
}

func (d *Daemon) closeSockets() {
	for _, l := range d.shared {
		l.file.Close()
		if filepath.IsAbs(l.addr) {
			os.Remove(l.addr)
		}
	}
	for path, l := range d.appSockets {
		l.file.Close()
		os.Remove(path)
	}
}
