package nginxconf

import (
	"fmt"
	"strings"
)

// tokenKind classifies what the scanner found. The scanner follows nginx's own
// ngx_conf_read_token closely enough to agree with nginx on where directives and
// blocks begin and end; gonginx reports only the line a block ends on and
// silently drops everything after a stray "}", so we need our own pass.
type tokenKind int

const (
	tokWord       tokenKind = iota // a bare or quoted word
	tokSemicolon                   // ;
	tokBlockStart                  // {
	tokBlockEnd                    // }
)

type token struct {
	kind   tokenKind
	text   string // raw text as written (quotes kept)
	line   int    // 1-based line of the token's first byte
	offset int    // byte offset of the token's first byte
}

// blockPos records where a block directive starts and ends in its file.
type blockPos struct {
	name       string
	startLine  int // line of the directive's name
	startOff   int // offset of the directive's name
	closeLine  int // line of the closing "}"
	closeOff   int // offset of the closing "}"
	depth      int // nesting depth, 0 at file level
	parameters []string
}

// ScanError is a syntax error found by the scanner, positioned like nginx's own.
type ScanError struct {
	Line int
	Msg  string
}

func (e *ScanError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// scan tokenizes src. Comments and white space are dropped.
func scan(src []byte) ([]token, error) {
	var toks []token
	line := 1
	i := 0
	n := len(src)
	for i < n {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#':
			for i < n && src[i] != '\n' {
				i++
			}
		case c == ';':
			toks = append(toks, token{tokSemicolon, ";", line, i})
			i++
		case c == '{':
			toks = append(toks, token{tokBlockStart, "{", line, i})
			i++
		case c == '}':
			toks = append(toks, token{tokBlockEnd, "}", line, i})
			i++
		case c == '"' || c == '\'':
			start, startLine := i, line
			i++
			closed := false
			for i < n {
				switch src[i] {
				case '\\':
					if i+1 < n && src[i+1] == '\n' {
						line++
					}
					i += 2
					continue
				case '\n':
					line++
				case c:
					closed = true
				}
				i++
				if closed {
					break
				}
			}
			if !closed {
				return toks, &ScanError{startLine, "unexpected end of file, unterminated quoted string"}
			}
			// nginx wants white space, ";", "{" or ")" after a quoted string.
			if i < n && !isTokenEnd(src[i]) && src[i] != ')' {
				return toks, &ScanError{line, fmt.Sprintf("unexpected %q after quoted string", src[i])}
			}
			toks = append(toks, token{tokWord, string(src[start:i]), startLine, start})
		default:
			start := i
			inVar := false // inside ${...}, where braces belong to the word
			for i < n {
				ch := src[i]
				if inVar {
					if ch == '}' {
						inVar = false
					}
					i++
					continue
				}
				if ch == '{' && i > start && src[i-1] == '$' {
					inVar = true
					i++
					continue
				}
				if isTokenEnd(ch) {
					break
				}
				if ch == '\\' && i+1 < n {
					i += 2
					continue
				}
				i++
			}
			toks = append(toks, token{tokWord, string(src[start:i]), line, start})
		}
	}
	return toks, nil
}

func isTokenEnd(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '\f', '\v', ';', '{', '}':
		return true
	}
	return false
}

// blocks walks the token stream like nginx's parser, checking that every
// directive ends with ";" or a balanced block, and returns the blocks in
// pre-order. Errors use nginx's wording so users recognise them.
func blocks(toks []token, lastLine int) ([]blockPos, error) {
	type open struct {
		idx int // index into out
	}
	var out []blockPos
	var stack []open
	var words []token // words of the directive being read
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case tokWord:
			words = append(words, t)
		case tokSemicolon:
			if len(words) == 0 {
				return out, &ScanError{t.line, `unexpected ";"`}
			}
			words = words[:0]
		case tokBlockStart:
			if len(words) == 0 {
				return out, &ScanError{t.line, `unexpected "{"`}
			}
			b := blockPos{name: words[0].text, startLine: words[0].line, startOff: words[0].offset, depth: len(stack)}
			for _, w := range words[1:] {
				b.parameters = append(b.parameters, w.text)
			}
			words = words[:0]
			out = append(out, b)
			if strings.HasSuffix(b.name, "_by_lua_block") {
				// Lua code is opaque to nginx's tokenizer rules; like gonginx,
				// match braces to find its end.
				depth := 1
				for i++; i < len(toks); i++ {
					switch toks[i].kind {
					case tokBlockStart:
						depth++
					case tokBlockEnd:
						depth--
					}
					if depth == 0 {
						break
					}
				}
				if i >= len(toks) {
					return out, &ScanError{lastLine, `unexpected end of file, expecting "}"`}
				}
				out[len(out)-1].closeLine = toks[i].line
				out[len(out)-1].closeOff = toks[i].offset
				continue
			}
			stack = append(stack, open{len(out) - 1})
		case tokBlockEnd:
			if len(words) > 0 {
				return out, &ScanError{t.line, `unexpected "}"`}
			}
			if len(stack) == 0 {
				return out, &ScanError{t.line, `unexpected "}"`}
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			out[top.idx].closeLine = t.line
			out[top.idx].closeOff = t.offset
		}
	}
	if len(words) > 0 {
		return out, &ScanError{lastLine, `unexpected end of file, expecting ";" or "}"`}
	}
	if len(stack) > 0 {
		return out, &ScanError{lastLine, `unexpected end of file, expecting "}"`}
	}
	return out, nil
}
