package deployer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
)

// ServedCount reads how many requests the deployed app has served (from
// the daemon); nil when there is no app to ask about (a static site).
type ServedCount func() (uint64, error)

// maxRedirects bounds the redirects within the site a smoke test follows.
const maxRedirects = 5

// Smoke is one smoke test: a GET through nginx, with the site's Host,
// that the deployed app itself must answer well. An answer that did not
// come from the app (its served count did not move: another server block
// caught the Host) does not count, and is asked again until Timeout. The
// app's answer is the verdict: a 2xx passes; a redirect within the site is
// followed (at most maxRedirects) and its end must pass; a redirect off
// the site passes unless Strict (a --smoke-path must end in a 2xx);
// anything else fails, as a *SmokeError. Without an app (Served nil: a
// static location) nginx's own answer below 500 passes, a directory's 403
// included.
type Smoke struct {
	Addr, Host, Path string
	// TLS: ask over https (SNI Host); when Cert is set, nginx must present
	// that certificate (its DER) — the chain itself is not checked here.
	TLS     bool
	Cert    []byte
	Timeout time.Duration
	Served  ServedCount
	NginxUp func() bool // when given: a refused connection while nginx is down fails at once
	Strict  bool
}

// SmokeError is a smoke test the app failed: what it answered, and (added
// by smokeSite) its log lines from meanwhile.
type SmokeError struct {
	URL     string   // the first request, with its Host
	Chain   []string // "301 -> /login", … then the final status line
	Body    string   // the final answer's first bytes
	AppLog  string   // the daemon's log lines written during the test
	LogFile string
}

func (e *SmokeError) Error() string {
	msg := fmt.Sprintf("smoke test: %s answered %s", e.URL, strings.Join(e.Chain, ", then "))
	if b := firstLine(e.Body); b != "" && !strings.HasSuffix(e.Chain[len(e.Chain)-1], b) {
		msg += ": " + b // the app's own words (not the worker's error page repeating the status)
	}
	if e.LogFile != "" {
		msg += " (the app's log: " + e.LogFile + ")"
	}
	return msg
}

// Run runs the smoke test; it returns the final status code.
func (s Smoke) Run(ctx context.Context) (int, error) {
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: s.tlsConfig()}}
	deadline := time.Now().Add(s.Timeout)
	for {
		code, retry, err := s.attempt(ctx, client)
		if retry == "" {
			return code, err
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("smoke test: %s://%s%s with Host %s answered %s", s.scheme(), s.Addr, s.Path, s.Host, retry)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// attempt asks once, following the site's redirects. A non-empty retry
// says why there is no verdict yet (no connection, not the app's answer).
func (s Smoke) attempt(ctx context.Context, client *http.Client) (code int, retry string, err error) {
	path := s.Path
	fail := &SmokeError{URL: fmt.Sprintf("%s://%s%s (Host %s)", s.scheme(), s.Addr, s.Path, s.Host)}
	for hop := 0; ; hop++ {
		base, err := s.count()
		if err != nil {
			return 0, "", err
		}
		res, err := get(ctx, client, s.scheme()+"://"+s.Addr+path, s.Host)
		if err != nil {
			if s.NginxUp != nil && !s.NginxUp() {
				return 0, "", fmt.Errorf("smoke test: %s://%s%s: %v: nginx is not running (it stopped after the reload: see its error log)", s.scheme(), s.Addr, path, err)
			}
			return 0, err.Error(), nil
		}
		if n, err := s.count(); err != nil {
			return 0, "", err
		} else if s.Served != nil && n <= base {
			return 0, fmt.Sprintf("%d from something other than the app (is another server block catching Host %s?)", res.code, s.Host), nil
		}
		switch loc := res.location; {
		case res.code >= 200 && res.code < 300, s.Served == nil && res.code < 500 && (res.code < 300 || res.code >= 400):
			return res.code, "", nil
		case res.code >= 300 && res.code < 400 && loc != "":
			next, onSite := s.onSite(path, loc)
			fail.Chain = append(fail.Chain, fmt.Sprintf("%d -> %s", res.code, loc))
			switch {
			case !onSite && !s.Strict:
				return res.code, "", nil // off the site (a login service, say): the app answered sanely
			case !onSite:
				fail.Chain = append(fail.Chain, "off the site, where --smoke-path wants a 2xx")
				return res.code, "", fail
			case hop == maxRedirects:
				fail.Chain = append(fail.Chain, fmt.Sprintf("more than %d redirects", maxRedirects))
				return res.code, "", fail
			}
			path = next
		default:
			fail.Chain, fail.Body = append(fail.Chain, res.status), res.body
			return res.code, "", fail
		}
	}
}

func (s Smoke) scheme() string {
	if s.TLS {
		return "https"
	}
	return "http"
}

// tlsConfig asks with the site's name (SNI) and checks that nginx presents
// the certificate deploy installed, not an old one.
func (s Smoke) tlsConfig() *tls.Config {
	if !s.TLS {
		return nil
	}
	return &tls.Config{ServerName: s.Host, InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		if s.Cert != nil && (len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, s.Cert)) {
			return fmt.Errorf("nginx presents another certificate than the one installed")
		}
		return nil
	}}
}

func (s Smoke) count() (uint64, error) {
	if s.Served == nil {
		return 0, nil
	}
	n, err := s.Served()
	if err != nil {
		return 0, fmt.Errorf("smoke test: ask the daemon: %w", err)
	}
	return n, nil
}

// onSite resolves a redirect's Location against the request: the path to
// ask next, and whether it stays on this site (same host, plain http).
func (s Smoke) onSite(from, location string) (string, bool) {
	base := &url.URL{Scheme: s.scheme(), Host: s.Host, Path: from}
	u, err := base.Parse(location)
	if err != nil || u.Scheme != s.scheme() || !strings.EqualFold(u.Hostname(), s.Host) {
		return "", false
	}
	return u.RequestURI(), true
}

type answer struct {
	code             int
	status, location string
	body             string
}

func get(ctx context.Context, client *http.Client, url, host string) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return answer{}, err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	return answer{code: resp.StatusCode, status: resp.Status, location: resp.Header.Get("Location"),
		body: strings.TrimSpace(string(body))}, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// smokeSite smoke-tests a site through nginx for deploy and rollback, on
// every name it answers to (an alias is as much the change as the domain)
// and every path: when the daemon answers and the site has an app, each
// answer must be the app's. A failure carries the app's log lines.
func smokeSite(ctx context.Context, n *Nginx, c *control.Client, app *nginxconf.AppSpec, addr string, spec nginxconf.SiteSpec, paths []string, cert []byte) error {
	tlsOn := spec.TLS != nil
	if tlsOn {
		addr = smokeAddr(spec.TLS.Listen)
	}
	var served ServedCount
	if c != nil && app != nil {
		served = servedBy(c, *app)
	}
	log := appLog(c, app)
	for i, path := range paths {
		for _, host := range smokeHosts(spec) {
			sm := Smoke{Addr: addr, Host: host, Path: path, Timeout: 15 * time.Second, Served: served, NginxUp: n.up, Strict: i > 0, TLS: tlsOn, Cert: cert}
			if _, err := sm.Run(ctx); err != nil {
				var se *SmokeError
				if errors.As(err, &se) {
					se.AppLog, se.LogFile = log.since(), log.path
				}
				return err
			}
		}
	}
	return nil
}

// logMark is the daemon's log file and its size when a smoke test began.
type logMark struct {
	path string
	size int64
}

// appLog marks the app's own log (the daemon's --app-logs), else the
// daemon's log, which has every app's lines.
func appLog(c *control.Client, app *nginxconf.AppSpec) logMark {
	if c == nil {
		return logMark{}
	}
	st, err := c.Status()
	if err != nil {
		return logMark{}
	}
	m := logMark{path: st.LogFile}
	if st.AppLogs != "" && app != nil {
		m.path = appconf.LogPath(st.AppLogs, KeyOf(*app))
	}
	if m.path == "" {
		return m
	}
	if fi, err := os.Stat(m.path); err == nil {
		m.size = fi.Size()
	}
	return m
}

// since is what the log got after the mark: its last 40 lines.
func (m logMark) since() string {
	if m.path == "" {
		return ""
	}
	f, err := os.Open(m.path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, m.size, 1<<20))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// smokeHosts are Host headers that reach each of a site's names: a
// wildcard name gets a made-up label in place of its star, ".example.com"
// (nginx's example.com and *.example.com) is asked as example.com, and a
// regular expression, which names no host, is left out.
func smokeHosts(spec nginxconf.SiteSpec) []string {
	var out []string
	for _, n := range append([]string{spec.Domain}, spec.Aliases...) {
		switch {
		case strings.HasPrefix(n, "~"):
			continue
		case strings.HasPrefix(n, "*."):
			n = smokeLabel + n[1:]
		case strings.HasSuffix(n, ".*"):
			n = n[:len(n)-1] + smokeLabel
		case strings.HasPrefix(n, "."):
			n = n[1:]
		}
		out = append(out, n)
	}
	return out
}

// smokeLabel stands for a wildcard's star in a smoke test's Host.
const smokeLabel = "pyvhost-smoke"

// servedBy counts the requests the daemon's app has served.
func servedBy(c *control.Client, app nginxconf.AppSpec) ServedCount {
	return func() (uint64, error) {
		a, ok, err := appOf(c, app)
		if err == nil && !ok {
			return 0, fmt.Errorf("the daemon does not know %s", app.Module)
		}
		return a.Requests, err
	}
}
