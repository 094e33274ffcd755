package deployer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
)

// ServedCount reads how many requests the deployed app has served (from
// the daemon); nil when there is no app to ask about (a static site).
type ServedCount func() (uint64, error)

// SmokeTest requests http://addr/path with Host: host through nginx until
// it answers with a status below 500 — and, when served is given, until
// the answer came from the deployed app: nginx applies a reload
// asynchronously (the first tries may reach old workers), and a request
// that another server block catches (a default_server, a wildcard) also
// answers 200 without proving anything.
//
// nginxUp, when given, tells whether nginx runs: a refused connection
// while it does not fails at once rather than after timeout.
func SmokeTest(ctx context.Context, addr, host, path string, timeout time.Duration, served ServedCount, nginxUp func() bool) (int, error) {
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}, Transport: &http.Transport{DisableKeepAlives: true}}
	var base uint64
	if served != nil {
		n, err := served()
		if err != nil {
			return 0, fmt.Errorf("smoke test: ask the daemon: %w", err)
		}
		base = n
	}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		code, body, err := get(ctx, client, "http://"+addr+path, host)
		switch {
		case err != nil:
			last = err.Error()
			if nginxUp != nil && !nginxUp() {
				return 0, fmt.Errorf("smoke test: http://%s%s: %v: nginx is not running (it stopped after the reload: see its error log)", addr, path, err)
			}
		case code >= 500:
			last = fmt.Sprintf("%d %s", code, body)
			// The app itself answered 5xx: a verdict, not a reload still
			// under way.
			if served != nil {
				if n, err := served(); err == nil && n > base {
					return code, fmt.Errorf("smoke test: the app answered http://%s%s (Host %s) with %s", addr, path, host, last)
				}
			}
		case served == nil:
			return code, nil
		default:
			n, err := served()
			if err != nil {
				return 0, fmt.Errorf("smoke test: ask the daemon: %w", err)
			}
			if n > base {
				return code, nil
			}
			last = fmt.Sprintf("%d from something other than the app (is another server block catching Host %s?)", code, host)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("smoke test: http://%s%s with Host %s answered %s", addr, path, host, last)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func get(ctx context.Context, client *http.Client, url, host string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

// smokeSite smoke-tests a site through nginx for deploy and rollback, on
// every name it answers to (an alias is as much the change as the domain):
// when the daemon answers and the site has an app, each answer must be the
// app's.
func smokeSite(ctx context.Context, n *Nginx, c *control.Client, app *nginxconf.AppSpec, addr string, spec nginxconf.SiteSpec, path string) error {
	var served ServedCount
	if c != nil && app != nil {
		served = servedBy(c, *app)
	}
	for _, host := range smokeHosts(spec) {
		if _, err := SmokeTest(ctx, addr, host, path, 15*time.Second, served, n.up); err != nil {
			return err
		}
	}
	return nil
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
		apps, err := c.Apps()
		if err != nil {
			return 0, err
		}
		a, ok := findApp(apps.Apps, app)
		if !ok {
			return 0, fmt.Errorf("the daemon does not know %s", app.Module)
		}
		return a.Requests, nil
	}
}
