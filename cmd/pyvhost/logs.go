package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/urfave/cli/v2"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "one app's log: its requests, its output and tracebacks, and the daemon's events about it",
		ArgsUsage: "DOMAIN [--mount /PREFIX]",
		Description: "Reads the app's own log, which the daemon keeps in its --app-logs dir (root and the app's\n" +
			"group may read it). Each line starts with the time it was logged.\n\n" +
			"Examples:\n" +
			"   pyvhost logs blog.example.com -n 50\n" +
			"   pyvhost logs example.com --mount /blog -f\n" +
			"   pyvhost logs blog.example.com --since 10m --json",
		Flags: []cli.Flag{nginxConfFlag(), ctlFlag(), mountFlag(), appLogsFlag(), jsonFlag(),
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing lines as they come (Ctrl-C stops)"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 100, Usage: "the last `N` lines (0: all)"},
			&cli.StringFlag{Name: "since", Usage: "only lines from the last `DURATION` (90s, 10m, 2h)"},
		},
		Action: runLogs,
	}
}

func appLogsFlag() cli.Flag {
	return &cli.StringFlag{Name: "app-logs", EnvVars: []string{"PYVHOST_APP_LOGS"}, Usage: "`DIR` of the apps' own logs; the daemon's --app-logs (default: the running daemon's, else " + deployer.DefaultAppLogs + ")"}
}

// appLogsDir is --app-logs, else the running daemon's, else the default.
func appLogsDir(c *cli.Context) string {
	if d := c.String("app-logs"); d != "" {
		return d
	}
	if cl, err := control.Dial(ctlPath(c)); err == nil {
		if st, err := cl.Status(); err == nil && st.AppLogs != "" {
			return st.AppLogs
		}
	}
	return deployer.DefaultAppLogs
}

func runLogs(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("logs needs a DOMAIN, e.g. pyvhost logs app.example.com -n 50")
	}
	var since time.Time
	if s := c.String("since"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return usagef("--since %q: want a duration such as 90s, 10m or 2h", s)
		}
		since = time.Now().Add(-d)
	}
	if c.Int("lines") < 0 {
		return usagef("-n %d: want a number of lines, 0 for all", c.Int("lines"))
	}
	domain := strings.ToLower(c.Args().First())
	app, err := deployedApp(c, domain)
	if err != nil {
		return err
	}
	path := appconf.LogPath(appLogsDir(c), deployer.KeyOf(app))
	p := &logPrinter{w: c.App.Writer, json: c.Bool("json"), app: domain + strings.TrimSuffix(app.Mount, "/")}
	lines, err := lastLines(path, c.Int("lines"), since)
	if err != nil && !(os.IsNotExist(err) && c.Bool("follow")) {
		if os.IsNotExist(err) {
			return fmt.Errorf("%s has logged nothing yet (no %s)", p.app, path)
		}
		return fmt.Errorf("read the app's log: %w", err)
	}
	for _, l := range lines {
		p.print(l)
	}
	if !c.Bool("follow") {
		return nil
	}
	return follow(c, path, p)
}

// lastLines is the last n lines (0: all) of the app's log, from the
// rotated files too when the current one has fewer, none older than since.
func lastLines(path string, n int, since time.Time) ([]string, error) {
	var out []string
	for i := 0; ; i++ {
		name := path
		if i > 0 {
			name = fmt.Sprintf("%s.%d", path, i)
		}
		lines, err := readLines(name)
		if err != nil {
			if i > 0 && os.IsNotExist(err) {
				break
			}
			return nil, err
		}
		out = append(lines, out...)
		if (n > 0 && len(out) >= n) || (len(lines) > 0 && lineTime(lines[0]).Before(since)) {
			break
		}
	}
	keep := out[:0]
	for _, l := range out {
		if since.IsZero() || !lineTime(l).Before(since) {
			keep = append(keep, l)
		}
	}
	if n > 0 && len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return keep, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

// lineTime is when a line was logged (its stamp); zero if it has none.
func lineTime(l string) time.Time {
	ts, _, _ := strings.Cut(l, " ")
	t, _ := time.Parse("2006-01-02T15:04:05.000Z", ts)
	return t
}

// follow prints what is appended to the log until interrupted, from the
// start of a new file when it was rotated or moved away.
func follow(c *cli.Context, path string, p *logPrinter) error {
	var f *os.File
	var r *bufio.Reader
	var ino uint64
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		if st, err := os.Stat(path); err == nil && inode(st) != ino {
			if f != nil {
				drain(r, p) // what the old file got before it moved
				f.Close()
			}
			if f, err = os.Open(path); err != nil {
				return fmt.Errorf("read the app's log: %w", err)
			}
			if ino == 0 {
				_, _ = f.Seek(0, io.SeekEnd) // the lines up to now are printed already
			}
			r, ino = bufio.NewReader(f), inode(st)
		}
		if r != nil {
			drain(r, p)
		}
		select {
		case <-c.Context.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func drain(r *bufio.Reader, p *logPrinter) {
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			if l != "" {
				p.partial = l
			}
			return
		}
		p.print(strings.TrimSuffix(p.partial+l, "\n"))
		p.partial = ""
	}
}

// logPrinter prints log lines as they are, or as JSON.
type logPrinter struct {
	w       io.Writer
	json    bool
	app     string
	partial string
}

func (p *logPrinter) print(l string) {
	if !p.json {
		fmt.Fprintln(p.w, l)
		return
	}
	ts, rest, _ := strings.Cut(l, " ")
	kind := "output"
	switch {
	case strings.Contains(rest, " [pyvhost] "):
		kind = "event"
	case strings.Contains(rest, "[pid: ") && strings.Contains(rest, " => generated "):
		kind = "request"
	}
	b, _ := json.Marshal(struct {
		Time string `json:"time"`
		App  string `json:"app"`
		Kind string `json:"kind"`
		Line string `json:"line"`
	}{ts, p.app, kind, rest})
	fmt.Fprintln(p.w, string(b))
}

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}
