package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemon"
	"github.com/urfave/cli/v2"
)

// daemonChildEnv marks the re-executed child of -d/--daemonize.
const daemonChildEnv = "PYVHOST_DAEMON_CHILD"

func uwsgiCommand() *cli.Command {
	return &cli.Command{
		Name:  "uwsgi",
		Usage: "run the uwsgi vhost daemon that nginx's uwsgi_pass talks to",
		Description: "Takes uWSGI's classic flags with the same meaning and serves every app on one port,\n" +
			"each in its own pool of Python processes under its own virtualenv, chosen per request by\n" +
			"the uwsgi_params nginx sends (UWSGI_PYHOME, UWSGI_CHDIR, UWSGI_SCRIPT). Only apps the nginx\n" +
			"config declares, or that lie under a --vhost-root, may run.\n\n" +
			"Example (the classic uWSGI line, unchanged):\n" +
			"   pyvhost uwsgi -s 127.0.0.1:9090 -M -p 4 -t 30 --limit-as 128 -R 10000 -d uwsgi.log --vhost",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "socket", Aliases: []string{"s"}, Usage: "listen on `ADDR`: host:port, :port (every interface) or a unix socket path (repeatable)"},
			&cli.BoolFlag{Name: "master", Aliases: []string{"M"}, Usage: "accepted for uWSGI compatibility: there is always a master"},
			&cli.IntFlag{Name: "processes", Aliases: []string{"p", "workers"}, Value: 1, Usage: "most worker processes per app, started on demand"},
			&cli.IntFlag{Name: "harakiri", Aliases: []string{"t"}, Usage: "kill a worker stuck on one request for more than `SECS` (the client gets a 502)"},
			&cli.IntFlag{Name: "limit-as", Usage: "limit every app process's address space to `MB` megabytes"},
			&cli.IntFlag{Name: "asgi-concurrency", Value: 1000, Usage: "most connections one ASGI worker serves at once, `N`; past it, it stops accepting"},
			&cli.IntFlag{Name: "websocket-max-message", Value: 16 << 20, Usage: "the largest WebSocket message an ASGI app is given, `BYTES`; a larger one closes the socket with 1009"},
			&cli.Float64Flag{Name: "websocket-ping", Value: 20, Usage: "ping open WebSockets every `SECS` (0 never): keeps idle ones open through nginx's uwsgi_read_timeout and finds dead clients"},
			&cli.IntFlag{Name: "max-requests", Aliases: []string{"R"}, Usage: "recycle a worker after `N` requests"},
			&cli.StringFlag{Name: "daemonize", Aliases: []string{"d"}, Usage: "run in the background, logging to `FILE`"},
			&cli.StringFlag{Name: "logto", Usage: "log to `FILE` instead of stderr"},
			&cli.StringFlag{Name: "pidfile", Usage: "write the daemon's pid to `FILE`"},
			&cli.BoolFlag{Name: "vhost", Usage: "virtual hosting by request vars (always on; accepted for compatibility)"},
			&cli.BoolFlag{Name: "disable-logging", Aliases: []string{"L"}, Usage: "no log line per request (daemon events are still logged)"},
			&cli.IntFlag{Name: "buffer-size", Aliases: []string{"b"}, Value: 4096, Usage: "largest uwsgi vars block in `BYTES` (up to 65535)"},
			&cli.BoolFlag{Name: "lazy-apps", Usage: "import the app in every worker instead of once before forking"},
			&cli.StringFlag{Name: "stats", Usage: "serve uWSGI's stats JSON on `ADDR` (for uwsgitop)"},
			&cli.StringFlag{Name: "module", Aliases: []string{"w", "wsgi"}, Usage: "single-app mode: serve `MOD[:CALLABLE]` for every request"},
			&cli.StringFlag{Name: "chdir", Usage: "single-app mode: the app's `DIR`"},
			&cli.StringFlag{Name: "home", Aliases: []string{"H", "virtualenv", "venv", "pyhome"}, Usage: "single-app mode: the app's virtualenv `DIR`"},
			&cli.StringSliceFlag{Name: "plugin", Aliases: []string{"plugins"}, Usage: "accepted and ignored: Python is built in"},
			&cli.StringSliceFlag{Name: "vhost-root", Usage: "apps whose directory (and venv) lie under `DIR` may run (repeatable)"},
			&cli.StringFlag{Name: "nginx-conf", EnvVars: []string{"PYVHOST_NGINX_CONF"}, Usage: "apps declared in this nginx config `FILE` may run (default: nginx -V's --conf-path when no --vhost-root is given)"},
			&cli.IntFlag{Name: "max-apps", Value: daemon.DefaultMaxApps, Usage: "most apps from --vhost-root held at once; past `N` the idlest is evicted, and if all are in use a new one gets a 503"},
			&cli.IntFlag{Name: "idle", Usage: "stop an app's processes after `SECS` without requests; the next request starts them again"},
			&cli.StringFlag{Name: "python", Value: "python3", Usage: "interpreter `BIN` for apps without a venv"},
			&cli.StringFlag{Name: "ctl", EnvVars: []string{"PYVHOST_CTL"}, Usage: "control socket `PATH` (default " + control.DefaultSocket() + ")"},
			&cli.StringFlag{Name: "app-sockets", Value: daemon.DefaultAppSockets, Usage: "every uwsgi_pass unix:`DIR`/NAME.sock in the nginx config is a per-app socket the daemon creates"},
			&cli.BoolFlag{Name: "allow-root-apps", Usage: "run apps whose directory root owns, as root"},
			&cli.StringFlag{Name: "status-http", Usage: "serve the status page (HTML and /status.json) on `ADDR`, token-protected"},
			&cli.BoolFlag{Name: "status-http-public", Usage: "allow --status-http on a non-loopback address"},
			&cli.DurationFlag{Name: "status-history-step", Value: 10 * time.Second, Usage: "how often the status page's charts (15 minutes) take a sample"},
			&cli.StringFlag{Name: "state-dir", EnvVars: []string{"PYVHOST_STATE_DIR"}, Usage: "state `DIR` (the status page's token; default " + daemon.DefaultStateDir() + ")"},
			&cli.IntFlag{Name: "socket-timeout", Aliases: []string{"z"}, Value: 4, Usage: "drop a request's connection when a read or write waits longer than `SECS` (uWSGI's flag)"},
			&cli.IntFlag{Name: "queue-limit", Value: 1000, Usage: "requests the daemon holds for one app while it starts or is busy; past `N` they get a 503"},
			&cli.StringFlag{Name: "nginx-prefix", Usage: "nginx's -p `DIR`, when it runs with a private prefix (the daemon reloads nginx after renewing a certificate)"},
			&cli.IntFlag{Name: "cert-check", EnvVars: []string{"PYVHOST_CERT_CHECK"}, Value: 3600, Usage: "check the --tls auto certificates for renewal every `SECS`"},
			&cli.StringFlag{Name: "app-logs", Usage: "also log each app alone, to `DIR`/ID.log (root and the app's group may read it; pyvhost logs DOMAIN reads it)"},
			&cli.IntFlag{Name: "app-log-size", Value: 10, Usage: "rotate an app's log once it is past `MB`"},
			&cli.IntFlag{Name: "app-log-keep", Value: 5, Usage: "rotated logs kept per app, `N`"},
			&cli.BoolFlag{Name: "no-speedups", Usage: "workers answer requests in pure Python, without the C request path (slower; for troubleshooting)"},
		},
		Action: runUwsgi,
	}
}

func runUwsgi(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("uwsgi takes flags only, not %q", c.Args().First())
	}
	cfg := daemon.Config{
		Sockets:             c.StringSlice("socket"),
		Module:              c.String("module"),
		Chdir:               c.String("chdir"),
		Home:                c.String("home"),
		Processes:           c.Int("processes"),
		Harakiri:            time.Duration(c.Int("harakiri")) * time.Second,
		LimitAS:             c.Int("limit-as"),
		ASGIConcurrency:     c.Int("asgi-concurrency"),
		WebSocketMaxMessage: c.Int("websocket-max-message"),
		WebSocketPing:       time.Duration(c.Float64("websocket-ping") * float64(time.Second)),
		MaxRequests:         c.Int("max-requests"),
		Idle:                time.Duration(c.Int("idle")) * time.Second,
		Lazy:                c.Bool("lazy-apps"),
		BufferSize:          c.Int("buffer-size"),
		Logging:             !c.Bool("disable-logging"),
		Vhost:               c.Bool("vhost"),
		VhostRoots:          c.StringSlice("vhost-root"),
		NginxConf:           c.String("nginx-conf"),
		MaxApps:             c.Int("max-apps"),
		Python:              c.String("python"),
		AppSockets:          c.String("app-sockets"),
		AllowRootApps:       c.Bool("allow-root-apps"),
		Stats:               c.String("stats"),
		Ctl:                 ctlPath(c),
		LogTo:               c.String("logto"),
		QueueLimit:          c.Int("queue-limit"),
		SocketTimeout:       time.Duration(c.Int("socket-timeout")) * time.Second,
		NoSpeedups:          c.Bool("no-speedups"),
		StatusHTTP:          c.String("status-http"),
		StatusPublic:        c.Bool("status-http-public"),
		HistoryStep:         c.Duration("status-history-step"),
		StateDir:            c.String("state-dir"),
		AppLogs:             c.String("app-logs"),
		AppLogSizeMB:        c.Int("app-log-size"),
		AppLogKeep:          c.Int("app-log-keep"),
		NginxPrefix:         c.String("nginx-prefix"),
		CertCheck:           time.Duration(c.Int("cert-check")) * time.Second,
	}
	if cfg.AppLogSizeMB < 1 || cfg.AppLogKeep < 0 {
		return usagef("--app-log-size must be at least 1 (MB) and --app-log-keep at least 0")
	}
	if cfg.Processes < 1 {
		return usagef("-p/--processes must be at least 1")
	}
	if cfg.MaxApps < 1 {
		return usagef("--max-apps must be at least 1")
	}
	if cfg.SocketTimeout < time.Second {
		return usagef("--socket-timeout must be at least 1 (seconds)")
	}
	if cfg.NginxConf == "" && len(cfg.VhostRoots) == 0 && cfg.Module == "" {
		if p := nginxconf.DiscoverConfPath(); fileExists(p) {
			cfg.NginxConf = p
		}
	}
	logFile := c.String("daemonize")
	if logFile != "" {
		cfg.LogTo = logFile
		if os.Getenv(daemonChildEnv) == "" {
			return daemonize(c, logFile)
		}
	}
	daemon.Version = version
	d, err := daemon.New(cfg)
	if err != nil {
		signalReady(err)
		return err
	}
	if p := c.String("pidfile"); p != "" {
		if err := os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("write pidfile: %w", err)
		}
		defer os.Remove(p)
	}
	signalReady(nil)
	// Start-up (reading the nginx config, building the C speedups) leaves
	// garbage; a long-running daemon should not keep it resident.
	debug.SetGCPercent(25)
	daemon.ReleaseStartupMemory()
	return d.Run(context.Background())
}

// ctlPath is --ctl, else the default control socket.
func ctlPath(c *cli.Context) string {
	if p := c.String("ctl"); p != "" {
		return p
	}
	return control.DefaultSocket()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// daemonize re-runs the command in the background, detached from the
// terminal, and returns once the child has bound its sockets (or failed).
func daemonize(c *cli.Context, logFile string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	logf, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("daemonize: open log: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), daemonChildEnv+"=1")
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("daemonize: %w", err)
	}
	w.Close()
	msg := make([]byte, 4096)
	n, _ := r.Read(msg)
	if n == 0 {
		return fmt.Errorf("daemon exited during start-up: see %s", logFile)
	}
	if string(msg[:n]) != "ok" {
		return fmt.Errorf("%s", msg[:n])
	}
	fmt.Fprintf(c.App.Writer, "pyvhost uwsgi daemon started: pid %d, log %s\n", cmd.Process.Pid, logFile)
	return nil
}

// signalReady tells a waiting -d parent whether start-up worked.
func signalReady(err error) {
	if os.Getenv(daemonChildEnv) == "" {
		return
	}
	f := os.NewFile(3, "ready")
	if f == nil {
		return
	}
	defer f.Close()
	if err != nil {
		_, _ = f.WriteString(err.Error())
		return
	}
	_, _ = f.WriteString("ok")
}
