package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func topCommand() *cli.Command {
	return &cli.Command{
		Name:  "top",
		Usage: "a live view of every app and its workers: rps, latency, memory, state (q quits)",
		Description: "Refreshes every second, full screen on a terminal (works over SSH and in tmux), a plain\n" +
			"table per refresh otherwise. --stats reads any uWSGI's stats server instead, for migrations.\n\n" +
			"Examples:\n" +
			"   pyvhost ctl top\n" +
			"   pyvhost ctl top --stats 127.0.0.1:1717 --iterations 1",
		Flags: []cli.Flag{
			ctlFlag(),
			&cli.StringFlag{Name: "stats", Usage: "read a uWSGI stats server at `ADDR` (host:port or socket path) instead of the daemon"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "refresh every `DURATION`"},
			&cli.IntFlag{Name: "iterations", Usage: "stop after `N` refreshes (0: until q or Ctrl-C)"},
		},
		Action: runTop,
	}
}

// topSource fetches one view.
type topSource func() (control.TopView, error)

func runTop(c *cli.Context) error {
	var src topSource
	if addr := c.String("stats"); addr != "" {
		src = func() (control.TopView, error) { return control.ReadUwsgiStats(addr) }
		if _, err := src(); err != nil {
			return err
		}
	} else {
		cl, err := ctlClient(c)
		if err != nil {
			return err
		}
		src = cl.Top
	}
	interval := c.Duration("interval")
	if interval < 50*time.Millisecond {
		return usagef("--interval %s: at least 50ms", interval)
	}
	w := c.App.Writer
	out, isFile := w.(*os.File)
	if isFile && term.IsTerminal(int(out.Fd())) {
		return topFullScreen(c, out, src, interval)
	}
	u := newUI(w, true)
	rates := newRates()
	for i := 1; c.Int("iterations") == 0 || i <= c.Int("iterations"); i++ {
		if i > 1 {
			time.Sleep(interval)
		}
		v, err := src()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s  %s\n%s\n\n", time.Now().Format("15:04:05"), v.Title, topTable(u, v, rates.update(v)))
	}
	return nil
}

// topFullScreen redraws the view in the terminal's alternate screen until
// q, Ctrl-C or --iterations; the terminal is restored on every exit path.
func topFullScreen(c *cli.Context, out *os.File, src topSource, interval time.Duration) error {
	quit := make(chan struct{})
	if in, ok := c.App.Reader.(*os.File); ok && term.IsTerminal(int(in.Fd())) {
		old, err := term.MakeRaw(int(in.Fd()))
		if err == nil {
			defer term.Restore(int(in.Fd()), old)
			go func() {
				b := make([]byte, 1)
				for {
					if n, err := in.Read(b); err != nil || (n == 1 && (b[0] == 'q' || b[0] == 'Q' || b[0] == 3)) {
						close(quit)
						return
					}
				}
			}()
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	io.WriteString(out, "\x1b[?1049h\x1b[?25l") // alternate screen, hide the cursor
	defer io.WriteString(out, "\x1b[?25h\x1b[?1049l")
	u := newUI(out, c.Bool("no-color"))
	rates := newRates()
	for i := 1; ; i++ {
		v, err := src()
		frame := ""
		if err != nil {
			frame = u.err.Render("pyvhost: " + err.Error())
		} else {
			frame = u.title.Render(v.Title) + "   " + u.dim.Render(time.Now().Format("15:04:05")+"  q quits") + "\n\n" + topTable(u, v, rates.update(v))
		}
		// Raw mode: lines need \r\n.
		io.WriteString(out, "\x1b[H\x1b[2J"+strings.ReplaceAll(frame, "\n", "\r\n"))
		if n := c.Int("iterations"); n > 0 && i >= n {
			return nil
		}
		select {
		case <-quit:
			return nil
		case <-sigs:
			return nil
		case <-time.After(interval):
		}
	}
}

// rates turns request counters into requests per second between refreshes.
type rates struct {
	last map[string]uint64
	at   time.Time
}

func newRates() *rates { return &rates{last: map[string]uint64{}} }

func (r *rates) update(v control.TopView) map[string]float64 {
	now := time.Now()
	out := map[string]float64{}
	secs := now.Sub(r.at).Seconds()
	for _, a := range v.Apps {
		if prev, ok := r.last[a.Name]; ok && secs > 0 && a.Requests >= prev {
			out[a.Name] = float64(a.Requests-prev) / secs
		}
		r.last[a.Name] = a.Requests
	}
	r.at = now
	return out
}

var topColumns = []string{"APP / WORKER", "STATE", "RPS", "REQUESTS", "ERRORS", "AVG MS", "P99 MS", "RSS MB", "CURRENT"}

func topTable(u *ui, v control.TopView, rps map[string]float64) string {
	t := newTable(u, topColumns)
	mb := func(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }
	for _, a := range v.Apps {
		rate := "-"
		if r, ok := rps[a.Name]; ok {
			rate = fmt.Sprintf("%.1f", r)
		}
		p99 := "-"
		if a.P99MS > 0 {
			p99 = fmt.Sprintf("%.2f", a.P99MS)
		}
		t.Row(u.file.Render(a.Name), a.State, rate, fmt.Sprint(a.Requests), fmt.Sprint(a.Errors), fmt.Sprintf("%.2f", a.AvgMS), p99, mb(a.RSS), "")
		for _, w := range a.Workers {
			cur := ""
			if w.State == "busy" {
				cur = strings.TrimSpace(fmt.Sprintf("%s (%d ms)", w.Request, w.AgeMS))
			}
			t.Row(fmt.Sprintf("  pid %d", w.PID), w.State, "", fmt.Sprint(w.Requests), "", "", "", mb(w.RSS), cur)
		}
	}
	return t.Render()
}
