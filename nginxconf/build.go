package nginxconf

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/tufanbarisyildirim/gonginx/config"
)

// The fast path of ParseFile: gonginx's tree built from the scanner's
// tokens, with gonginx's own wrappers (server, location, http, upstream,
// include…), instead of gonginx's lexer and parser — which read a rune at
// a time into a buffer per token and took three quarters of the CPU of a
// load of 10,000 sites (a second of it, and 300 MB of garbage). The tree
// is the one gonginx makes, comments aside (nothing here reads them): the
// differential test and fuzz target hold the two equal.

// plain reports whether the two tokenizers agree on src, so the fast path
// may build its tree from toks. Where they may differ, gonginx parses, as
// before: a word with a backslash (gonginx knows only \" in quotes), one
// starting with a backquote (a quote to gonginx, not to nginx), or holding
// ${…} (gonginx ends a word at a space inside one), Lua code; and
// anywhere, form feeds and vertical tabs (white space only to nginx), NUL
// (the end of the file to gonginx), a carriage return but before a line
// feed (it ends a comment to gonginx, not to nginx), text that is not
// UTF-8 (gonginx reads runes). Comments are the same to both, whatever
// they hold (pyvhost's header quotes a command in backquotes).
func plain(src []byte, toks []token) bool {
	if bytes.IndexByte(src, 0) >= 0 || bytes.IndexByte(src, '\f') >= 0 || bytes.IndexByte(src, '\v') >= 0 ||
		loneCR(src) || !utf8.Valid(src) {
		return false
	}
	for _, t := range toks {
		if t.kind == tokWord && (t.text[0] == '`' || strings.IndexByte(t.text, '\\') >= 0 ||
			strings.Contains(t.text, "${") || strings.HasSuffix(t.text, "_by_lua_block")) {
			return false
		}
	}
	return true
}

func loneCR(src []byte) bool {
	for i := bytes.IndexByte(src, '\r'); i >= 0; i = bytes.IndexByte(src, '\r') {
		if i+1 == len(src) || src[i+1] != '\n' {
			return true
		}
		src = src[i+1:]
	}
	return false
}

// builder walks tokens that blocks has checked: every directive ends
// with ";" or a balanced block.
type builder struct {
	toks []token
	i    int
}

var errUnbalanced = errors.New("unbalanced tokens") // blocks refuses these first

// build is gonginx's Config of a plain file's tokens.
func build(path string, toks []token) (*config.Config, error) {
	b := &builder{toks: toks}
	blk, err := b.block()
	if err != nil {
		return nil, err
	}
	if b.i != len(toks) {
		return nil, errUnbalanced
	}
	return &config.Config{FilePath: path, Block: blk}, nil
}

// block reads directives up to a "}" (left for the caller) or the end.
func (b *builder) block() (*config.Block, error) {
	blk := &config.Block{Directives: make([]config.IDirective, 0)}
	for b.i < len(b.toks) && b.toks[b.i].kind != tokBlockEnd {
		if b.toks[b.i].kind != tokWord {
			return nil, errUnbalanced
		}
		s, end, err := b.statement()
		if err != nil {
			return nil, err
		}
		// as gonginx's parseBlock: children point at their block's
		// directive, and a directive's line is that of its ";" or "}"
		if s.GetBlock() == nil {
			s.SetParent(nil)
		} else {
			for _, d := range s.GetBlock().GetDirectives() {
				d.SetParent(s)
			}
		}
		s.SetLine(end)
		blk.Directives = append(blk.Directives, s)
	}
	return blk, nil
}

// statement reads one directive; end is the line it ends on.
func (b *builder) statement() (s config.IDirective, end int, err error) {
	name := b.toks[b.i]
	d := &config.Directive{Name: name.text}
	for b.i++; b.i < len(b.toks) && b.toks[b.i].kind == tokWord; b.i++ {
		t := b.toks[b.i]
		d.Parameters = append(d.Parameters, config.Parameter{Value: t.text, RelativeLineIndex: t.line - name.line})
	}
	if b.i >= len(b.toks) {
		return nil, 0, errUnbalanced
	}
	switch t := b.toks[b.i]; t.kind {
	case tokSemicolon:
		b.i++
		s, err := wrapStatement(d)
		return s, t.line, err
	case tokBlockStart:
		b.i++
		if d.Block, err = b.block(); err != nil {
			return nil, 0, err
		}
		if b.i >= len(b.toks) {
			return nil, 0, errUnbalanced
		}
		end = b.toks[b.i].line
		b.i++
		if w, ok := config.BlockWrappers[d.Name]; ok {
			s, err := w(d)
			return s, end, err
		}
		return d, end, nil
	}
	return nil, 0, errUnbalanced
}

// wrapStatement is what gonginx makes of a directive ending in ";": an
// include, an upstream's server, or the directive itself.
func wrapStatement(d *config.Directive) (config.IDirective, error) {
	if w, ok := config.IncludeWrappers[d.Name]; ok {
		return w(d)
	}
	if w, ok := config.DirectiveWrappers[d.Name]; ok {
		return w(d)
	}
	return d, nil
}
