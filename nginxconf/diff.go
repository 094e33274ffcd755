package nginxconf

import (
	"fmt"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// Diff is a unified diff (3 lines of context, --- a/PATH +++ b/PATH) of the
// change. A symlink is shown as a one-line file holding its target.
func (c Change) Diff() (string, error) {
	old, new := string(c.Old), string(c.New)
	if c.Kind == Symlink {
		old, new = "", "-> "+c.Target+"\n"
	}
	path := strings.TrimPrefix(c.Path, "/")
	d := difflib.UnifiedDiff{
		A:        splitLines(old),
		B:        splitLines(new),
		FromFile: "a/" + path,
		ToFile:   "b/" + path,
		Context:  3,
	}
	text, err := difflib.GetUnifiedDiffString(d)
	if err != nil {
		return "", fmt.Errorf("diff %s: %w", c.Path, err)
	}
	return text, nil
}

// Diff concatenates the diffs of every change, each preceded by a line
// saying what happens to the file.
func (sc *SiteChanges) Diff() (string, error) {
	var b strings.Builder
	for _, c := range sc.Changes {
		d, err := c.Diff()
		if err != nil {
			return "", err
		}
		b.WriteString(c.Summary() + "\n")
		b.WriteString(d)
	}
	return b.String(), nil
}

// Summary is a one-line description of the change.
func (c Change) Summary() string {
	switch c.Kind {
	case Symlink:
		return fmt.Sprintf("# symlink %s -> %s", c.Path, c.Target)
	default:
		return fmt.Sprintf("# %s %s", c.Kind, c.Path)
	}
}

// splitLines splits text into lines that keep their newline, as difflib
// wants; a last line without one gets it, with a marker like diff's.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := difflib.SplitLines(s)
	// difflib.SplitLines appends a "\n" to the last line and, for text that
	// ends in a newline, adds an empty final line: drop it.
	if strings.HasSuffix(s, "\n") && len(lines) > 0 && lines[len(lines)-1] == "\n" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
