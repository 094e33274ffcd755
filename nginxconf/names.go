package nginxconf

import (
	"regexp"
	"strings"
)

// nameKind orders server_name forms by nginx's precedence: exact names win,
// then the longest wildcard starting with "*", then the longest ending with
// "*", then the first regex in config order.
type nameKind int

const (
	nameExact nameKind = iota
	nameLeadingWildcard
	nameTrailingWildcard
	nameRegex
)

func kindOf(name string) nameKind {
	switch {
	case strings.HasPrefix(name, "~"):
		return nameRegex
	case strings.HasPrefix(name, "*.") || strings.HasPrefix(name, "."):
		return nameLeadingWildcard
	case strings.HasSuffix(name, ".*"):
		return nameTrailingWildcard
	}
	return nameExact
}

// nameForms expands nginx's ".example.com" shorthand, which means both
// "example.com" and "*.example.com".
func nameForms(name string) []string {
	name = unquote(name)
	if strings.HasPrefix(name, "~") {
		return []string{name} // a regex: lower-casing would change \D into \d
	}
	name = strings.ToLower(name)
	if strings.HasPrefix(name, ".") {
		return []string{name[1:], "*" + name}
	}
	return []string{name}
}

// nameMatch reports whether a server_name matches a host, and how strongly:
// a higher score wins, as in nginx (kind first, then wildcard length).
func nameMatch(name, host string) (score int, ok bool) {
	host = strings.ToLower(host)
	best, found := -1, false
	for _, n := range nameForms(name) {
		var s int
		switch kindOf(n) {
		case nameExact:
			if n != host {
				continue
			}
			s = 3_000_000
		case nameLeadingWildcard:
			suffix := n[1:] // ".example.com"
			if !strings.HasSuffix(host, suffix) || len(host) == len(suffix) {
				continue
			}
			s = 2_000_000 + len(suffix)
		case nameTrailingWildcard:
			prefix := n[:len(n)-1] // "www.example."
			if !strings.HasPrefix(host, prefix) || len(host) == len(prefix) {
				continue
			}
			s = 1_000_000 + len(prefix)
		case nameRegex:
			// nginx compiles server_name regexes caseless (PCRE; Go's
			// RE2 lacks a few PCRE features, and such a name never matches here).
			re, err := regexp.Compile("(?i)" + n[1:])
			if err != nil || !re.MatchString(host) {
				continue
			}
			s = 0 // the first regex in config order wins among regexes
		}
		if s > best {
			best, found = s, true
		}
	}
	return best, found
}

// sameName reports whether two server_names are the same entry to nginx,
// which it would report as "conflicting server name".
func sameName(a, b string) bool {
	for _, x := range nameForms(a) {
		for _, y := range nameForms(b) {
			if kindOf(x) == kindOf(y) && x == y {
				return true
			}
		}
	}
	return false
}

// listenKey is the address:port a listen directive binds, normalised so
// that "80", "*:80" and "0.0.0.0:80" compare equal.
func listenKey(listen string) string {
	addr := strings.Fields(listen)
	if len(addr) == 0 {
		return "*:80"
	}
	a := addr[0]
	if strings.HasPrefix(a, "unix:") {
		return a
	}
	host, port := "*", "80"
	switch {
	case isDigits(a):
		port = a
	case strings.HasPrefix(a, "["):
		if i := strings.LastIndex(a, "]"); i >= 0 {
			host = a[:i+1]
			if rest := a[i+1:]; strings.HasPrefix(rest, ":") {
				port = rest[1:]
			}
		}
	case strings.Contains(a, ":"):
		i := strings.LastIndex(a, ":")
		host, port = a[:i], a[i+1:]
	default:
		host = a
	}
	switch host {
	case "0.0.0.0", "":
		host = "*"
	case "localhost":
		host = "127.0.0.1"
	}
	return host + ":" + port
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// listenKeys are the addresses a server block answers on; a block with no
// listen directive answers on *:80, as nginx does when run as root.
func (b ServerBlock) listenKeys() []string {
	if len(b.Listen) == 0 {
		return []string{"*:80"}
	}
	keys := make([]string, len(b.Listen))
	for i, l := range b.Listen {
		keys[i] = listenKey(l)
	}
	return keys
}
