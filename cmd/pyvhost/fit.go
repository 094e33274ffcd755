package main

// Tables that fit the terminal: when the rows are wider than the window,
// path columns are shortened in the middle first, then the least
// important columns are dropped; --wide prints everything.

import (
	"os"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// col is one column of a fitted table.
type col struct {
	name string
	drop int  // 0: always shown; the highest goes first when the rows are too wide
	path bool // may be shortened in the middle, down to minPath
}

// minPath is the narrowest a path is shortened to: its start and its end
// still say which one it is.
const minPath = 20

const colGap = 2 // newTable's padding between columns

// wideFlag prints a table whole whatever the terminal's width.
func wideFlag() cli.Flag {
	return &cli.BoolFlag{Name: "wide", Usage: "print every column in full, whatever the terminal's width"}
}

// tableWidth is what a table must fit: 0 (any) with --wide or when the
// output is no terminal; $COLUMNS when set; else the terminal's width.
func tableWidth(c *cli.Context) int {
	if c.Bool("wide") {
		return 0
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	f, ok := c.App.Writer.(*os.File)
	if !ok || !isTerminal(f) {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 0
	}
	return int(ws.Col)
}

// fitTable renders rows under cols within width (0: any).
func fitTable(u *ui, cols []col, rows [][]string, width int) string {
	shown := fitColumns(cols, rows, width)
	var headers []string
	for i, c := range cols {
		if shown[i] >= 0 {
			headers = append(headers, c.name)
		}
	}
	t := newTable(u, headers)
	for _, r := range rows {
		var cells []string
		for i, w := range shown {
			if w < 0 {
				continue
			}
			cell := ""
			if i < len(r) {
				cell = r[i]
			}
			if cols[i].path {
				cell = shortenMiddle(cell, w)
			}
			cells = append(cells, cell)
		}
		t.Row(cells...)
	}
	return t.Render()
}

// fitColumns is each column's width in the fitted table, -1 for a column
// dropped.
func fitColumns(cols []col, rows [][]string, width int) []int {
	w := make([]int, len(cols))
	for i, c := range cols {
		w[i] = lipgloss.Width(c.name)
		for _, r := range rows {
			if i < len(r) {
				w[i] = max(w[i], lipgloss.Width(r[i]))
			}
		}
	}
	natural := append([]int{}, w...)
	for width > 0 {
		over := total(w) - width
		if over <= 0 {
			break
		}
		if i := widestPath(cols, w); i >= 0 {
			w[i] = max(minPath, w[i]-over)
			continue
		}
		i := nextToDrop(cols, w)
		if i < 0 {
			break // nothing left to drop: the terminal wraps it
		}
		w[i] = -1
	}
	// A column dropped may leave room: shortened paths get it back.
	for i := range w {
		if slack := width - total(w); width > 0 && slack > 0 && w[i] >= 0 && w[i] < natural[i] {
			w[i] = min(natural[i], w[i]+slack)
		}
	}
	return w
}

func total(w []int) int {
	sum, n := 0, 0
	for _, x := range w {
		if x >= 0 {
			sum += x
			n++
		}
	}
	return sum + colGap*max(n-1, 0)
}

// widestPath is the widest path column still over minPath, or -1.
func widestPath(cols []col, w []int) int {
	best := -1
	for i, c := range cols {
		if c.path && w[i] > minPath && (best < 0 || w[i] > w[best]) {
			best = i
		}
	}
	return best
}

// nextToDrop is the shown column that goes first, or -1.
func nextToDrop(cols []col, w []int) int {
	best := -1
	for i, c := range cols {
		if c.drop > 0 && w[i] >= 0 && (best < 0 || c.drop > cols[best].drop) {
			best = i
		}
	}
	return best
}

// shortenMiddle fits s in w columns, keeping its start and end around "…"
// (a coloured cell loses its colour when shortened).
func shortenMiddle(s string, w int) string {
	if lipgloss.Width(s) <= w {
		return s
	}
	r := []rune(ansi.Strip(s))
	if len(r) <= w || w < 3 {
		return s
	}
	head := (w - 1) / 2
	return string(r[:head]) + "…" + string(r[len(r)-(w-1-head):])
}

// colsNamed is cols for headers, each with what spec says of it (by name).
func colsNamed(headers []string, spec map[string]col) []col {
	out := make([]col, len(headers))
	for i, h := range headers {
		c := spec[strings.TrimSpace(h)]
		c.name = h
		out[i] = c
	}
	return out
}
