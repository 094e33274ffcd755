package deployer

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
)

// StepID names what a step does; Apply dispatches on it.
type StepID string

const (
	StepAppDir       StepID = "app-dir"
	StepStaticDir    StepID = "static-dir"
	StepVenv         StepID = "venv"
	StepRequirements StepID = "requirements"
	StepPreflight    StepID = "preflight"
	StepReleaseCmd   StepID = "release-command"
	StepWrite        StepID = "write"
	StepNginxTest    StepID = "nginx-test"
	StepCert         StepID = "certificate"
	StepACMEWrite    StepID = "acme-write"
	StepACMEReload   StepID = "acme-reload"
	StepACMECheck    StepID = "acme-check"
	StepACMEOrder    StepID = "acme-order"
	StepACMEMeta     StepID = "acme-meta"
	StepSettings     StepID = "settings"
	StepDaemon       StepID = "daemon"
	StepLoad         StepID = "load"
	StepNginxReload  StepID = "nginx-reload"
	StepNginxVerdict StepID = "nginx-verdict" // nginx -t's, when it ran beside the reload
	StepSmoke        StepID = "smoke"
	StepRelease      StepID = "release"
	StepPurge        StepID = "purge"
)

// Step is one line of a deploy's plan.
type Step struct {
	ID    StepID
	Title string
	Arg   string // what the step acts on, when its ID is not enough (a release command)
}

// Facts are what Prepare found before anything changed. Plan turns them
// into steps without looking at the machine, so the plan (and --dry-run)
// is a pure function of them and golden-tested.
type Facts struct {
	Site    *nginxconf.SiteChanges // the merged spec and the files to write
	App     *nginxconf.AppSpec     // the app this deploy names; nil for a static-only change
	Python  string                 // interpreter that creates the venv
	SysSite bool                   // --system-site-packages

	AppDirExists bool
	StaticDirs   []string // --static dirs in the app dir to create for the app's user
	AppDirUser   string   // owner to create the app dir as, or to chown it to; "" leaves it
	VenvExists   bool
	Requirements string // requirements file to install; "" when none or unchanged since the last install
	RunAs        string // user the daemon will run the app as (preflight imports as it); "" = us

	Daemon     DaemonFacts
	SmokeAddr  string   // host:port nginx listens on for the site
	SmokePath  string   // the site's (or the mount's) root; "" = no smoke test (--smoke-path none)
	SmokeExtra []string // --smoke-path: more paths, each must end in a 2xx
	ConfigSame bool     // the nginx files already say this: no write, no reload
	// Settings is the app's environment and pool settings to store; nil
	// when they do not change.
	Settings *SettingsChange
	// ReleaseCommands run in the app's context before anything goes live.
	ReleaseCommands []string
	// Cert is a brought certificate to install; nil when none or the same
	// files are installed already.
	Cert *CertInstall
	// ACME is a certificate to order first (--tls auto); nil when none is
	// needed (the installed one is valid and not due for renewal).
	ACME *ACMEPlan
	// ACMEMeta is how the installed ACME certificate is renewed, to record
	// when this deploy changes it (contact, CA root, names…) without an
	// order; nil when nothing changes.
	ACMEMeta  *ACMEMetaChange
	NginxDown bool // nginx is not running: it is started even when the config is the same
	// NginxTestTook is how long nginx -t of the config took when it last
	// ran: a slow one runs beside the reload (beside.go), unless
	// NginxTestMode (--nginx-test) says before; beside runs it so anyway.
	NginxTestTook time.Duration
	NginxTestMode string // "before", "beside", "auto" or ""
}

// DaemonFacts is what the running daemon (if any) said.
type DaemonFacts struct {
	Running    bool
	PID        int
	Ctl        string
	StartArgs  []string // how Apply starts it when it is not running
	Systemd    bool     // start it as the pyvhost systemd unit
	AppRunning bool     // the app already runs: redeploy reloads it with zero downtime
}

// Plan lists a deploy's steps in order.
func Plan(f Facts) []Step {
	var steps []Step
	add := func(id StepID, format string, a ...any) {
		steps = append(steps, Step{ID: id, Title: fmt.Sprintf(format, a...)})
	}
	app := f.App
	if app != nil {
		switch {
		case !f.AppDirExists:
			add(StepAppDir, "create the app dir %s, owned by %s", app.AppDir, orUs(f.AppDirUser))
		case f.AppDirUser != "":
			add(StepAppDir, "give the app dir %s to %s (the daemon runs the app as its owner)", app.AppDir, f.AppDirUser)
		}
		for _, dir := range f.StaticDirs {
			add(StepStaticDir, "create %s for --static, owned by the app dir's owner (a release command such as collectstatic fills it)", dir)
			steps[len(steps)-1].Arg = dir
		}
		if !f.VenvExists {
			sys := ""
			if f.SysSite {
				sys = " --system-site-packages"
			}
			add(StepVenv, "create the virtualenv %s (%s -m venv%s)", app.Venv, f.Python, sys)
		}
		switch {
		case isPyproject(f.Requirements):
			add(StepRequirements, "pip install the [project] dependencies of %s into %s", f.Requirements, app.Venv)
		case f.Requirements != "":
			add(StepRequirements, "pip install -r %s into %s", f.Requirements, app.Venv)
		}
		add(StepPreflight, "import %s in %s as %s, as the daemon will", app.Module, app.Venv, orUs(f.RunAs))
		for i, c := range f.ReleaseCommands {
			add(StepReleaseCmd, "release command %d of %d, in %s as %s with the app's environment: %s", i+1, len(f.ReleaseCommands), app.AppDir, orUs(f.RunAs), c)
			steps[len(steps)-1].Arg = c
		}
	}
	if f.ACME != nil {
		steps = append(steps, acmeSteps(f.ACME)...)
	}
	if !f.ConfigSame {
		var files []string
		for _, c := range f.Site.Changes {
			files = append(files, fmt.Sprintf("%s %s", c.Kind, c.Path))
		}
		add(StepWrite, "write the nginx config (%s), keeping the old bytes to roll back to", strings.Join(files, ", "))
	}
	switch {
	case f.Cert != nil:
		add(StepCert, "install the certificate (%s) as %s and its key, root-only, keeping the old ones to roll back to", f.Cert.Describe(), f.Cert.CertPath())
	case f.ACME != nil:
		add(StepCert, "install the new certificate as %s and its key, root-only, keeping the old ones to roll back to", f.Site.Spec.TLS.Cert)
	}
	beside := testBeside(f)
	switch {
	case beside:
		add(StepNginxTest, "start nginx -t, beside nginx's reload and the daemon's re-read (it took %.1f s on this config): an error or a new warning fails the deploy and puts nginx back on the old config", f.NginxTestTook.Seconds())
		add(StepNginxReload, "reload nginx")
	case !f.ConfigSame || f.Cert != nil || f.ACME != nil:
		add(StepNginxTest, "nginx -t: an error or a new warning fails the deploy")
	}
	if f.Settings != nil {
		add(StepSettings, "store the app's settings (%s) in %s, root-only", f.Settings.Describe(), filepath.Dir(f.Settings.Path)+"/")
	}
	if f.ACMEMeta != nil {
		add(StepACMEMeta, "record how the daemon renews the certificate (%s) in %s", f.ACMEMeta.Describe, metaPath(f.ACMEMeta.Dir))
	}
	if app != nil {
		switch {
		case f.Daemon.Running && !f.ConfigSame:
			add(StepDaemon, "the daemon (pid %d) re-reads the nginx config", f.Daemon.PID)
		case f.Daemon.Running:
		case f.Daemon.Systemd:
			add(StepDaemon, "start the daemon as the systemd unit pyvhost.service")
		default:
			add(StepDaemon, "start the daemon: pyvhost %s", strings.Join(f.Daemon.StartArgs, " "))
		}
		if f.Daemon.AppRunning {
			add(StepLoad, "reload %s in the daemon: new workers first, the old ones drain (zero downtime)", app.Module)
		} else {
			add(StepLoad, "load %s in the daemon and wait for its import", app.Module)
		}
	}
	switch {
	case beside:
		add(StepNginxVerdict, "wait for nginx -t's verdict")
	case !f.ConfigSame || f.Cert != nil || f.ACME != nil:
		add(StepNginxReload, "reload nginx (start it if it is not running)")
	case f.NginxDown:
		add(StepNginxReload, "start nginx (it is not running)")
	}
	if f.SmokePath != "" {
		add(StepSmoke, "%s", smokeStep(f.SmokeAddr, f.Site.Spec, append([]string{f.SmokePath}, f.SmokeExtra...), app != nil))
	}
	switch {
	case !f.ConfigSame:
		add(StepRelease, "record the release (config, spec, time); keep the last %d", KeepReleases)
	case f.Settings != nil || f.Cert != nil || f.ACME != nil:
		var what []string
		if f.Settings != nil {
			what = append(what, "the app's new settings")
		}
		if f.Cert != nil || f.ACME != nil {
			what = append(what, "the new certificate")
		}
		add(StepRelease, "record the release (the same config, %s); keep the last %d", strings.Join(what, " and "), KeepReleases)
	}
	return steps
}

// smokeStep describes the smoke test of paths on every name of the site.
// With an app it must answer with a 2xx; a static location, below 500.
func smokeStep(addr string, spec nginxconf.SiteSpec, paths []string, app bool) string {
	want := "answer below 500"
	if app {
		want = "be answered by the app with a 2xx (redirects within the site followed)"
	}
	scheme := "http"
	if spec.TLS != nil {
		scheme, addr = "https", smokeAddr(spec.TLS.Listen)
		want += ", with the site's certificate"
	}
	s := fmt.Sprintf("GET %s://%s%s with Host: %s must %s", scheme, addr, paths[0], strings.Join(smokeHosts(spec), ", "), want)
	if len(paths) > 1 {
		s += ", and " + strings.Join(paths[1:], ", ") + " too"
	}
	return s
}

func orUs(user string) string {
	if user == "" {
		return "the current user"
	}
	return user
}

// FormatPlan is the plan as numbered lines, for the terminal and goldens.
func FormatPlan(steps []Step) string {
	var b strings.Builder
	for i, s := range steps {
		fmt.Fprintf(&b, "%2d. %s\n", i+1, s.Title)
	}
	return b.String()
}

// acmeSteps order a certificate: first, when the site lacks it, its HTTP
// block with the challenge location goes live; then the pre-check, then
// the order.
func acmeSteps(a *ACMEPlan) []Step {
	var steps []Step
	add := func(id StepID, format string, args ...any) {
		steps = append(steps, Step{ID: id, Title: fmt.Sprintf(format, args...)})
	}
	if a.First != nil {
		var files []string
		for _, c := range a.First.Changes {
			files = append(files, fmt.Sprintf("%s %s", c.Kind, c.Path))
		}
		add(StepACMEWrite, "write the nginx config with the ACME challenge location (%s), keeping the old bytes to roll back to", strings.Join(files, ", "))
		add(StepNginxTest, "nginx -t: an error or a new warning fails the deploy")
		add(StepACMEReload, "reload nginx: http://%s/.well-known/acme-challenge/ goes to pyvhost (the site is HTTP until its certificate is in)", a.Names[0])
	}
	port := a.Options.HTTPPort
	if port == 0 {
		port = 80
	}
	add(StepACMECheck, "check, as the CA will, that each of %s resolves and reaches this nginx's challenge location on port %d", strings.Join(a.Names, ", "), port)
	replacing := ""
	if a.Replaces != "" {
		replacing = ", replacing the one from " + a.Replaces
	}
	add(StepACMEOrder, "order a certificate for %s from %s (HTTP-01)%s", strings.Join(a.Names, ", "), a.Options.DirectoryURL(), replacing)
	return steps
}
