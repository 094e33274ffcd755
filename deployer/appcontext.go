package deployer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
)

// AppContext is where and as whom an app's commands run — the preflight
// import, release commands, `pyvhost run`: as the daemon runs the app, in
// its dir, as its user, with its venv's bin first on PATH and its own
// environment over a fixed base.
type AppContext struct {
	Dir, Venv string
	UID, GID  int
	Groups    []int
	User      string
	Home      string
	Env       []string // the app's own KEY=VALUE (appconf)
}

// AppContextOf is a deployed app's context: its dir's owner, its stored
// environment.
func AppContextOf(stateDir string, app nginxconf.AppSpec) (AppContext, error) {
	s, err := appconf.Load(stateDir, KeyOf(app))
	if err != nil {
		return AppContext{}, err
	}
	o, err := ownerOf(app.AppDir)
	if err != nil {
		return AppContext{}, fmt.Errorf("the app dir of %s: %w", app.Module, err)
	}
	return appContextAs(app, o.UID, s.Environ())
}

// appContextAs is app's context as user uid with env: the daemon runs an
// app as its dir's owner when it is root, else as itself.
func appContextAs(app nginxconf.AppSpec, uid int, env []string) (AppContext, error) {
	ac := AppContext{Dir: app.AppDir, Venv: app.Venv, UID: uid, GID: os.Getegid(), Home: "/", Env: env, User: strconv.Itoa(uid)}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		if uid != os.Geteuid() {
			ac.GID, ac.Groups = uid, []int{} // no such user: its own uid as group, no others (as the daemon)
		}
		return ac, nil
	}
	ac.User, ac.Home = u.Username, u.HomeDir
	ac.GID, _ = strconv.Atoi(u.Gid)
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if n, err := strconv.Atoi(g); err == nil {
			ac.Groups = append(ac.Groups, n)
		}
	}
	return ac, nil
}

// Path is the PATH the app's commands get: the venv's bin first, unless
// the app's environment sets its own.
func (ac AppContext) Path() string {
	for _, kv := range ac.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return v
		}
	}
	return filepath.Join(ac.Venv, "bin") + ":/usr/local/bin:/usr/bin:/bin"
}

// Environ is the base environment and the app's own over it (exec keeps
// the last of duplicates).
func (ac AppContext) Environ() []string {
	env := []string{"PATH=" + filepath.Join(ac.Venv, "bin") + ":/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV=" + ac.Venv,
		"HOME=" + ac.Home, "LANG=C.UTF-8", "USER=" + ac.User, "LOGNAME=" + ac.User}
	return append(env, ac.Env...)
}

// CheckUser refuses to run as the app's user when we cannot become it.
func (ac AppContext) CheckUser() error {
	if ac.UID != os.Geteuid() && os.Geteuid() != 0 {
		return fmt.Errorf("the app runs as %s (its dir's owner): run this as root or as that user", ac.User)
	}
	return nil
}

// Command is argv in the app's context; the process gets its own process
// group, so a cancelled deploy stops all of it.
func (ac AppContext) Command(ctx context.Context, argv ...string) (*exec.Cmd, error) {
	if err := ac.CheckUser(); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, ac.Executable(argv[0]), argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Dir, cmd.Env = ac.Dir, ac.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if ac.UID != os.Geteuid() {
		groups := make([]uint32, len(ac.Groups))
		for i, g := range ac.Groups {
			groups[i] = uint32(g)
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(ac.UID), Gid: uint32(ac.GID), Groups: groups}
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd, nil
}

// Executable is the program a shell in the app's context would run for
// name: name itself when it holds a / (from the app dir) or no directory
// of the app's PATH has it (exec then says it is not found).
func (ac AppContext) Executable(name string) string {
	if strings.Contains(name, "/") {
		if filepath.IsAbs(name) {
			return name
		}
		return filepath.Join(ac.Dir, name)
	}
	for _, dir := range filepath.SplitList(ac.Path()) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}
