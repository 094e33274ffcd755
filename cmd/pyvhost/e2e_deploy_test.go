package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real nginx, daemon, venvs and Python (make test runs it)")
	}
}

// TestDeploySeedScenario is the seed's manual procedure done by deploy:
// two sites sharing one venv on the classic shared port, the first deploy
// creating the venv and starting the daemon; then a third site on its own
// unix socket with no daemon restart; a code change redeployed with zero
// downtime; sites shows them live.
func TestDeploySeedScenario(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := filepath.Join(e.dir, "myenv")
	shared := "127.0.0.1:" + strconv.Itoa(nginxtest.FreePort(t))
	app1 := e.app("myappdir1", map[string]string{"myapp1.py": helloPy})
	app2 := e.app("myappdir2", map[string]string{"myapp2.py": helloPy})

	out := e.deploy("app1.example.com", "--app-dir", app1, "--module", "myapp1", "--venv", venv,
		"--python", "/usr/bin/python3", "--socket", shared, "--listen", e.listen)
	live := "deployed: http://" + strings.Replace(e.listen, "127.0.0.1", "app1.example.com", 1) + "/ is live"
	for _, step := range []string{"create the virtualenv " + venv, "start the daemon", live} {
		if !strings.Contains(out, step) {
			t.Errorf("first deploy's output lacks %q:\n%s", step, out)
		}
	}
	e.want("app1.example.com", "/", 200, "hello from app1.example.com")
	pid := e.daemonPID()

	out = e.deploy("app2.example.com", "--app-dir", app2, "--module", "myapp2", "--venv", venv, "--socket", shared, "--listen", e.listen)
	if strings.Contains(out, "create the virtualenv") || !strings.Contains(out, fmt.Sprintf("the daemon (pid %d) re-reads the nginx config", pid)) {
		t.Errorf("second deploy should reuse the venv and the daemon:\n%s", out)
	}
	e.want("app2.example.com", "/", 200, "hello from app2.example.com")

	app3 := e.app("app3", map[string]string{"app3.py": helloPy})
	e.deploy("app3.example.com", "--app-dir", app3, "--module", "app3", "--venv", daemontest.Venv(t), "--listen", e.listen)
	e.want("app3.example.com", "/", 200, "hello from app3.example.com")
	e.want("app1.example.com", "/", 200, "hello from app1.example.com")
	c, err := control.Dial(e.ctl)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(); err != nil || st.PID != pid || e.daemonPID() != pid {
		t.Fatalf("the daemon restarted: pid %d, then %d (%v)", pid, st.PID, err)
	}
	if _, err := os.Stat(filepath.Join(e.socks, "app3.example.com.sock")); err != nil {
		t.Fatalf("the third site's own socket: %v", err)
	}

	// The same site redeployed with another venv: the same socket path now
	// belongs to another app (the daemon swaps it; the old one retires).
	e.deploy("app3.example.com", "--app-dir", app3, "--module", "app3", "--venv", venv)
	e.want("app3.example.com", "/", 200, "hello from app3.example.com")
	apps, err := c.Apps()
	if err != nil {
		t.Fatal(err)
	}
	served := false
	for _, a := range apps.Apps {
		served = served || (a.Chdir == app3 && a.Pyhome == venv && a.Requests > 0)
	}
	if !served {
		t.Fatalf("app3 under its new venv served nothing: %+v", apps.Apps)
	}

	code, out, errOut := e.run("sites", "--json")
	var sites []nginxconf.ServerBlock
	if code != 0 || json.Unmarshal([]byte(out), &sites) != nil || len(sites) != 3 {
		t.Fatalf("sites --json: %d %s %s", code, out, errOut)
	}
	for _, s := range sites {
		if !s.Managed || len(s.Apps) != 1 || s.Apps[0].State != "ready" {
			t.Errorf("site %v: managed %v, apps %+v; want one ready app", s.ServerNames, s.Managed, s.Apps)
		}
	}

	// Changed code, same command: the app reloads with zero downtime, and
	// no request fails meanwhile.
	write(t, filepath.Join(app1, "myapp1.py"), strings.Replace(helloPy, "hello from", "v2 hello from", 1))
	var failed, done atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if code, _ := e.get("app1.example.com", "/"); code != 200 {
				failed.Add(1)
			}
			done.Add(1)
		}
	}()
	start := time.Now()
	out = e.deploy("app1.example.com", "--app-dir", app1, "--module", "myapp1", "--venv", venv, "--socket", shared)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if !strings.Contains(out, "nginx config: no changes") || !strings.Contains(out, "zero downtime") {
		t.Errorf("a code-only redeploy should change no config and reload the app:\n%s", out)
	}
	e.want("app1.example.com", "/", 200, "v2 hello from app1.example.com")
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the redeploy", failed.Load(), done.Load())
	}
	t.Logf("redeploy of a changed app with its venv in place: %v wall, %d requests served meanwhile", took, done.Load())

	// A change of the same size with the same mtime (a checkout and a
	// deploy within one second): Python would trust its stale .pyc.
	src := filepath.Join(app1, "myapp1.py")
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	write(t, src, strings.Replace(helloPy, "hello from", "V2 hello from", 1))
	if err := os.Chtimes(src, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	e.deploy("app1.example.com", "--app-dir", app1, "--module", "myapp1", "--venv", venv, "--socket", shared)
	e.want("app1.example.com", "/", 200, "V2 hello from app1.example.com")

	// The same app under a second domain, on a socket of its own: one
	// pool serves both sockets (it was a 15 s smoke-test timeout).
	e.deploy("www.app3.example.com", "--app-dir", app3, "--module", "app3", "--venv", venv, "--listen", e.listen)
	e.want("www.app3.example.com", "/", 200, "hello from www.app3.example.com")
	e.want("app3.example.com", "/", 200, "hello from app3.example.com")
}

// TestDeployTwoAppsDryRunRollbackUndeploy: one server with apps at / and
// /blog; --dry-run changes no byte; rollback restores the previous
// release exactly; undeploy of a mount, then of the site.
func TestDeployTwoAppsDryRunRollbackUndeploy(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := filepath.Join(e.dir, "venv") // shared with keep.test, so --purge keeps it
	site := e.app("site", map[string]string{"siteapp.py": helloPy})
	keep := e.app("keep", map[string]string{"keep.py": helloPy})
	blog := daemontest.App(t, filepath.Join(e.dir, "apps"), "envecho")
	e.deploy("keep.test", "--app-dir", keep, "--module", "keep", "--venv", venv, "--python", "/usr/bin/python3", "--listen", e.listen)
	e.deploy("example.com", "--app-dir", site, "--module", "siteapp", "--venv", venv, "--listen", e.listen, "--alias", "www.example.com", "--env", "SITE_SECRET=x")
	siteSettings, _ := filepath.Glob(filepath.Join(e.state, "apps", "*.json"))
	sitePath := filepath.Join(e.dir, "sites-available", "example.com.conf")
	release1, err := os.ReadFile(sitePath)
	if err != nil {
		t.Fatal(err)
	}

	before := e.snapshot(true)
	code, out, errOut := e.run("deploy", "example.com", "--app-dir", blog, "--module", "envecho", "--venv", venv, "--mount", "/blog", "--dry-run")
	if code != 0 || !strings.Contains(out, "+    location /blog/ {") || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("--dry-run: %d\n%s\n%s", code, out, errOut)
	}
	e.unchanged(before, true, "--dry-run")

	e.deploy("example.com", "--app-dir", blog, "--module", "envecho", "--venv", venv, "--mount", "/blog")
	e.want("example.com", "/", 200, "hello from example.com")
	e.want("www.example.com", "/", 200, "hello from www.example.com")
	e.want("example.com", "/blog/post?x=1", 200, `"SCRIPT_NAME": "/blog"`)
	e.want("example.com", "/blog/post?x=1", 200, `"PATH_INFO": "/post"`)
	if code, _ := e.get("example.com", "/blog"); code != 301 {
		t.Fatalf("/blog: %d, want the 301 to /blog/", code)
	}

	code, out, errOut = e.run("rollback", "example.com", "--yes")
	if code != 0 || !strings.Contains(out, "back to release 1") {
		t.Fatalf("rollback: %d\n%s\n%s", code, out, errOut)
	}
	if now, _ := os.ReadFile(sitePath); string(now) != string(release1) {
		t.Fatalf("rollback did not restore release 1 exactly:\n%s\nwant:\n%s", now, release1)
	}
	e.want("example.com", "/blog/post", 200, "hello from example.com") // / catches it again
	code, out, _ = e.run("rollback", "example.com", "--list")
	if code != 0 || !strings.Contains(out, "/→siteapp /blog→envecho") {
		t.Fatalf("rollback --list: %d\n%s", code, out)
	}
	code, _, errOut = e.run("rollback", "example.com", "--to", "99", "--yes")
	if code != 2 || !strings.Contains(errOut, "has no release 99") {
		t.Fatalf("rollback --to 99: %d %s", code, errOut)
	}
	if code, _, errOut = e.run("rollback", "example.com", "--to", "2", "--yes"); code != 0 {
		t.Fatalf("rollback --to 2: %s", errOut)
	}
	e.want("example.com", "/blog/post", 200, `"PATH_INFO": "/post"`)

	code, out, errOut = e.run("undeploy", "example.com", "--mount", "/blog", "--yes")
	if code != 0 || !strings.Contains(out, "stop envecho") {
		t.Fatalf("undeploy --mount: %d\n%s\n%s", code, out, errOut)
	}
	e.want("example.com", "/", 200, "hello from example.com")
	if now, _ := os.ReadFile(sitePath); string(now) != string(release1) {
		t.Fatalf("undeploy --mount /blog should leave the site as before /blog:\n%s", now)
	}
	code, _, errOut = e.run("undeploy", "example.com", "--mount", "/nope", "--yes")
	if code != 2 || !strings.Contains(errOut, "no app at --mount /nope") {
		t.Fatalf("undeploy of an absent mount: %d %s", code, errOut)
	}
	// A static directory added to the site on its own: no app steps.
	files := filepath.Join(e.dir, "files")
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(files, "f.txt"), "a static file\n")
	out = e.deploy("example.com", "--static", "/files/="+files)
	if strings.Contains(out, "daemon") || !strings.Contains(out, "+    location /files/ {") {
		t.Fatalf("static-only deploy:\n%s", out)
	}
	e.want("example.com", "/files/f.txt", 200, "a static file")
	code, out, errOut = e.run("undeploy", "example.com", "--mount", "/files", "--yes")
	if code != 2 {
		t.Fatalf("undeploy --mount of a static URL: %d %s %s", code, out, errOut)
	}
	if code, _, errOut = e.run("rollback", "example.com", "--yes"); code != 0 {
		t.Fatalf("rollback of the static dir: %s", errOut)
	}
	e.want("example.com", "/files/f.txt", 200, "hello from example.com") // / catches it again

	// Undeploy keeps the site's releases: rollback brings it back.
	if code, _, errOut = e.run("undeploy", "example.com", "--yes"); code != 0 {
		t.Fatalf("undeploy: %s", errOut)
	}
	e.want("example.com", "/", 200, "other site") // the default server now
	if code, _, errOut = e.run("undeploy", "example.com", "--yes"); code != 1 || !strings.Contains(errOut, "example.com is not deployed") {
		t.Fatalf("undeploy of a site not deployed: %d %s", code, errOut)
	}
	if code, _, errOut = e.run("rollback", "example.com", "--yes"); code != 0 {
		t.Fatalf("rollback after undeploy: %s", errOut)
	}
	e.want("example.com", "/", 200, "hello from example.com")

	// A flag alone changes an existing site: here one more name.
	out = e.deploy("example.com", "--alias", "blog.example.com")
	if !strings.Contains(out, "+    server_name example.com blog.example.com www.example.com;") ||
		!strings.Contains(out, "deployed: http://"+strings.Replace(e.listen, "127.0.0.1", "example.com", 1)+"/ is live") {
		t.Fatalf("alias-only deploy:\n%s", out)
	}
	e.want("blog.example.com", "/", 200, "hello from blog.example.com")
	if code, _, errOut = e.run("deploy", "new.example.com", "--alias", "x.example.com", "--yes"); code != 2 || !strings.Contains(errOut, "has nothing to serve") {
		t.Fatalf("a new site with nothing to serve: %d %s", code, errOut)
	}

	code, out, errOut = e.run("undeploy", "example.com", "--purge", "--yes")
	if code != 0 || !strings.Contains(out, "kept "+venv+": another deployed site uses it") {
		t.Fatalf("undeploy --purge: %d\n%s\n%s", code, out, errOut)
	}
	e.want("keep.test", "/", 200, "hello from keep.test")
	e.want("example.com", "/", 200, "other site")
	for _, p := range []string{sitePath, filepath.Join(e.dir, "sites-enabled", "example.com.conf"), site} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived undeploy --purge", p)
		}
	}
	if _, err := os.Stat(venv); err != nil {
		t.Errorf("--purge removed the venv %s, which keep.test uses", venv)
	}
	if len(siteSettings) != 1 {
		t.Fatalf("settings files after --env: %v", siteSettings)
	} else if _, err := os.Stat(siteSettings[0]); !os.IsNotExist(err) {
		t.Errorf("the purged app's environment %s survived undeploy --purge: %v", siteSettings[0], err)
	}
	if _, err := os.Stat(blog); err != nil {
		t.Errorf("the /blog app dir was removed though its undeploy had no --purge: %v", err)
	}
	// With its code purged, a rollback cannot go live: it fails at the
	// smoke test and leaves the config as it was.
	before = e.snapshot(false)
	code, _, errOut = e.run("rollback", "example.com", "--yes")
	if code != 1 || !strings.Contains(errOut, `step "smoke" failed`) || !strings.Contains(errOut, "everything was put back") {
		t.Fatalf("rollback to a purged app: %d %s", code, errOut)
	}
	e.unchanged(before, false, "a failed rollback")
	e.want("example.com", "/", 200, "other site")
}

// TestDeployDjangoWithStatic: a Django project from `django-admin
// startproject` (Debian's python3-django through --system-site-packages),
// its admin's static files served by nginx via --static.
func TestDeployDjangoWithStatic(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := filepath.Join(e.dir, "djenv")
	proj := e.app("mysite", nil)
	if out, err := runAs(t, "/usr/bin/python3", "-m", "django", "startproject", "mysite", proj); err != nil {
		t.Fatalf("django-admin startproject: %v\n%s", err, out)
	}
	settings := filepath.Join(proj, "mysite", "settings.py")
	b, err := os.ReadFile(settings)
	if err != nil {
		t.Fatal(err)
	}
	write(t, settings, strings.Replace(string(b), "ALLOWED_HOSTS = []", "ALLOWED_HOSTS = ['django.test']", 1))
	admin, err := runAs(t, "/usr/bin/python3", "-c", "import django.contrib.admin, os; print(os.path.dirname(django.contrib.admin.__file__))")
	if err != nil {
		t.Fatal(err)
	}
	static := filepath.Join(strings.TrimSpace(admin), "static", "admin")
	// The pip path runs for real (no index here: Django is Debian's).
	write(t, filepath.Join(proj, "requirements.txt"), "--no-index\n# django: Debian's python3-django, seen through --system-site-packages\n")
	out := e.deploy("django.test", "--app-dir", proj, "--module", "mysite.wsgi", "--venv", venv, "--python", "/usr/bin/python3",
		"--system-site-packages", "--static", "/static/admin/="+static, "--listen", e.listen)
	if !strings.Contains(out, "pip install -r "+filepath.Join(proj, "requirements.txt")) {
		t.Errorf("the requirements were not installed:\n%s", out)
	}
	if log, err := os.ReadFile(filepath.Join(e.state, "logs", "django.test-pip.log")); err != nil {
		t.Errorf("no pip log: %v (%s)", err, log)
	}
	e.want("django.test", "/admin/login/", 200, "Django")
	// Unchanged requirements are not installed again.
	if out := e.deploy("django.test", "--app-dir", proj, "--module", "mysite.wsgi", "--venv", venv); strings.Contains(out, "pip install") {
		t.Errorf("unchanged requirements installed again:\n%s", out)
	}
	e.want("django.test", "/static/admin/css/base.css", 200, "DJANGO Admin styles")
	code, _ := e.get("django.test", "/admin/")
	if code != 302 {
		t.Fatalf("/admin/ without a session: %d, want the 302 to the login page", code)
	}
}

// runAs runs a command as the user test apps run as (startproject must
// make files that user owns).
func runAs(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody", "--", name}, args...)
		name = "runuser"
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
