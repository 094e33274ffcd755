package deployer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
)

// Options is a deploy as the user asked for it.
type Options struct {
	Spec         nginxconf.SiteSpec // from the flags; at most one app
	Python       string             // creates the venv; "" = python3
	SysSite      bool               // --system-site-packages
	Requirements string             // "" = APP-DIR/requirements.txt when present
	User         string             // --user; "" = www-data for a new app dir, when root and it exists
	SmokePaths   []string           // --smoke-path: more paths that must answer 2xx; ["none"] = no smoke test
	NginxTest    string             // --nginx-test: before, beside or auto ("" = auto)
	Force        bool               // --force: overwrite hand edits of pyvhost's file
	Env          map[string]string  // --env-file then --env: variables to set in the app's environment
	Pool         appconf.Pool       // --processes, --harakiri…: the app's own pool settings
	Interface    string             // --interface: asgi, wsgi, auto ("" keeps the app's)
	Release      []string           // --release: the app's release commands, replacing the stored ones; ["none"] = none
	TLS          *TLSOptions        // --tls and its companions; nil leaves the site's TLS as it is
	Runner       Runner
	Nginx        *Nginx
	StateDir     string
	Daemon       DaemonSetup // Ctl, Exe, AppSockets… (Listen and NginxConf are filled in)
}

// Deployment is a prepared deploy: what was found, the plan, and (once
// Apply runs) what it changed, to undo.
type Deployment struct {
	opts Options
	Facts
	Steps    []Step
	Notes    []string // for the operator, once applied: nginx settings worth raising
	before   TestResult
	client   *control.Client
	undo     undoLog
	appEnv   []string // the app's environment as this deploy leaves it
	progress Progress // Apply's, for a step's output
	certLeaf []byte   // the certificate nginx must present once live (DER); nil = any
	// serverNames counts the server names nginx will have: what its
	// server names' hash must hold (Tuning).
	serverNames func() int
	// The daemon's re-read, run beside nginx -t when it comes right after
	// (rereadFollowsTest): that test's number, the tests run so far, its
	// outcome while it runs.
	rereadAt, nginxTests int
	reread               chan error
	// appInterface is the app's --interface as this deploy leaves it ("" =
	// what its callable is): what the preflight checks it against.
	appInterface string
	beside       *besideTest // nginx -t running beside the reload (beside.go)
}

// Prepare checks everything that can be checked without changing a byte
// and works out the plan: nginx's current config passes `nginx -t`, the
// inputs are valid, no other server block has the name, the running
// daemon (if any) reads the same config and serves the socket.
func Prepare(ctx context.Context, o Options) (*Deployment, error) {
	d := &Deployment{opts: o}
	if d.opts.Python == "" {
		d.opts.Python = "python3"
	}
	if err := CheckNginxTestMode(o.NginxTest); err != nil {
		return nil, err
	}
	d.NginxTestMode = o.NginxTest
	var tree *nginxconf.Tree
	var err error
	if d.before, tree, err = loadPassingConfig(ctx, o.Nginx); err != nil {
		return nil, err
	}
	spec := o.Spec
	spec.SocketDir = o.Daemon.AppSockets
	d.tlsSpec(&spec)
	d.serverNames = func() int { return countServerNames(tree, spec) } // a walk of every server: only if nginx asks
	if d.Site, err = tree.PlanSite(spec); err != nil {
		return nil, err
	}
	if err := d.prepareCert(tree, spec); err != nil {
		return nil, err
	}
	if err := d.prepareSettings(tree, spec); err != nil {
		return nil, err
	}
	if err := checkHandEdits(o.StateDir, d.Site, o.Force); err != nil {
		return nil, err
	}
	d.Python, d.SysSite = d.opts.Python, o.SysSite
	d.ConfigSame = len(d.Site.Changes) == 0
	d.NginxDown = !o.Nginx.up()
	d.NginxTestTook = d.before.Took
	d.SmokeAddr = smokeAddr(d.Site.Spec.Listen)
	d.SmokePath = "/"
	if len(o.Spec.Apps) > 0 {
		if err := d.prepareApp(tree); err != nil {
			return nil, err
		}
	} else if len(o.Spec.Statics) > 0 {
		d.SmokePath = strings.TrimSuffix(o.Spec.Statics[0].URL, "/") + "/"
	}
	if err := d.checkStaticDirs(o.Spec.Statics); err != nil {
		return nil, err
	}
	if err := d.smokePaths(d.opts.SmokePaths); err != nil {
		return nil, err
	}
	d.Steps = Plan(d.Facts)
	return d, nil
}

// checkStaticDirs refuses a --static whose directory is not one: nginx
// would answer every request there with a 404 (or 403), and nothing would
// say why. A missing one inside the app dir is created for the app's user
// (a release command such as collectstatic fills it).
func (d *Deployment) checkStaticDirs(statics []nginxconf.StaticSpec) error {
	for _, s := range statics {
		st, err := os.Stat(s.Dir)
		switch {
		case errors.Is(err, fs.ErrNotExist) && d.App != nil && inside(d.App.AppDir, s.Dir):
			d.StaticDirs = append(d.StaticDirs, s.Dir)
		case errors.Is(err, fs.ErrNotExist):
			return &nginxconf.InvalidError{Err: fmt.Errorf("--static %s=%s: %s does not exist (create it with the files to serve, or put it in the app dir, where deploy creates it for a release command such as collectstatic to fill)", s.URL, s.Dir, s.Dir)}
		case err != nil:
			return fmt.Errorf("--static %s=%s: %w", s.URL, s.Dir, err)
		case !st.IsDir():
			return &nginxconf.InvalidError{Err: fmt.Errorf("--static %s=%s: %s is not a directory", s.URL, s.Dir, s.Dir)}
		}
	}
	return nil
}

// inside reports whether path is dir or below it.
func inside(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// smokePaths applies --smoke-path: "none" alone turns the smoke test off;
// other values are paths on the site that must answer 2xx too.
func (d *Deployment) smokePaths(paths []string) error {
	if len(paths) == 1 && paths[0] == "none" {
		d.SmokePath = ""
		return nil
	}
	for _, p := range paths {
		if p == "none" || !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\r\n#") {
			return &nginxconf.InvalidError{Err: fmt.Errorf("--smoke-path %q: want a path on the site such as /healthz (or none alone, to skip the smoke test)", p)}
		}
	}
	d.SmokeExtra = paths
	return nil
}

// loadPassingConfig reads nginx's configuration, refusing to build on one
// nginx already rejects: every later `nginx -t` would fail for a reason
// that is not ours. The test result is the baseline new warnings are
// measured against.
func loadPassingConfig(ctx context.Context, n *Nginx) (TestResult, *nginxconf.Tree, error) {
	tree, loadErr := n.Load()
	var r TestResult
	var err error
	if loadErr == nil {
		r, err = n.TestTree(ctx, tree)
	} else {
		r, err = n.Test(ctx) // nginx's own words first, when it rejects the config too
	}
	if err != nil {
		return r, nil, fmt.Errorf("check nginx: %w", err)
	}
	if !r.OK {
		return r, nil, fmt.Errorf("the current nginx config already fails `nginx -t` (%s): fix it first, pyvhost changes nothing on a broken config", strings.Join(r.Errors, "; "))
	}
	if loadErr != nil {
		return r, nil, fmt.Errorf("read nginx config: %w", loadErr)
	}
	return r, tree, nil
}

func (d *Deployment) prepareApp(tree *nginxconf.Tree) error {
	mount := nginxconf.NormalizeMount(d.opts.Spec.Apps[0].Mount)
	for i := range d.Site.Spec.Apps {
		if d.Site.Spec.Apps[i].Mount == mount {
			d.App = &d.Site.Spec.Apps[i]
		}
	}
	app := d.App
	if app.Mount != "/" {
		d.SmokePath = app.Mount + "/"
	}
	if err := d.prepareAppDir(); err != nil {
		return err
	}
	_, err := os.Stat(VenvPython(app.Venv))
	d.VenvExists = err == nil
	if !d.VenvExists {
		if _, err := exec.LookPath(d.opts.Python); err != nil {
			return fmt.Errorf("--python %s: not found; it creates the venv %s", d.opts.Python, app.Venv)
		}
	}
	if err := d.prepareRequirements(); err != nil {
		return err
	}
	return d.prepareDaemon(tree)
}

// prepareAppDir decides who owns the app dir: the daemon runs the app as
// that user, never as root.
func (d *Deployment) prepareAppDir() error {
	dir := d.App.AppDir
	st, err := os.Stat(dir)
	switch {
	case err == nil && !st.IsDir():
		return &nginxconf.InvalidError{Err: fmt.Errorf("--app-dir %s is not a directory", dir)}
	case err != nil && !os.IsNotExist(err):
		return fmt.Errorf("--app-dir: %w", err)
	}
	d.AppDirExists = err == nil
	root := os.Geteuid() == 0
	name := d.opts.User
	if name == "" && !d.AppDirExists && root {
		name = "www-data"
		if _, err := LookupOwner(name); err != nil {
			return fmt.Errorf("no www-data user to own the new app dir %s: say which user runs the app with --user", dir)
		}
	}
	var owner Owner
	if name != "" {
		if owner, err = LookupOwner(name); err != nil {
			return &nginxconf.InvalidError{Err: err}
		}
		if !root && owner.UID != os.Geteuid() {
			return fmt.Errorf("--user %s: only root can give the app dir to another user", name)
		}
	}
	switch {
	case !d.AppDirExists:
		d.AppDirUser = name
	case name != "":
		if cur, err := ownerOf(dir); err == nil && cur.UID != owner.UID {
			d.AppDirUser = name
		}
	default:
		if owner, err = ownerOf(dir); err != nil {
			return fmt.Errorf("--app-dir: %w", err)
		}
	}
	if root {
		d.RunAs = owner.Name
	}
	return nil
}

// errRootApp: the daemon drops to the app dir's owner and refuses root.
func errRootApp(dir string) error {
	return fmt.Errorf("--app-dir %s is owned by root and the daemon never runs apps as root: pass --user www-data (or the app's own user) to give it to that user", dir)
}

// requirementsStamp, in the venv, is the hash of the requirements file
// last installed there: an unchanged file is not re-installed, which keeps
// a redeploy fast.
const requirementsStamp = ".pyvhost-requirements.sha256"

func (d *Deployment) prepareRequirements() error {
	file := d.opts.Requirements
	if file == "" {
		file = filepath.Join(d.App.AppDir, "requirements.txt")
		if _, err := os.Stat(file); err != nil {
			// A PEP 621 project: its [project] dependencies, as piku and
			// Dokku install them.
			if file = filepath.Join(d.App.AppDir, "pyproject.toml"); !exists(file) {
				return nil
			}
		}
	} else if _, err := os.Stat(file); err != nil {
		return &nginxconf.InvalidError{Err: fmt.Errorf("--requirements %s: %v", file, errors.Unwrap(err))}
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	if d.VenvExists && stampOf(abs) == readStamp(d.App.Venv) {
		return nil
	}
	d.Requirements = abs
	return nil
}

func stampOf(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func readStamp(venv string) string {
	b, _ := os.ReadFile(filepath.Join(venv, requirementsStamp))
	return strings.TrimSpace(string(b))
}

// prepareDaemon asks the running daemon (if any) whether it will see and
// serve the site, or works out how to start one.
func (d *Deployment) prepareDaemon(tree *nginxconf.Tree) error {
	setup := &d.opts.Daemon
	setup.NginxConf = d.opts.Nginx.Conf
	setup.Listen = daemonListens(tree, d.Site.Spec, setup.appSockets())
	d.Daemon.Ctl = setup.Ctl
	c, err := control.Dial(setup.Ctl)
	if errors.Is(err, control.ErrNoDaemon) {
		d.Daemon.Systemd = SystemdRunning() && os.Geteuid() == 0 && d.opts.Nginx.Prefix == "" && setup.Ctl == control.DefaultSocket()
		d.Daemon.StartArgs = setup.StartArgs()
		if d.RunAs == "root" {
			return errRootApp(d.App.AppDir)
		}
		return nil
	}
	if err != nil {
		return err
	}
	st, err := c.Status()
	if err != nil {
		return fmt.Errorf("ask the daemon: %w", err)
	}
	if err := checkDaemonServes(st, setup.Ctl, d.opts.Nginx.Conf, d.App.Socket); err != nil {
		return err
	}
	if d.RunAs == "root" && !st.AllowRootApps {
		return errRootApp(d.App.AppDir)
	}
	a, known, err := appOf(c, *d.App)
	if err != nil {
		return err
	}
	d.client = c
	d.Daemon.Running, d.Daemon.PID = true, st.PID
	d.Daemon.AppRunning = known && running(a)
	return nil
}

// daemonListens are the -s sockets a daemon deploy starts needs: every
// uwsgi_pass of pyvhost's sites (and this one) that is not a per-app
// socket the daemon makes itself.
func daemonListens(tree *nginxconf.Tree, spec nginxconf.SiteSpec, appSockets string) []string {
	var out []string
	add := func(pass string) {
		path, unix := strings.CutPrefix(pass, "unix:")
		if unix && filepath.Dir(path) == filepath.Clean(appSockets) {
			return
		}
		if unix {
			pass = path
		}
		for _, o := range out {
			if o == pass {
				return
			}
		}
		out = append(out, pass)
	}
	for _, b := range tree.Sites() {
		if b.Managed {
			for _, a := range b.Apps {
				add(a.UwsgiPass)
			}
		}
	}
	for _, a := range spec.Apps {
		add(a.Socket)
	}
	return out
}

// smokeAddr is where to reach nginx for a listen value: its address, or
// loopback for a wildcard one.
func smokeAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return net.JoinHostPort("127.0.0.1", listen)
	}
	switch host {
	case "", "*", "0.0.0.0":
		host = "127.0.0.1"
	case "[::]", "::":
		host = "::1"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}
