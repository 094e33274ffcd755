package deployer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// Owner is a user apps run as.
type Owner struct {
	Name     string
	UID, GID int
}

// LookupOwner finds a user by name.
func LookupOwner(name string) (Owner, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return Owner{}, fmt.Errorf("--user %s: no such user on this machine", name)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return Owner{Name: u.Username, UID: uid, GID: gid}, nil
}

// ownerOf is the user owning path (the daemon runs an app as the owner of
// its directory).
func ownerOf(path string) (Owner, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Owner{}, err
	}
	sys := st.Sys().(*syscall.Stat_t)
	o := Owner{UID: int(sys.Uid), GID: int(sys.Gid), Name: strconv.Itoa(int(sys.Uid))}
	if u, err := user.LookupId(o.Name); err == nil {
		o.Name = u.Username
	}
	return o, nil
}

// createAppDir makes dir (and any missing parents, 0755 so the app's user
// can reach it) owned by o. It returns the topmost directory it created, for
// a rollback to remove.
func createAppDir(dir string, o Owner) (top string, err error) {
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil || p == filepath.Dir(p) {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("app dir: %w", err)
		}
		top = p
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create app dir: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, o.UID, o.GID); err != nil {
			return top, fmt.Errorf("create app dir: %w", err)
		}
	}
	return top, nil
}
