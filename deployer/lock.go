package deployer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Lock is held for a whole deploy so two cannot interleave.
type Lock struct{ f *os.File }

// TakeLock takes the deploy lock in the state dir without waiting; when
// another deploy holds it, the error names its pid.
func TakeLock(stateDir string) (*Lock, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	path := filepath.Join(stateDir, "deploy.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("deploy lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another deploy is running (pid %s, lock %s): wait for it to finish", strings.TrimSpace(string(holder)), path)
		}
		return nil, fmt.Errorf("deploy lock: %w", err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f}, nil
}

// Release lets the next deploy run.
func (l *Lock) Release() error {
	_ = l.f.Truncate(0)
	return l.f.Close() // closing drops the flock
}
