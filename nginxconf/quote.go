package nginxconf

import "strings"

// unquote returns a token's value as nginx sees it: surrounding quotes
// removed and the escapes nginx knows (\" \' \\ \t \r \n) applied.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		s = s[1 : len(s)-1]
	}
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '"', '\'', '\\':
				b.WriteByte(s[i+1])
				i++
				continue
			case 't':
				b.WriteByte('\t')
				i++
				continue
			case 'r':
				b.WriteByte('\r')
				i++
				continue
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// values returns a directive's parameters unquoted.
func values(params []string) []string {
	out := make([]string, len(params))
	for i, p := range params {
		out[i] = unquote(p)
	}
	return out
}
