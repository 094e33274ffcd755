// Package appconf is what one app runs with beyond its code and the nginx
// config: its environment (secrets, so kept root-only in the state dir and
// never in nginx's files) and its pool settings. deploy and `pyvhost
// config` write it; the daemon reads it by the app's identity (pyhome,
// chdir, script) when it starts or reloads the app, so it survives daemon
// restarts and no request can carry it.
package appconf

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// Settings is one app's stored settings.
type Settings struct {
	App  pool.Key          `json:"app"`
	Env  map[string]string `json:"env,omitempty"`
	Pool Pool              `json:"pool,omitzero"`
	// Interface is deploy --interface: "wsgi" or "asgi"; "" = what the
	// app's callable is.
	Interface string `json:"interface,omitempty"`
	// Release is the app's release commands (deploy --release), run by
	// every deploy before the new code goes live; the daemon ignores them.
	Release []string `json:"release,omitempty"`
	// SmokePaths is deploy --smoke-path as last given (["none"]: no smoke
	// test), so a redeploy tests what the first deploy was told to.
	SmokePaths []string `json:"smoke_paths,omitempty"`
}

// Dir is where every app's settings live under a state dir.
func Dir(stateDir string) string { return filepath.Join(stateDir, "apps") }

// Path is the file of app k's settings: named by a full hash of its
// identity (a short one could collide and hand one app another's secrets;
// Load also checks the identity stored inside).
func Path(stateDir string, k pool.Key) string {
	return filepath.Join(Dir(stateDir), keyHash(k, 32)+".json")
}

// keyHash is the hex of the first n bytes of a hash of app k's identity.
func keyHash(k pool.Key, n int) string {
	h := sha256.Sum256([]byte(k.Pyhome + "\x00" + k.Chdir + "\x00" + k.Script))
	return hex.EncodeToString(h[:n])
}

// Load reads app k's settings; an app with none has empty ones.
func Load(stateDir string, k pool.Key) (Settings, error) {
	s := Settings{App: k}
	if stateDir == "" {
		return s, nil
	}
	b, err := os.ReadFile(Path(stateDir, k))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("settings of app %s: %w", k, err)
	}
	var got Settings
	if err := json.Unmarshal(b, &got); err != nil {
		return s, fmt.Errorf("settings of app %s (%s) are damaged: %w", k, Path(stateDir, k), err)
	}
	if got.App != k {
		return s, fmt.Errorf("settings file %s names app %s, not %s: remove it", Path(stateDir, k), got.App, k)
	}
	return got, nil
}

// Save writes s atomically, readable by its owner (root) only. Settings
// with nothing in them remove the file.
func Save(stateDir string, s Settings) error {
	path := Path(stateDir, s.App)
	if len(s.Env) == 0 && s.Pool.IsZero() && len(s.Release) == 0 && len(s.SmokePaths) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("settings of app %s: %w", s.App, err)
		}
		return nil
	}
	if err := os.MkdirAll(Dir(stateDir), 0o700); err != nil {
		return fmt.Errorf("settings dir: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", path, time.Now().UnixNano())
	if err := writeSynced(tmp, append(b, '\n')); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write settings of app %s: %w", s.App, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write settings of app %s: %w", s.App, err)
	}
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	return errors.Join(werr, serr, f.Close())
}

// Environ is the app's environment as KEY=VALUE, sorted by key.
func (s Settings) Environ() []string {
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + s.Env[k]
	}
	return out
}

// Stamp identifies the settings the app's processes run with (its
// environment and pool): ctl shows it instead of any value.
func (s Settings) Stamp() string {
	b, _ := json.Marshal(Settings{Env: s.Env, Pool: s.Pool, Interface: s.Interface})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// LogPath is app k's own log file in the daemon's --app-logs dir: named by
// a hash of its identity, as its settings are, so two apps never share
// one, whatever names the nginx config gives them.
func LogPath(dir string, k pool.Key) string { return filepath.Join(dir, keyHash(k, 8)+".log") }
