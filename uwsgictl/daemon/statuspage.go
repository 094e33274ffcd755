package daemon

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/pyvhost/pyvhost/templates"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// statusDoc is /status.json: what the status page shows.
type statusDoc struct {
	Status  control.Status    `json:"status"`
	Apps    []pool.AppStats   `json:"apps"`
	History map[string]Series `json:"history"` // by app id: the charts' last 15 minutes
}

// statusPage serves the dashboard, its JSON and the Prometheus metrics
// (/metrics) with no access check; the
// HTTP listener wraps it with the token, the control socket (whose 0600
// mode is the check) serves it as it is.
func (d *Daemon) statusPage() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(statusDoc{Status: d.Status(), Apps: d.AppList().Apps, History: d.history.series()})
	})
	mux.Handle("GET /metrics", d.metricsHandler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'")
		_, _ = w.Write([]byte(templates.StatusHTML))
	})
	return mux
}

// maxStatusConns bounds the status page's connections at once.
const maxStatusConns = 256

// serveStatusHTTP serves the status page on addr for holders of the token.
// A non-loopback address needs public: the page shows which apps run where.
func (d *Daemon) serveStatusHTTP(addr string, public bool, stateDir string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--status-http %q: want host:port, e.g. 127.0.0.1:9191", addr)
	}
	if ip := net.ParseIP(host); !(host == "localhost" || ip != nil && ip.IsLoopback()) {
		if !public {
			return fmt.Errorf("--status-http %s is not a loopback address: pass --status-http-public to serve the status page beyond this machine", addr)
		}
		d.log.logf("warning: the status page on %s is reachable from other machines (token-protected)", addr)
	}
	token, tokenFile, err := statusToken(stateDir)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	page := d.statusPage()
	srv := control.NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		given := r.URL.Query().Get("token")
		if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			given = auth
		}
		if subtle.ConstantTimeCompare([]byte(given), []byte(token)) != 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(control.Error{Error: "a token is needed: ?token=… as printed at start, in " + tokenFile})
			return
		}
		page.ServeHTTP(w, r)
	}))
	// Its own cap: pinning the status page leaves the control socket and
	// the apps their descriptors.
	go func() { _ = srv.Serve(control.LimitListener(l, maxStatusConns)) }()
	go func() {
		<-d.stopping
		srv.Close()
	}()
	d.log.logf("status page: http://%s/?token=%s (the token is kept in %s)", l.Addr(), token, tokenFile)
	return nil
}

// statusToken reads the status page's token from the state dir, creating
// it (mode 0600) on first use.
func statusToken(stateDir string) (token, file string, err error) {
	file = filepath.Join(stateDir, "status-token")
	if b, err := os.ReadFile(file); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), file, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", file, fmt.Errorf("status token: %w", err)
	}
	if _, err := os.Stat(stateDir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			return "", file, fmt.Errorf("state dir: %w", err)
		}
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", file, err
	}
	token = hex.EncodeToString(raw)
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		return "", file, fmt.Errorf("status token: %w", err)
	}
	return token, file, nil
}

// RootStateDir is the state directory of a daemon run as root (the Debian
// package's).
const RootStateDir = "/var/lib/pyvhost"

// DefaultStateDir is where the daemon keeps state: /var/lib/pyvhost as
// root, else $XDG_STATE_HOME/pyvhost (~/.local/state/pyvhost).
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return RootStateDir
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "pyvhost")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "pyvhost")
}
