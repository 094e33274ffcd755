package main

import (
	"io"
	"os"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
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

// newTable is the look of every table pyvhost prints: a rule under the
// headers, no other borders, two spaces between columns.
func newTable(u *ui, headers []string) *table.Table {
	return table.New().Headers(headers...).
		BorderRow(false).BorderColumn(false).BorderTop(false).BorderBottom(false).
		BorderLeft(false).BorderRight(false).BorderHeader(true).Border(borderFor(u)).
		StyleFunc(func(row, col int) lipgloss.Style {
			s := u.r.NewStyle()
			if col < len(headers)-1 {
				s = s.PaddingRight(2)
			}
			if row == table.HeaderRow {
				return s.Inherit(u.title)
			}
			return s
		})
}
