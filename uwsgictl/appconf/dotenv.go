package appconf

import (
	"fmt"
	"strings"
)

// DotenvError is a line of a dotenv file pyvhost cannot read.
type DotenvError struct {
	File string
	Line int
	Msg  string
}

func (e *DotenvError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ParseDotenv reads a dotenv file's variables, in order, later ones
// winning: one KEY=VALUE a line, blank lines and # comments skipped, an
// optional `export ` before the name. A value is taken bare (trimmed, a
// " #" starts a comment), in single quotes (as written, across lines too)
// or in double quotes (across lines, with \n \r \t \" \\ and \$ escapes).
// name is the file's name, for errors.
func ParseDotenv(name string, src []byte) (map[string]string, error) {
	p := &dotenv{name: name, src: strings.ReplaceAll(string(src), "\r\n", "\n"), line: 1}
	env := map[string]string{}
	for {
		p.skipBlank()
		if p.pos >= len(p.src) {
			return env, nil
		}
		start := p.line
		k, v, err := p.assignment()
		if err != nil {
			return nil, &DotenvError{name, start, err.Error()}
		}
		env[k] = v
	}
}

type dotenv struct {
	name string
	src  string
	pos  int
	line int
}

// skipBlank skips white space, blank lines and comment lines.
func (p *dotenv) skipBlank() {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t':
			p.pos++
		case c == '#':
			p.restOfLine()
		default:
			return
		}
	}
}

// restOfLine returns what is left of the line and moves past its end.
func (p *dotenv) restOfLine() string {
	end := strings.IndexByte(p.src[p.pos:], '\n')
	if end < 0 {
		s := p.src[p.pos:]
		p.pos = len(p.src)
		return s
	}
	s := p.src[p.pos : p.pos+end]
	p.pos += end + 1
	p.line++
	return s
}

func (p *dotenv) assignment() (string, string, error) {
	lineStart := p.pos
	rest := p.src[p.pos:]
	if after, ok := strings.CutPrefix(rest, "export"); ok && after != "" && (after[0] == ' ' || after[0] == '\t') {
		p.pos += len("export")
		for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
			p.pos++
		}
	}
	start := p.pos
	for p.pos < len(p.src) && !strings.ContainsRune("= \t\n", rune(p.src[p.pos])) {
		p.pos++
	}
	key := p.src[start:p.pos]
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
	if p.pos >= len(p.src) || p.src[p.pos] != '=' {
		p.pos = lineStart
		return "", "", fmt.Errorf("%q: want KEY=VALUE", strings.TrimSpace(p.peekLine()))
	}
	if err := ValidateKey(key); err != nil {
		return "", "", err
	}
	p.pos++
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
	v, err := p.value()
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", key, err)
	}
	if err := ValidateValue(key, v); err != nil {
		return "", "", err
	}
	return key, v, nil
}

func (p *dotenv) peekLine() string {
	s := p.src[p.pos:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func (p *dotenv) value() (string, error) {
	if p.pos < len(p.src) && (p.src[p.pos] == '\'' || p.src[p.pos] == '"') {
		v, err := p.quoted(p.src[p.pos])
		if err != nil {
			return "", err
		}
		tail := strings.TrimLeft(p.restOfLine(), " \t")
		if tail != "" && tail[0] != '#' {
			return "", fmt.Errorf("%q after the closing quote: put the whole value in the quotes", tail)
		}
		return v, nil
	}
	v := p.restOfLine()
	for i := 1; i < len(v); i++ { // " #" starts a comment; a # inside a word does not
		if v[i] == '#' && (v[i-1] == ' ' || v[i-1] == '\t') {
			v = v[:i]
			break
		}
	}
	return strings.TrimRight(v, " \t"), nil
}

// quoted reads a value in quotes q starting at p.pos.
func (p *dotenv) quoted(q byte) (string, error) {
	p.pos++ // the opening quote
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		switch {
		case c == q:
			return b.String(), nil
		case c == '\n':
			p.line++
			b.WriteByte(c)
		case c == '\\' && q == '"' && p.pos < len(p.src):
			e := p.src[p.pos]
			p.pos++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '"', '\\', '$':
				b.WriteByte(e)
			default: // as python-dotenv: an unknown escape stays as written
				if e == '\n' {
					p.line++
				}
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("no closing %c: a quoted value must end with the quote it started with", q)
}
