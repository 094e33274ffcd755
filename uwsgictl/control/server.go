package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// Backend is what the server asks the daemon. App arguments are an app's
// name or id; errors that are the caller's fault wrap ErrNotFound or
// ErrRefused, and a failed import is a *pool.LoadError with its traceback.
type Backend interface {
	Status() Status
	Apps() Apps
	App(app string) (pool.AppStats, error) // one app, by name or id
	Load(LoadRequest) (pool.AppStats, error)
	Reload(app string) (pool.AppStats, error)
	ReloadAll() error
	Stop(app string) (pool.AppStats, error)
	ReloadConfig() error
	Shutdown()
}

// Errors a Backend returns for bad requests.
var (
	ErrNotFound = errors.New("no such app")
	ErrRefused  = errors.New("refused")
)

// maxControlConns bounds the control socket's connections at once.
const maxControlConns = 64

// Server serves the control API on a unix socket.
type Server struct {
	path string
	l    net.Listener
	srv  *http.Server
}

// Listen creates the control socket, mode 0600 (in a new directory made
// 0700), so only the daemon's user and root can talk to it.
// page, when given, serves the status page at /status/ (the socket's mode
// is its access check: ssh -L can forward it to a browser).
func Listen(path string, b Backend, page http.Handler) (*Server, error) {
	// A directory we create is 0700; an existing one is left as it is (it
	// may hold other things: never change the mode of what we did not
	// make). The socket's own 0600 is what keeps other users out.
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("control socket dir: %w", err)
		}
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use: is another daemon running?", path)
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := &Server{path: path, l: LimitListener(l, maxControlConns), srv: NewHTTPServer(Handler(b, page))}
	go func() { _ = s.srv.Serve(s.l) }()
	return s, nil
}

// Handler is the control API over b (and the status page at /status/,
// its metrics at /metrics, when page is given): what Listen serves on the
// socket.
func Handler(b Backend, page http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { reply(w, http.StatusOK, b.Status()) })
	mux.HandleFunc("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) { reply(w, http.StatusOK, b.Apps()) })
	mux.HandleFunc("GET /v1/apps/{app}", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.App(r.PathValue("app"))
		answer(w, st, err)
	})
	mux.HandleFunc("POST /v1/load", func(w http.ResponseWriter, r *http.Request) {
		var req LoadRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
			reply(w, http.StatusBadRequest, Error{Error: "bad load request: " + err.Error()})
			return
		}
		st, err := b.Load(req)
		answer(w, st, err)
	})
	mux.HandleFunc("POST /v1/apps/{app}/reload", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.Reload(r.PathValue("app"))
		answer(w, st, err)
	})
	mux.HandleFunc("POST /v1/apps/{app}/stop", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.Stop(r.PathValue("app"))
		answer(w, st, err)
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) { answer(w, b.Apps(), b.ReloadAll()) })
	mux.HandleFunc("POST /v1/reload-config", func(w http.ResponseWriter, r *http.Request) { answer(w, b.Status(), b.ReloadConfig()) })
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusAccepted, b.Status())
		// The answer goes out before the daemon starts closing, this socket
		// included: a client must not see EOF for a shutdown it asked for.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go b.Shutdown()
	})
	if page != nil {
		mux.Handle("/status/", http.StripPrefix("/status", page))
		mux.Handle("GET /metrics", page) // the page's /metrics, for a scraper on the socket
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNotFound, Error{Error: fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

// Close stops the server and removes the socket.
func (s *Server) Close() error {
	// Requests in progress (a shutdown's own answer, say) finish first, for
	// a moment; then the connections close.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	_ = os.Remove(s.path)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// answer replies v, or the error with the status it deserves.
func answer(w http.ResponseWriter, v any, err error) {
	var le *pool.LoadError
	switch {
	case err == nil:
		reply(w, http.StatusOK, v)
	case errors.As(err, &le):
		reply(w, http.StatusUnprocessableEntity, Error{Error: err.Error(), Traceback: le.Traceback})
	case errors.Is(err, ErrNotFound):
		reply(w, http.StatusNotFound, Error{Error: err.Error()})
	case errors.Is(err, ErrRefused):
		reply(w, http.StatusForbidden, Error{Error: err.Error()})
	default:
		reply(w, http.StatusInternalServerError, Error{Error: err.Error()})
	}
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
