package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// Client talks to a running daemon's control socket.
type Client struct {
	Path string
	http *http.Client
}

// APIError is an error the daemon answered with.
type APIError struct {
	Status    int
	Msg       string
	Traceback string
}

func (e *APIError) Error() string { return e.Msg }

// ErrNoDaemon is Dial's error when nothing listens on the control socket.
var ErrNoDaemon = errors.New("no daemon")

// Dial checks that a daemon answers on path and returns a client for it;
// the error says what to do when none does.
func Dial(path string) (*Client, error) {
	c := &Client{Path: path, http: &http.Client{
		Timeout: 2 * time.Minute, // loading an app waits for its import
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "unix", path)
		}},
	}}
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	switch {
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("%w at %s: start it with `pyvhost uwsgi -s 127.0.0.1:9090 --ctl %s …`", ErrNoDaemon, path, path)
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("permission denied on %s: run as the daemon's user or root", path)
	case err != nil:
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	conn.Close()
	return c, nil
}

func (c *Client) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://pyvhost"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", c.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e Error
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return &APIError{Status: resp.StatusCode, Msg: e.Error, Traceback: e.Traceback}
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status is the daemon's summary.
func (c *Client) Status() (Status, error) {
	var s Status
	return s, c.do("GET", "/v1/status", nil, &s)
}

// Apps lists the apps.
func (c *Client) Apps() (Apps, error) {
	var a Apps
	return a, c.do("GET", "/v1/apps", nil, &a)
}

// App is one app (by name or id): what a caller that follows one app asks,
// rather than for every app's stats (10,000 of them take the daemon a
// quarter of a second).
func (c *Client) App(app string) (pool.AppStats, error) {
	var s pool.AppStats
	return s, c.do("GET", "/v1/apps/"+url.PathEscape(app), nil, &s)
}

// Load starts an app and waits for its import; a failed import is an
// *APIError carrying Python's traceback.
func (c *Client) Load(req LoadRequest) (pool.AppStats, error) {
	var s pool.AppStats
	return s, c.do("POST", "/v1/load", req, &s)
}

// Reload reloads one app (by name or id) with zero downtime and waits for
// the new code; if it fails to import, the old code keeps serving and the
// error says why.
func (c *Client) Reload(app string) (pool.AppStats, error) {
	var s pool.AppStats
	return s, c.do("POST", "/v1/apps/"+url.PathEscape(app)+"/reload", nil, &s)
}

// ReloadAll reloads every running app.
func (c *Client) ReloadAll() (Apps, error) {
	var a Apps
	return a, c.do("POST", "/v1/reload", nil, &a)
}

// Stop stops an app's processes; its next request starts them again.
func (c *Client) Stop(app string) (pool.AppStats, error) {
	var s pool.AppStats
	return s, c.do("POST", "/v1/apps/"+url.PathEscape(app)+"/stop", nil, &s)
}

// ReloadConfig makes the daemon re-read the nginx configuration.
func (c *Client) ReloadConfig() error { return c.do("POST", "/v1/reload-config", nil, nil) }

// Shutdown asks the daemon to finish its requests and exit.
func (c *Client) Shutdown() error { return c.do("POST", "/v1/shutdown", nil, nil) }
