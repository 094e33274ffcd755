package nginxconf

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// Every value that reaches the template is checked here first. The rules are
// strict allow-lists where the syntax is known (domains, modules, ports) and
// a deny-list of everything that could end or open an nginx token elsewhere
// (paths): a value that passes cannot inject a directive, a block, a comment
// or a variable.

// unsafeChars are the characters that mean something to nginx's tokenizer
// or variable expansion.
const unsafeChars = ";{}\"'#$\\"

func checkSafe(what, v string) error {
	for _, r := range v {
		switch {
		case strings.ContainsRune(unsafeChars, r):
			return fmt.Errorf("%s %q: %q is not allowed (it would change the nginx config's syntax)", what, v, r)
		case unicode.IsSpace(r):
			return fmt.Errorf("%s %q: white space is not allowed", what, v)
		case unicode.IsControl(r) || r == unicode.ReplacementChar:
			return fmt.Errorf("%s %q: control characters are not allowed", what, v)
		}
	}
	return nil
}

// ValidateDomain checks a server name: RFC 1123 labels, lower case, with a
// wildcard only where nginx allows one (a whole first or last label).
func ValidateDomain(what, d string) error {
	if err := checkSafe(what, d); err != nil {
		return err
	}
	if d == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(d) > 253 {
		return fmt.Errorf("%s %q: longer than 253 characters", what, d)
	}
	labels := strings.Split(d, ".")
	for i, l := range labels {
		if l == "*" {
			if (i != 0 && i != len(labels)-1) || len(labels) < 2 {
				return fmt.Errorf("%s %q: a wildcard must be the whole first or last label (*.example.com, www.example.*)", what, d)
			}
			if i == 0 && i == len(labels)-1 {
				return fmt.Errorf("%s %q: a bare wildcard is not a domain", what, d)
			}
			continue
		}
		if err := checkLabel(l); err != nil {
			return fmt.Errorf("%s %q: %w", what, d, err)
		}
	}
	if labels[0] == "*" && labels[len(labels)-1] == "*" {
		return fmt.Errorf("%s %q: only one wildcard is allowed", what, d)
	}
	return nil
}

func checkLabel(l string) error {
	if l == "" {
		return fmt.Errorf("empty label (\"..\", or a leading or trailing dot)")
	}
	if len(l) > 63 {
		return fmt.Errorf("label %q is longer than 63 characters", l)
	}
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			if r >= 'A' && r <= 'Z' {
				return fmt.Errorf("use lower case")
			}
			return fmt.Errorf("%q is not allowed (letters, digits, \"-\" and \".\" only; use punycode for IDNs)", r)
		}
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with \"-\"", l)
	}
	return nil
}

// ValidatePath checks an absolute, clean filesystem path.
func ValidatePath(what, p string) error {
	if err := checkSafe(what, p); err != nil {
		return err
	}
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%s %q: must be an absolute path", what, p)
	}
	if filepath.Clean(p) != p {
		return fmt.Errorf("%s %q: not a clean path (did you mean %q?)", what, p, filepath.Clean(p))
	}
	return nil
}

// ValidateModule checks MOD[:CALLABLE]: dotted Python identifiers, the
// callable optionally an app factory called without arguments (NAME()).
func ValidateModule(what, m string) error {
	if err := checkSafe(what, m); err != nil {
		return err
	}
	mod, callable, hasCallable := strings.Cut(m, ":")
	for _, part := range strings.Split(mod, ".") {
		if !isIdentifier(part) {
			return fmt.Errorf("%s %q: %q is not a Python identifier (want package.module[:callable])", what, m, part)
		}
	}
	if hasCallable && !isIdentifier(strings.TrimSuffix(callable, "()")) {
		return fmt.Errorf("%s %q: callable %q is not a Python identifier (or an app factory's, called without arguments: NAME())", what, m, callable)
	}
	return nil
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// ValidateSize checks an nginx size: a number of bytes, with k, m or g
// (either case) for KiB, MiB, GiB; 0 means no limit.
func ValidateSize(what, v string) error {
	if err := checkSafe(what, v); err != nil {
		return err
	}
	n := strings.TrimRight(v, "kKmMgG")
	if len(v)-len(n) > 1 || n == "" || len(n) > 12 || strings.Trim(n, "0123456789") != "" {
		return fmt.Errorf("%s %q: want a size as nginx writes it, e.g. 16m, 512k or 1g (0: no limit)", what, v)
	}
	return nil
}

// ValidateDuration checks a time as nginx writes it: digits and one unit
// (ms, s, m, h, d), e.g. 35s.
func ValidateDuration(what, v string) error {
	if err := checkSafe(what, v); err != nil {
		return err
	}
	n := strings.TrimSuffix(v, "ms")
	if n == v {
		n = strings.TrimRight(v, "smhd")
	}
	if len(v)-len(n) > 2 || n == "" || len(n) > 9 || strings.Trim(n, "0123456789") != "" {
		return fmt.Errorf("%s %q: want a time as nginx writes it, e.g. 35s or 5m", what, v)
	}
	return nil
}

// MaxUnixPath is the longest unix socket path Linux takes (sun_path is 108
// bytes with its NUL); nginx -t rejects a longer uwsgi_pass.
const MaxUnixPath = 107

// ValidateSocket checks a uwsgi_pass address: unix:/abs/path or host:port.
func ValidateSocket(what, s string) error {
	if err := checkSafe(what, s); err != nil {
		return err
	}
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if len(path) > MaxUnixPath {
			return fmt.Errorf("%s %s: a unix socket path may be at most %d bytes (this one is %d): use a shorter domain, --app-sockets dir or --socket", what, path, MaxUnixPath, len(path))
		}
		return ValidatePath(what+" path", path)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%s %q: want unix:/path/to.sock or host:port (e.g. 127.0.0.1:9090)", what, s)
	}
	if err := checkHost(host); err != nil {
		return fmt.Errorf("%s %q: %w", what, s, err)
	}
	return checkPort(what, s, port)
}

// ValidateListen checks nginx's listen address: PORT or ADDR:PORT.
func ValidateListen(what, l string) error {
	if err := checkSafe(what, l); err != nil {
		return err
	}
	if _, err := strconv.Atoi(l); err == nil {
		return checkPort(what, l, l)
	}
	host, port, err := net.SplitHostPort(l)
	if err != nil || host == "" {
		return fmt.Errorf("%s %q: want PORT or ADDR:PORT (e.g. 80, 127.0.0.1:8080, [::]:80)", what, l)
	}
	if host != "*" {
		if err := checkHost(host); err != nil {
			return fmt.Errorf("%s %q: %w", what, l, err)
		}
	}
	return checkPort(what, l, port)
}

func checkHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if err := ValidateDomain("host", h); err != nil || strings.Contains(h, "*") {
		return fmt.Errorf("%q is not an IP address or host name", h)
	}
	return nil
}

func checkPort(what, v, port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return fmt.Errorf("%s %q: port must be a number from 1 to 65535", what, v)
	}
	return nil
}

// ValidateURLPath checks a mount point or static URL prefix: "/" or
// "/seg/seg" with URL-safe segments and no trailing slash.
func ValidateURLPath(what, p string) error {
	if err := checkSafe(what, p); err != nil {
		return err
	}
	if p == "/" {
		return nil
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%s %q: must start with \"/\"", what, p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%s %q: empty, \".\" or \"..\" path segment", what, p)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~@!+,=:", r)) {
				return fmt.Errorf("%s %q: %q is not allowed in a URL path here", what, p, r)
			}
		}
	}
	return nil
}
