package deployer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Lock is held for a whole deploy so two cannot interleave. The ACME
// lock, beside it, is held while a certificate is ordered: one challenge
// address and one ACME account serve every order, the daemon's renewals
// and deploys alike.
type Lock struct{ f *os.File }

// TakeLock takes the deploy lock in the state dir without waiting; when
// another holds it, the error names its pid and what it is doing.
func TakeLock(stateDir string) (*Lock, error) { return TakeLockFor(stateDir, "another deploy") }

// TakeLockFor is TakeLock for what, named to whoever finds it taken
// ("the daemon's certificate renewal").
func TakeLockFor(stateDir, what string) (*Lock, error) {
	return takeLock(stateDir, "deploy.lock", what)
}

// WaitLock is TakeLockFor, waiting up to timeout while another holds the
// lock (a deploy takes seconds).
func WaitLock(ctx context.Context, stateDir, what string, timeout time.Duration) (*Lock, error) {
	return waitLock(ctx, stateDir, "deploy.lock", what, timeout)
}

// WaitACMELock takes the ACME lock, waiting up to timeout (an order takes
// seconds, at most certmagic's two minutes).
func WaitACMELock(ctx context.Context, stateDir, what string, timeout time.Duration) (*Lock, error) {
	return waitLock(ctx, stateDir, "acme.lock", what, timeout)
}

func takeLock(stateDir, name, what string) (*Lock, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	path := filepath.Join(stateDir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, doing, _ := strings.Cut(strings.TrimSpace(string(holder)), " ")
			if doing == "" {
				doing = "another deploy"
			}
			return nil, fmt.Errorf("%s is running (pid %s, lock %s): wait for it to finish", doing, pid, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+" "+what+"\n"), 0)
	return &Lock{f}, nil
}

func waitLock(ctx context.Context, stateDir, name, what string, timeout time.Duration) (*Lock, error) {
	deadline := time.Now().Add(timeout)
	for {
		l, err := takeLock(stateDir, name, what)
		if err == nil || time.Now().After(deadline) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Release lets the next one run.
func (l *Lock) Release() error {
	_ = l.f.Truncate(0)
	return l.f.Close() // closing drops the flock
}
