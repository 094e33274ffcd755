// Package templates embeds the assets pyvhost writes or runs: the nginx site
// template, the Python worker, the status page and the systemd unit.
package templates

import (
	"bytes"
	"embed"
	"path"
	"runtime"
	"strings"
	"text/template"
)

// SiteConf is the text/template for one site's nginx server block.
//
//go:embed site.conf.tmpl
var SiteConf string

// UwsgiParams is the list of uwsgi_param lines Debian's /etc/nginx/uwsgi_params
// holds; it is inlined when no uwsgi_params file exists beside nginx.conf.
//
//go:embed uwsgi_params
var UwsgiParams string

// LoadAppPy defines load_app_from, how an app is found and imported: the
// worker's and the deploy's preflight import's one definition.
//
//go:embed worker/pyvhost_worker/loadapp.py
var LoadAppPy string

// TracebacksPy defines user_traceback, a traceback that starts at the
// user's code: the worker's and the preflight's one definition.
//
//go:embed worker/pyvhost_worker/tracebacks.py
var TracebacksPy string

// speedupsSrc is the optional C request path of the worker: csrc/speedups.c
// and the parts it includes.
//
//go:embed csrc/*.c
var speedupsSrc embed.FS

// prebuilt holds the C module make build compiled from csrc/ (none when
// the build machine had no compiler): see prebuilt/README.md.
//
//go:embed prebuilt
var prebuilt embed.FS

// PrebuiltSpeedups is the compiled C module embedded for the sources whose
// hash is hash, on this binary's OS and architecture; nil when there is none.
func PrebuiltSpeedups(hash string) []byte {
	data, err := prebuilt.ReadFile(path.Join("prebuilt", PrebuiltName(hash, runtime.GOOS, runtime.GOARCH)))
	if err != nil {
		return nil
	}
	return data
}

// PrebuiltName is the file a prebuilt C module has in prebuilt/.
func PrebuiltName(hash, goos, goarch string) string {
	return "speedups-" + hash + "-" + goos + "-" + goarch + ".so"
}

// SourceFile is one file of an embedded C source tree.
type SourceFile struct {
	Name string
	Data []byte
}

// SpeedupsSources are the files of the worker's C speedups, in name order;
// compile speedups.c (it includes the others). The daemon compiles them
// when it can (see uwsgictl/daemon/speedups.go).
func SpeedupsSources() []SourceFile {
	entries, err := speedupsSrc.ReadDir("csrc")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	var files []SourceFile
	for _, e := range entries {
		data, err := speedupsSrc.ReadFile("csrc/" + e.Name())
		if err != nil {
			panic(err)
		}
		files = append(files, SourceFile{e.Name(), data})
	}
	return files
}

// StatusHTML is the daemon's status page; it polls /status.json.
//
//go:embed status.html
var StatusHTML string

//go:embed pyvhost.service.tmpl
var systemdUnit string

var systemdUnitTmpl = template.Must(template.New("pyvhost.service").Parse(systemdUnit))

// SystemdUnit renders the daemon's unit: exe run with args in the
// foreground (systemd supervises it, so no -d).
func SystemdUnit(exe string, args []string) ([]byte, error) {
	words := []string{systemdQuote(exe)}
	for _, a := range args {
		words = append(words, systemdQuote(a))
	}
	var b bytes.Buffer
	err := systemdUnitTmpl.Execute(&b, struct{ ExecStart string }{strings.Join(words, " ")})
	return b.Bytes(), err
}

// systemdQuote quotes a word for ExecStart= when it needs it; "%" and "$"
// are systemd specifiers, doubled so they stay literal.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "%", "%%"), "$", "$$")
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}
