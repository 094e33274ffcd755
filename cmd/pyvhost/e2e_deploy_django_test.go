package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// djangoSettings is what a production Django project adds to the settings
// startproject wrote: everything secret or per-machine from the environment.
const djangoSettings = `
import os
import dj_database_url
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = os.environ.get("DJANGO_DEBUG", "False") == "True"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",")
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
STATIC_ROOT = BASE_DIR / "staticfiles"
INSTALLED_APPS += ["notes"]
`

const notesModel = `from django.db import models


class Note(models.Model):
    title = models.CharField(max_length=100)
`

const notesViews = `from django.http import HttpResponse
from .models import Note


def index(request):
    notes = Note.objects.order_by("id")
    return HttpResponse("notes: " + ", ".join(n.title + "|" + getattr(n, "body", "") for n in notes))
`

// TestDeployDjangoPostgres: a real Django project (startproject, settings
// from the environment, one model with its migrations, the admin) on a
// real PostgreSQL: deployed with --env-file, --release migrate and
// collectstatic, --static; a superuser made with pyvhost run from the
// config's environment; an admin login and an object saved through nginx
// with curl; a model change redeployed with its migration.
func TestDeployDjangoPostgres(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	pg := startPostgres(t)
	dbURL := pg.createDB(t, "notes")
	venv := daemontest.Venv(t) // Debian's django, psycopg2, dj-database-url
	proj := e.app("notesite", nil)
	dev := func(args ...string) { // what the developer runs before shipping
		t.Helper()
		if out, err := runAs(t, "/usr/bin/env", append([]string{"-C", filepath.Dir(proj), "DJANGO_SECRET_KEY=dev", "DATABASE_URL=sqlite:////tmp/unused.sqlite3", "/usr/bin/python3"}, args...)...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	dev("-m", "django", "startproject", "mysite", proj)
	dev("-c", "import os, sys; os.chdir(sys.argv[1]); from django.core.management import execute_from_command_line as x; x(['manage.py', 'startapp', 'notes'])", proj)
	appendTo(t, filepath.Join(proj, "mysite", "settings.py"), djangoSettings)
	writeAs(t, filepath.Join(proj, "notes", "models.py"), notesModel)
	writeAs(t, filepath.Join(proj, "notes", "views.py"), notesViews)
	writeAs(t, filepath.Join(proj, "notes", "admin.py"), "from django.contrib import admin\nfrom .models import Note\nadmin.site.register(Note)\n")
	writeAs(t, filepath.Join(proj, "mysite", "urls.py"), "from django.contrib import admin\nfrom django.urls import path\nfrom notes.views import index\n"+
		"urlpatterns = [path('admin/', admin.site.urls), path('', index)]\n")
	dev(filepath.Join(proj, "manage.py"), "makemigrations", "notes")

	envFile := filepath.Join(e.dir, "notes.env")
	write(t, envFile, "DJANGO_SECRET_KEY=\""+secretMarker+"-django\"\nDJANGO_DEBUG=False\nDJANGO_ALLOWED_HOSTS=notes.test\nDATABASE_URL="+dbURL+"\n")
	args := []string{"notes.test", "--app-dir", proj, "--module", "mysite.wsgi", "--venv", venv, "--listen", e.listen}
	out := e.deploy(append(args, "--env-file", envFile, "--static", "/static/="+filepath.Join(proj, "staticfiles"),
		"--release", "python manage.py migrate --noinput", "--release", "python manage.py collectstatic --noinput")...)
	for _, want := range []string{"Applying notes.0001_initial... OK", "static files copied"} {
		if !strings.Contains(out, want) {
			t.Errorf("the deploy's output lacks %q:\n%s", want, out)
		}
	}
	e.want("notes.test", "/", 200, "notes: ")
	e.want("notes.test", "/static/admin/css/base.css", 200, "DJANGO Admin styles")

	// A superuser from the config's environment, with pyvhost run.
	if code, out, errOut := e.run("config", "notes.test", "set", "DJANGO_SUPERUSER_USERNAME=admin", "DJANGO_SUPERUSER_PASSWORD=pw-"+secretMarker, "DJANGO_SUPERUSER_EMAIL=admin@notes.test"); code != 0 {
		t.Fatalf("config set: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := e.run("run", "notes.test", "--", "python", "manage.py", "createsuperuser", "--noinput"); code != 0 {
		t.Fatalf("createsuperuser: %d %s %s", code, out, errOut)
	}

	// Log in to the admin and save a note, through nginx, with curl.
	c := &curlSession{t: t, base: "http://" + e.listen, host: "notes.test", jar: filepath.Join(t.TempDir(), "jar")}
	token := c.csrf("/admin/login/")
	if code := c.post("/admin/login/?next=/admin/", "csrfmiddlewaretoken="+token+"&username=admin&password=pw-"+secretMarker+"&next=/admin/"); code != "302 http://"+e.listen+"/admin/" && code != "302 /admin/" {
		t.Fatalf("admin login: %s, want a 302 to /admin/", code)
	}
	token = c.csrf("/admin/notes/note/add/")
	if code := c.post("/admin/notes/note/add/", "csrfmiddlewaretoken="+token+"&title=first+note&_save=Save"); !strings.HasPrefix(code, "302 ") {
		t.Fatalf("saving a note in the admin: %s, want a 302", code)
	}
	e.want("notes.test", "/", 200, "notes: first note|")

	// A model change, shipped with its migration: the stored release
	// commands migrate it on the redeploy.
	appendTo(t, filepath.Join(proj, "notes", "models.py"), "    body = models.TextField(default=\"empty body\")\n")
	dev(filepath.Join(proj, "manage.py"), "makemigrations", "notes")
	if out := e.deploy(args...); !strings.Contains(out, "Applying notes.0002") {
		t.Errorf("the redeploy did not migrate:\n%s", out)
	}
	e.want("notes.test", "/", 200, "notes: first note|empty body")
	e.noSecretAnywhere(secretMarker)
}

// curlSession is curl with a cookie jar, against nginx with a Host header.
type curlSession struct {
	t               *testing.T
	base, host, jar string
	extra           []string // more curl flags (TLS trust, --resolve, a Referer)
}

func (c *curlSession) curl(args ...string) string {
	c.t.Helper()
	all := append(append([]string{"-sS", "--max-time", "20", "-H", "Host: " + c.host, "-b", c.jar, "-c", c.jar}, c.extra...), args...)
	out, err := exec.Command("curl", all...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

var csrfInput = regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`)

// csrf fetches a form page and returns its CSRF token.
func (c *curlSession) csrf(path string) string {
	c.t.Helper()
	page := c.curl(c.base + path)
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("no CSRF token on %s:\n%s", path, trim(page))
	}
	return m[1]
}

// post posts a form and returns "STATUS REDIRECT".
func (c *curlSession) post(path, form string) string {
	c.t.Helper()
	return strings.TrimSpace(c.curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-d", form, c.base+path))
}

// appendTo adds src to a file the app's user owns.
func appendTo(t *testing.T, path, src string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeAs(t, path, string(b)+src)
}

// writeAs writes a file owned by the user test apps run as.
func writeAs(t *testing.T, path, src string) {
	t.Helper()
	write(t, path, src)
	uid, gid := daemontest.AppOwner()
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// TestDeployDjangoHTTPSPort: Django's admin login over HTTPS on a port
// other than 443 passes Django's CSRF check (3.2 checks the Referer against
// the request's host: the site passes HTTP_HOST with the port), with a
// brought certificate and a sqlite database migrated by a release command.
func TestDeployDjangoHTTPSPort(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	proj := e.app("tlsdjango", nil)
	if out, err := runAs(t, "/usr/bin/python3", "-m", "django", "startproject", "mysite", proj); err != nil {
		t.Fatalf("startproject: %v\n%s", err, out)
	}
	appendTo(t, filepath.Join(proj, "mysite", "settings.py"), `
import os
import dj_database_url
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["tlsdjango.test"]
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
`)
	writeAs(t, filepath.Join(proj, "mysite", "urls.py"), "from django.contrib import admin\nfrom django.http import HttpResponse\nfrom django.urls import path\n"+
		"urlpatterns = [path('admin/', admin.site.urls), path('', lambda r: HttpResponse('ok ' + r.get_host()))]\n")
	port := strconv.Itoa(nginxtest.FreePort(t))
	cert, key := filepath.Join(e.dir, "tls", "c.pem"), filepath.Join(e.dir, "tls", "k.pem")
	nginxtest.WriteCert(t, cert, key, 24*time.Hour, "tlsdjango.test")
	e.deploy("tlsdjango.test", "--app-dir", proj, "--module", "mysite.wsgi", "--venv", venv, "--listen", e.listen,
		"--https-listen", "127.0.0.1:"+port, "--tls", "cert="+cert+",key="+key, "--smoke-path", "/admin/login/",
		"--env", "DJANGO_SECRET_KEY=x", "--env", "DATABASE_URL=sqlite:///"+filepath.Join(proj, "db.sqlite3"),
		"--env", "DJANGO_SUPERUSER_PASSWORD=pw", "--release", "python manage.py migrate --noinput")
	if code, out, errOut := e.run("run", "tlsdjango.test", "--", "python", "manage.py", "createsuperuser", "--noinput",
		"--username", "admin", "--email", "admin@tlsdjango.test"); code != 0 {
		t.Fatalf("createsuperuser: %d %s %s", code, out, errOut)
	}
	base := "https://tlsdjango.test:" + port
	c := &curlSession{t: t, base: base, host: "tlsdjango.test:" + port, jar: filepath.Join(t.TempDir(), "jar"),
		extra: []string{"--cacert", cert, "--resolve", "tlsdjango.test:" + port + ":127.0.0.1", "-e", base + "/admin/login/"}}
	token := c.csrf("/admin/login/")
	if got := c.post("/admin/login/?next=/admin/", "csrfmiddlewaretoken="+token+"&username=admin&password=pw&next=/admin/"); got != "302 "+base+"/admin/" && got != "302 /admin/" {
		t.Fatalf("admin login over https on port %s: %s, want a 302 to /admin/ (a 403 is Django's CSRF check failing on the host)", port, got)
	}
}

// TestDeployDjangoASGI: a Django project served through its asgi.py (the
// entry point Channels-style apps use): Django's ASGIHandler is async, so
// pyvhost serves it as ASGI; an async view answers; Django raises on the
// lifespan scope, so it runs without lifespan.
func TestDeployDjangoASGI(t *testing.T) {
	skipShort(t)
	e := newDeployEnv(t, true)
	venv := daemontest.Venv(t)
	proj := e.app("asgidjango", nil)
	if out, err := runAs(t, "/usr/bin/python3", "-m", "django", "startproject", "mysite", proj); err != nil {
		t.Fatalf("startproject: %v\n%s", err, out)
	}
	appendTo(t, filepath.Join(proj, "mysite", "settings.py"), `
import os
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["asgidjango.test"]
`)
	writeAs(t, filepath.Join(proj, "mysite", "urls.py"), "import asyncio\nfrom django.http import HttpResponse\nfrom django.urls import path\n\n"+
		"async def hello(request):\n    await asyncio.sleep(0)\n    return HttpResponse('async django ' + request.scheme + ' ' + request.path)\n\n"+
		"urlpatterns = [path('', hello), path('x/', hello)]\n")
	e.deploy("asgidjango.test", "--app-dir", proj, "--module", "mysite.asgi:application", "--venv", venv, "--listen", e.listen,
		"--env", "DJANGO_SECRET_KEY=x")
	e.want("asgidjango.test", "/x/", 200, "async django http /x/")
	if _, out, _ := e.run("ctl", "apps"); !strings.Contains(out, "ready (asgi)") {
		t.Errorf("Django's ASGI handler is not served as ASGI:\n%s", out)
	}
	if !strings.Contains(e.daemonLog(), "the app does not support ASGI lifespan") {
		t.Errorf("the daemon's log does not say Django runs without lifespan:\n%s", e.daemonLog())
	}
}
