package deployer

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
	"github.com/pyvhost/pyvhost/templates"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
)

// TestPlanGolden: the plan (what --dry-run prints) is a pure function of
// what Prepare found; one golden file per situation.
func TestPlanGolden(t *testing.T) {
	app := nginxconf.AppSpec{Mount: "/", Socket: "unix:/run/pyvhost/apps/app1.example.com.sock", Venv: "/var/www/myenv", AppDir: "/var/www/myappdir1", Module: "myapp1"}
	blog := nginxconf.AppSpec{Mount: "/blog", Socket: "127.0.0.1:9090", Venv: "/srv/blog/.venv", AppDir: "/srv/blog", Module: "blog.wsgi"}
	newSite := &nginxconf.SiteChanges{
		Spec:     nginxconf.SiteSpec{Domain: "app1.example.com", Listen: "80", Apps: []nginxconf.AppSpec{app}},
		SitePath: "/etc/nginx/sites-available/app1.example.com.conf",
		Changes: []nginxconf.Change{
			{Kind: nginxconf.Create, Path: "/etc/nginx/sites-available/app1.example.com.conf"},
			{Kind: nginxconf.Symlink, Path: "/etc/nginx/sites-enabled/app1.example.com.conf", Target: "/etc/nginx/sites-available/app1.example.com.conf"},
		},
	}
	sameSite := &nginxconf.SiteChanges{Spec: newSite.Spec, SitePath: newSite.SitePath}
	addMount := &nginxconf.SiteChanges{
		Spec:     nginxconf.SiteSpec{Domain: "example.com", Listen: "80", Apps: []nginxconf.AppSpec{app, blog}},
		SitePath: "/etc/nginx/conf.d/example.com.conf",
		Changes:  []nginxconf.Change{{Kind: nginxconf.Modify, Path: "/etc/nginx/conf.d/example.com.conf"}},
	}
	staticOnly := &nginxconf.SiteChanges{
		Spec:     nginxconf.SiteSpec{Domain: "example.com", Listen: "80", Statics: []nginxconf.StaticSpec{{URL: "/media", Dir: "/srv/media"}}},
		SitePath: "/etc/nginx/conf.d/example.com.conf",
		Changes:  []nginxconf.Change{{Kind: nginxconf.Modify, Path: "/etc/nginx/conf.d/example.com.conf"}},
	}
	tlsSpec := newSite.Spec
	tlsSpec.TLS = &nginxconf.TLSSpec{Listen: "443", Cert: "/var/lib/pyvhost/certs/app1.example.com/fullchain.pem",
		Key: "/var/lib/pyvhost/certs/app1.example.com/privkey.pem", Challenge: "127.0.0.1:8402"}
	tlsNew := &nginxconf.SiteChanges{Spec: tlsSpec, SitePath: newSite.SitePath, Changes: newSite.Changes}
	tlsSame := &nginxconf.SiteChanges{Spec: tlsSpec, SitePath: newSite.SitePath}
	acmeOpts := ACMEOptions{Email: "admin@example.com", Challenge: "127.0.0.1:8402", HTTPPort: 80, Storage: "/var/lib/pyvhost/acme"}
	names := []string{"app1.example.com", "www.app1.example.com"}
	four := 4
	start := DaemonSetup{Exe: "/usr/bin/pyvhost", Ctl: "/run/pyvhost/ctl.sock", StateDir: "/var/lib/pyvhost", NginxConf: "/etc/nginx/nginx.conf", Processes: 4}
	tests := []struct {
		name  string
		facts Facts
	}{
		{"first-site-from-nothing", Facts{Site: newSite, App: &newSite.Spec.Apps[0], Python: "python3", SysSite: true,
			AppDirUser: "www-data", Requirements: "/var/www/myappdir1/requirements.txt", RunAs: "www-data",
			Daemon: DaemonFacts{StartArgs: start.StartArgs()}, SmokeAddr: "127.0.0.1:80", SmokePath: "/"}},
		{"second-site-big-config", Facts{Site: newSite, App: &newSite.Spec.Apps[0], AppDirExists: true, VenvExists: true, RunAs: "www-data",
			Daemon: DaemonFacts{Running: true, PID: 4242}, SmokeAddr: "127.0.0.1:80", SmokePath: "/", NginxTestTook: 1234 * time.Millisecond}},
		{"second-site-big-config-test-first", Facts{Site: newSite, App: &newSite.Spec.Apps[0], AppDirExists: true, VenvExists: true, RunAs: "www-data",
			Daemon: DaemonFacts{Running: true, PID: 4242}, SmokeAddr: "127.0.0.1:80", SmokePath: "/", NginxTestTook: 1234 * time.Millisecond, NginxTestMode: "before"}},
		{"first-site-systemd", Facts{Site: newSite, App: &newSite.Spec.Apps[0], Python: "python3", AppDirExists: true, VenvExists: true,
			RunAs: "www-data", Daemon: DaemonFacts{Systemd: true}, SmokeAddr: "127.0.0.1:80", SmokePath: "/"}},
		{"second-site-daemon-running", Facts{Site: newSite, App: &newSite.Spec.Apps[0], AppDirExists: true, VenvExists: true, RunAs: "www-data",
			Daemon: DaemonFacts{Running: true, PID: 4242}, SmokeAddr: "127.0.0.1:80", SmokePath: "/"}},
		{"redeploy-changed-code", Facts{Site: sameSite, App: &sameSite.Spec.Apps[0], AppDirExists: true, VenvExists: true, RunAs: "www-data",
			Daemon: DaemonFacts{Running: true, PID: 4242, AppRunning: true}, SmokeAddr: "127.0.0.1:80", SmokePath: "/", ConfigSame: true}},
		{"redeploy-nginx-down", Facts{Site: sameSite, App: &sameSite.Spec.Apps[0], AppDirExists: true, VenvExists: true, RunAs: "www-data",
			Daemon: DaemonFacts{Running: true, PID: 4242, AppRunning: true}, SmokeAddr: "127.0.0.1:80", SmokePath: "/", ConfigSame: true, NginxDown: true}},
		{"add-mount-give-dir", Facts{Site: addMount, App: &addMount.Spec.Apps[1], AppDirExists: true, AppDirUser: "blog", VenvExists: true, RunAs: "blog",
			Daemon: DaemonFacts{Running: true, PID: 4242}, SmokeAddr: "10.0.0.1:8080", SmokePath: "/blog/"}},
		{"static-only", Facts{Site: staticOnly, SmokeAddr: "127.0.0.1:80", SmokePath: "/media/"}},
		{"first-site-release-commands", Facts{Site: newSite, App: &newSite.Spec.Apps[0], Python: "python3", AppDirExists: true, VenvExists: true,
			RunAs: "www-data", Daemon: DaemonFacts{Running: true, PID: 4242}, SmokeAddr: "127.0.0.1:80", SmokePath: "/",
			ReleaseCommands: []string{"python manage.py migrate --noinput", "python manage.py collectstatic --noinput"},
			Settings:        &SettingsChange{Path: "/var/lib/pyvhost/apps/0123.json", New: appconf.Settings{Release: []string{"python manage.py migrate --noinput", "python manage.py collectstatic --noinput"}}}}},
		{"redeploy-new-settings", Facts{Site: sameSite, App: &sameSite.Spec.Apps[0], AppDirExists: true, VenvExists: true, RunAs: "www-data",
			Daemon: DaemonFacts{Running: true, PID: 4242, AppRunning: true}, SmokeAddr: "127.0.0.1:80", SmokePath: "/", ConfigSame: true,
			Settings: &SettingsChange{Path: "/var/lib/pyvhost/apps/0123.json",
				Old: appconf.Settings{Env: map[string]string{"DEBUG": "True", "KEEP": "1"}},
				New: appconf.Settings{Env: map[string]string{"DEBUG": "False", "KEEP": "1", "SECRET_KEY": "never-shown"}, Pool: appconf.Pool{Processes: &four}}}}},
		{"tls-auto-new-site", Facts{Site: tlsNew, App: &tlsNew.Spec.Apps[0], AppDirExists: true, VenvExists: true, RunAs: "www-data",
			Daemon: DaemonFacts{Running: true, PID: 4242}, SmokeAddr: "127.0.0.1:443", SmokePath: "/",
			ACME: &ACMEPlan{Options: acmeOpts, Names: names, First: newSite}}},
		{"tls-auto-another-ca", Facts{Site: tlsSame, App: &tlsSame.Spec.Apps[0], AppDirExists: true, VenvExists: true, RunAs: "www-data",
			Daemon: DaemonFacts{Running: true, PID: 4242, AppRunning: true}, SmokeAddr: "127.0.0.1:443", SmokePath: "/", ConfigSame: true,
			ACME: &ACMEPlan{Options: acmeOpts, Names: names, Replaces: LetsEncryptStaging}}},
		{"tls-auto-new-contact", Facts{Site: tlsSame, App: &tlsSame.Spec.Apps[0], AppDirExists: true, VenvExists: true, RunAs: "www-data",
			Daemon: DaemonFacts{Running: true, PID: 4242, AppRunning: true}, SmokeAddr: "127.0.0.1:443", SmokePath: "/", ConfigSame: true,
			ACMEMeta: &ACMEMetaChange{Dir: "/var/lib/pyvhost/certs/app1.example.com", Describe: metaChanges(
				ACMEMeta{Names: names, Options: ACMEOptions{Email: "old@example.com", Challenge: "127.0.0.1:8402", HTTPPort: 80}},
				ACMEMeta{Names: names, Options: acmeOpts})}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nginxtest.CheckGolden(t, filepath.Join("../testdata/golden/plan", tc.name+".txt"), []byte(FormatPlan(Plan(tc.facts))))
		})
	}
}

// TestSystemdUnitGolden: the unit deploy installs where systemd runs.
func TestSystemdUnitGolden(t *testing.T) {
	setup := DaemonSetup{Exe: "/usr/local/bin/pyvhost", Ctl: "/run/pyvhost/ctl.sock", StateDir: "/var/lib/pyvhost",
		NginxConf: "/etc/nginx/nginx.conf", Listen: []string{"127.0.0.1:9090", "/run/my app.sock"}, Processes: 4}
	unit, err := templates.SystemdUnit(setup.Exe, setup.args())
	if err != nil {
		t.Fatal(err)
	}
	nginxtest.CheckGolden(t, "../testdata/golden/pyvhost.service", unit)
}
