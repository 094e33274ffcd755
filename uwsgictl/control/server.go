package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Backend is what the server asks the daemon.
type Backend interface {
	Status() Status
	Apps() Apps
}

// Server serves the control API on a unix socket.
type Server struct {
	path string
	l    net.Listener
	srv  *http.Server
}

// Listen creates the control socket, mode 0600 (in a new directory made
// 0700), so only the daemon's user and root can talk to it.
func Listen(path string, b Backend) (*Server, error) {
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
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { reply(w, http.StatusOK, b.Status()) })
	mux.HandleFunc("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) { reply(w, http.StatusOK, b.Apps()) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNotFound, Error{Error: fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path)})
	})
	s := &Server{path: path, l: l, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// Close stops the server and removes the socket.
func (s *Server) Close() error {
	err := s.srv.Close()
	_ = os.Remove(s.path)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
