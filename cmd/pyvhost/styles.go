package main

import (
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

// ui holds the styles for one output stream: colours only when the stream
// is a terminal and neither --no-color nor NO_COLOR says otherwise.
type ui struct {
	color                 bool
	r                     *lipgloss.Renderer
	err, warn, dim, title lipgloss.Style
	add, del, hunk, file  lipgloss.Style
	ok                    lipgloss.Style
}

func newUI(w io.Writer, noColor bool) *ui {
	r := lipgloss.NewRenderer(w)
	color := !noColor && isTerminal(w)
	if color {
		r.SetColorProfile(termenv.ANSI256)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	s := r.NewStyle
	return &ui{
		color: color,
		r:     r,
		err:   s().Foreground(lipgloss.Color("9")).Bold(true),
		warn:  s().Foreground(lipgloss.Color("11")),
		dim:   s().Foreground(lipgloss.Color("8")),
		title: s().Bold(true),
		add:   s().Foreground(lipgloss.Color("10")),
		del:   s().Foreground(lipgloss.Color("9")),
		hunk:  s().Foreground(lipgloss.Color("14")),
		file:  s().Bold(true),
		ok:    s().Foreground(lipgloss.Color("10")),
	}
}

// isTerminal reports whether w is a character device (a TTY).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// borderFor draws table rules with box characters on a terminal and ASCII
// otherwise, so piped output stays plain.
func borderFor(u *ui) lipgloss.Border {
	if u.color {
		return lipgloss.NormalBorder()
	}
	return lipgloss.ASCIIBorder()
}

// table is the look of every table pyvhost prints: a rule under the
// headers, no other borders, two spaces between columns, each column as
// wide as its widest cell. It is drawn here rather than with lipgloss's
// table, which lays out and styles every cell on its own: `pyvhost sites`
// over 10,000 sites spent a third of its time there.
type table struct {
	u       *ui
	headers []string
	rows    [][]string
}

func newTable(u *ui, headers []string) *table { return &table{u: u, headers: headers} }

// Row adds a row of cells, one per header.
func (t *table) Row(cells ...string) { t.rows = append(t.rows, cells) }

// Render is the table, without a newline at the end.
func (t *table) Render() string {
	w := make([]int, len(t.headers))
	for i, h := range t.headers {
		w[i] = ansi.StringWidth(h)
	}
	for _, r := range t.rows {
		for i := range min(len(r), len(w)) {
			w[i] = max(w[i], ansi.StringWidth(r[i]))
		}
	}
	var b strings.Builder
	line := func(cells []string, style func(...string) string) {
		for i := range w {
			cell := ""
			if i < len(cells) {
				cell = cells[i]
			}
			pad := w[i] - ansi.StringWidth(cell)
			if i < len(w)-1 {
				pad += colGap
			}
			b.WriteString(style(cell))
			b.WriteString(strings.Repeat(" ", pad))
		}
	}
	line(t.headers, t.u.title.Render)
	b.WriteByte('\n')
	b.WriteString(strings.Repeat(borderFor(t.u).Top, total(w)))
	plain := func(s ...string) string { return s[0] }
	for _, r := range t.rows {
		b.WriteByte('\n')
		line(r, plain)
	}
	return b.String()
}
