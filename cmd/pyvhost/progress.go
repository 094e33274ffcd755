package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pyvhost/pyvhost/deployer"
)

// progress draws a deploy's steps as they run: on a terminal a spinner
// with the elapsed time on the step's line, replaced by ✓ or ✗ when it
// ends; otherwise one plain line per step, for logs and CI.
type progress struct {
	w     io.Writer
	u     *ui
	total int
	n     int

	mu      sync.Mutex
	stop    chan struct{}
	done    chan struct{}
	printed bool // the step printed output (plain mode: its result goes on a line of its own)
}

func newProgress(w io.Writer, u *ui, total int) *progress {
	return &progress{w: w, u: u, total: total}
}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (p *progress) Start(s deployer.Step) {
	p.n++
	p.printed = false
	if !p.u.color {
		fmt.Fprintf(p.w, "[%d/%d] %s ... ", p.n, p.total, s.Title)
		return
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	start := time.Now()
	go func() {
		defer close(p.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			p.mu.Lock()
			fmt.Fprintf(p.w, "\r\033[K%s %s %s", p.u.hunk.Render(spinnerFrames[i%len(spinnerFrames)]), s.Title,
				p.u.dim.Render(fmt.Sprintf("%.1fs", time.Since(start).Seconds())))
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Output shows a line a step printed (a release command's), under the
// step's line; on a terminal the spinner goes on below it.
func (p *progress) Output(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.u.color {
		fmt.Fprintf(p.w, "\r\033[K%s\n", p.u.dim.Render("  │ "+line))
		return
	}
	if !p.printed {
		fmt.Fprintln(p.w)
		p.printed = true
	}
	fmt.Fprintf(p.w, "    | %s\n", line)
}

func (p *progress) Done(s deployer.Step, took time.Duration, err error) {
	if !p.u.color {
		if p.printed {
			fmt.Fprintf(p.w, "[%d/%d] %s: ", p.n, p.total, s.ID)
		}
		if err != nil {
			fmt.Fprintf(p.w, "FAILED after %s\n", round(took))
		} else {
			fmt.Fprintf(p.w, "ok (%s)\n", round(took))
		}
		return
	}
	close(p.stop)
	<-p.done
	mark := p.u.ok.Render("✓")
	if err != nil {
		mark = p.u.err.Render("✗")
	}
	fmt.Fprintf(p.w, "\r\033[K%s %s %s\n", mark, s.Title, p.u.dim.Render(round(took)))
}

// round is how long a step took, as people read it: 0.4ms, 38ms, 3.16s.
func round(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
