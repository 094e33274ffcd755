package pool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// event is a message from a zygote (see templates/worker/pyvhost_worker/zygote.py).
type event struct {
	Ev        string `json:"ev"` // ready, failed, spawned, exited
	PID       int    `json:"pid"`
	Slot      int    `json:"slot"`
	Status    int    `json:"status"` // wait status of an exited worker
	Error     string `json:"error"`
	Traceback string `json:"traceback"`
	Interface string `json:"interface"` // ready: "wsgi" or "asgi"
	Speedups  bool   `json:"speedups"`  // ready: the C request path is loaded
}

// process is what the pool's state machine needs of a generation's
// zygote and its workers: the real one is a Python process (zygote); the
// state machine's tests feed events to a fake one.
type process interface {
	pid() int
	spawn(slot int) error // fork a worker into slot; it reports "spawned", later "exited"
	stop()                // gracefully: workers finish their requests, then exit
	kill(workers []int)   // at once: the zygote's process group and the workers
	killWorker(pid int)   // one worker (harakiri)
}

// startFunc starts a generation's process. Events arrive on onEvent and
// its exit on onExit, from a goroutine of its own.
type startFunc func(onEvent func(event), onExit func(error)) (process, error)

// zygote is one generation's first Python process: it imports the app and
// forks the workers.
type zygote struct {
	cmd *exec.Cmd
	ctl *os.File // the daemon's end of a SOCK_SEQPACKET pair
}

func (z *zygote) pid() int { return z.cmd.Process.Pid }

func (z *zygote) spawn(slot int) error { return z.send(map[string]any{"cmd": "spawn", "slot": slot}) }

func (z *zygote) stop() {
	_ = z.send(map[string]any{"cmd": "stop"})
	_ = z.cmd.Process.Signal(syscall.SIGTERM)
}

func (z *zygote) kill(workers []int) {
	_ = syscall.Kill(-z.cmd.Process.Pid, syscall.SIGKILL)
	for _, pid := range workers {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func (z *zygote) killWorker(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }

// acceptGrace is how long a worker waits for the vars of a connection it
// accepted before handing it to the daemon, which waits for the rest off
// the workers: nginx sends them right after connecting, so only a slow or
// idle peer is handed over, and it holds a worker this long at most (a
// thousand idle connections at once cost a worker a second).
const acceptGrace = time.Millisecond

// wsPing is how often an open WebSocket is pinged: every, or more often
// when the app's harakiri shortens nginx's uwsgi_read_timeout (harakiri
// plus 5 s, as deploy renders it): twice in that time.
func wsPing(every, harakiri time.Duration) time.Duration {
	if every <= 0 {
		return -time.Millisecond // off (0 in the JSON would mean the worker's default)
	}
	if harakiri > 0 {
		every = min(every, (harakiri+5*time.Second)/2)
	}
	return every
}

// workerConfig is the JSON the worker program reads from PYVHOST_WORKER.
type workerConfig struct {
	AppID       string `json:"app_id"`
	AppNum      int    `json:"app_num"`
	Name        string `json:"name"`
	Pyhome      string `json:"pyhome"`
	Chdir       string `json:"chdir"`
	Script      string `json:"script"`
	Lazy        bool   `json:"lazy"`
	LimitASMB   int    `json:"limit_as_mb"`
	BufferSize  int    `json:"buffer_size"`
	MaxVars     int    `json:"max_vars"`
	MaxRequests int    `json:"max_requests"`
	Logging     bool   `json:"logging"`
	Vhost       bool   `json:"vhost"`
	SingleApp   bool   `json:"single_app"`
	Slots       int    `json:"slots"`
	SpeedupsDir string `json:"speedups_dir"`
	OwnFDs      []int  `json:"own_fds"`
	SharedFDs   []int  `json:"shared_fds"`
	// SocketTimeoutMS bounds every read and write of a request (--socket-timeout).
	SocketTimeoutMS int    `json:"socket_timeout_ms"`
	AcceptGraceMS   int    `json:"accept_grace_ms"`
	Interface       string `json:"interface"`
	ASGIConcurrency int    `json:"asgi_concurrency"`
	WSMaxMessage    int    `json:"websocket_max_message"`
	WSPingMS        int    `json:"websocket_ping_ms"`
	// Protocol is the layout and numbers the worker shares with the daemon (protocol.go).
	Protocol map[string]any `json:"protocol"`
}

// interpreter is the app's venv python, else --python.
func (a *App) interpreter() (string, error) {
	if a.Key.Pyhome != "" {
		py := filepath.Join(a.Key.Pyhome, "bin", "python")
		if _, err := os.Stat(py); err != nil {
			return "", fmt.Errorf("venv %s has no bin/python: create it with python3 -m venv %s", a.Key.Pyhome, a.Key.Pyhome)
		}
		return py, nil
	}
	py, err := exec.LookPath(a.cfg.Python)
	if err != nil {
		return "", fmt.Errorf("python interpreter %q not found (--python): %w", a.cfg.Python, err)
	}
	return py, nil
}

// credential is who the app runs as: the owner of its directory when the
// daemon is root, so one site cannot read another's files.
func (a *App) credential() (*syscall.Credential, string, error) {
	if os.Geteuid() != 0 {
		home, _ := os.UserHomeDir()
		return nil, home, nil
	}
	dir := a.Key.Chdir
	if dir == "" {
		dir = "."
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return nil, "", fmt.Errorf("app directory %s: %w", dir, err)
	}
	if st.Uid == 0 && !a.cfg.AllowRootApps {
		return nil, "", fmt.Errorf("app directory %s is owned by root: chown it to the user the app should run as, or pass --allow-root-apps", dir)
	}
	cred := &syscall.Credential{Uid: st.Uid, Gid: st.Gid}
	home := "/"
	if u, err := user.LookupId(strconv.Itoa(int(st.Uid))); err == nil {
		home = u.HomeDir
		if gids, err := u.GroupIds(); err == nil {
			for _, g := range gids {
				if n, err := strconv.Atoi(g); err == nil {
					cred.Groups = append(cred.Groups, uint32(n))
				}
			}
		}
	}
	return cred, home, nil
}

// startZygote starts a generation's zygote (the App's startFunc).
func (a *App) startZygote(onEvent func(event), onExit func(error)) (process, error) {
	py, err := a.interpreter()
	if err != nil {
		return nil, err
	}
	cred, home, err := a.credential()
	if err != nil {
		return nil, err
	}
	ctl, child, err := newZygoteCtl()
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer child.Close()

	files := []*os.File{child, a.sb.file, a.handoffR, a.cfg.ToMaster}
	wc := workerConfig{
		AppID: a.ID, AppNum: a.Num, Name: a.Name,
		Pyhome: a.Key.Pyhome, Chdir: a.Key.Chdir, Script: a.Key.Script,
		Lazy: a.cfg.Lazy, LimitASMB: a.cfg.LimitAS, BufferSize: a.cfg.BufferSize, MaxVars: a.cfg.MaxVars,
		MaxRequests: a.cfg.MaxRequests, Logging: a.cfg.Logging, Vhost: a.cfg.Vhost, SingleApp: a.cfg.SingleApp,
		Slots: a.sb.n, SpeedupsDir: a.cfg.SpeedupsDir, OwnFDs: []int{}, SharedFDs: []int{},
		SocketTimeoutMS: int(a.cfg.SocketTimeout / time.Millisecond), AcceptGraceMS: int(acceptGrace / time.Millisecond),
		Interface: a.cfg.Interface, ASGIConcurrency: a.cfg.ASGIConcurrency, WSMaxMessage: a.cfg.WebSocketMaxMessage,
		WSPingMS: int(wsPing(a.cfg.WebSocketPing, a.cfg.Harakiri) / time.Millisecond),
		Protocol: WorkerProtocol(),
	}
	for _, f := range a.own {
		wc.OwnFDs = append(wc.OwnFDs, fdCtl+len(files))
		files = append(files, f)
	}
	for _, f := range a.shared {
		wc.SharedFDs = append(wc.SharedFDs, fdCtl+len(files))
		files = append(files, f)
	}
	js, err := json.Marshal(wc)
	if err != nil {
		ctl.Close()
		return nil, err
	}
	cmd := exec.Command(py, a.cfg.WorkerScript, a.Name)
	cmd.Dir = "/"
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"LANG=C.UTF-8",
		"HOME=" + home,
	}
	if a.Key.Pyhome != "" {
		cmd.Env = append(cmd.Env, "VIRTUAL_ENV="+a.Key.Pyhome)
	}
	// The app's own variables may override the base (its LANG, say); exec
	// keeps the last of duplicates, so they go after it, and the worker's
	// wiring last of all (appconf refuses PYVHOST_ names anyway).
	cmd.Env = append(cmd.Env, a.cfg.Env...)
	cmd.Env = append(cmd.Env, "PYVHOST_WORKER="+string(js))
	cmd.ExtraFiles = files
	cmd.Stdout, cmd.Stderr = a.cfg.LogWriter, a.cfg.LogWriter
	if a.cfg.OutputFor != nil {
		uid, gid := os.Geteuid(), os.Getegid()
		if cred != nil {
			uid, gid = int(cred.Uid), int(cred.Gid)
		}
		out, err := a.cfg.OutputFor(a, uid, gid)
		if err != nil {
			ctl.Close()
			return nil, err
		}
		defer out.Close() // the zygote and its workers hold it; EOF once they are all gone
		cmd.Stdout, cmd.Stderr = out, out
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		ctl.Close()
		return nil, startError(py, cred, err)
	}
	z := &zygote{cmd: cmd, ctl: ctl}
	go func() {
		readEvents(ctl, onEvent)
		err := cmd.Wait()
		ctl.Close()
		onExit(err)
	}()
	return z, nil
}

func (z *zygote) send(cmd map[string]any) error {
	b, _ := json.Marshal(cmd)
	if _, err := z.ctl.Write(b); err != nil {
		return fmt.Errorf("tell zygote %d: %w", z.cmd.Process.Pid, err)
	}
	return nil
}

// startError says why the app's interpreter did not start; a permission
// error names the user and the real interpreter: a venv made from a Python
// under a private directory (pyenv in /root, say) is the usual cause.
func startError(py string, cred *syscall.Credential, err error) error {
	if !errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("start %s: %w", py, err)
	}
	real, rerr := filepath.EvalSymlinks(py)
	if rerr != nil {
		real = py
	}
	uid := os.Getuid()
	if cred != nil {
		uid = int(cred.Uid)
	}
	who := strconv.Itoa(uid)
	if u, uerr := user.LookupId(who); uerr == nil {
		who = u.Username
	}
	return fmt.Errorf("start %s: the app's user %s may not run it (it is %s: every directory on that path must be searchable by %s): %w",
		py, who, real, who, err)
}
