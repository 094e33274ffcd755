package nginxconf

import (
	"slices"
	"strings"

	"github.com/tufanbarisyildirim/gonginx/config"
)

// ServerBlock is one http server block as nginx would load it.
type ServerBlock struct {
	File        string   `json:"file"`               // file as nginx loads it (symlink path in sites-enabled)
	Line        int      `json:"line"`               // line where "server" starts
	ServerNames []string `json:"server_names"`       // quotes stripped, wildcards and regexes as written
	Listen      []string `json:"listen"`             // each listen directive's parameters joined by a space
	MaxBody     string   `json:"max_body,omitempty"` // the server's client_max_body_size, when it sets one
	// TLS: the server's ssl_certificate and key, whether it sends HSTS, and
	// where its ACME challenge location proxies to, when it has them.
	TLSCert       string   `json:"tls_cert,omitempty"`
	TLSKey        string   `json:"tls_key,omitempty"`
	HSTS          bool     `json:"hsts,omitempty"`
	ACMEChallenge string   `json:"acme_challenge,omitempty"`
	Managed       bool     `json:"managed"` // the file is one pyvhost owns
	Apps          []App    `json:"apps"`    // locations that uwsgi_pass
	Static        []Static `json:"static"`  // locations that nginx serves from disk with alias
}

// App is a location that hands requests to a uwsgi daemon, with the params
// nginx would send it (inheritance applied).
type App struct {
	Location   string `json:"location"`   // the location's parameters as written, modifier included
	Line       int    `json:"line"`       // line where the location starts
	UwsgiPass  string `json:"uwsgi_pass"` // as written
	Pyhome     string `json:"pyhome"`     // UWSGI_PYHOME or UWSGI_HOME
	Chdir      string `json:"chdir"`      // UWSGI_CHDIR
	Script     string `json:"script"`     // UWSGI_SCRIPT, or UWSGI_MODULE:UWSGI_CALLABLE
	ScriptName string `json:"script_name"`
	// ReadTimeout is the location's uwsgi_read_timeout, when it sets one.
	ReadTimeout string `json:"read_timeout,omitempty"`

	// State is the app's state in the running daemon (cold, ready, …),
	// filled in by `pyvhost sites` when the daemon answers.
	State string `json:"state,omitempty"`
	// Settings is what the app sets itself (pool settings, how many
	// environment variables), filled in by `pyvhost sites` from the state dir.
	Settings string `json:"settings,omitempty"`
}

// Static is a location served by nginx from a directory (alias).
type Static struct {
	Location string `json:"location"`
	Alias    string `json:"alias"`
}

// entry is a directive together with the file it was read from, after
// includes have been inlined.
type entry struct {
	d    config.IDirective
	file *File
}

// expand inlines include directives, recursively, as nginx does when it
// reads a block.
func (t *Tree) expand(f *File, dirs []config.IDirective) []entry {
	var out []entry
	for _, d := range dirs {
		if inc, ok := d.(*config.Include); ok {
			for _, inf := range t.includes[inc] {
				out = append(out, t.expand(inf, inf.Config.Directives)...)
			}
			continue
		}
		out = append(out, entry{d, f})
	}
	return out
}

// Servers returns every server block inside an http block, in load order.
// Servers in stream or mail blocks are not HTTP sites and are left out.
// The walk is made once per tree (a deploy asks three times, and at
// 10,000 sites a walk takes a tenth of a second): callers get their own
// slice of the same blocks, which none may change.
func (t *Tree) Servers() []ServerBlock {
	t.serversOnce.Do(func() { t.servers = t.walkServers() })
	return slices.Clone(t.servers)
}

func (t *Tree) walkServers() []ServerBlock {
	main := t.byPath[t.Main]
	var out []ServerBlock
	for _, e := range t.expand(main, main.Config.Directives) {
		if e.d.GetName() != "http" || e.d.GetBlock() == nil {
			continue
		}
		body := t.expand(e.file, children(e.d))
		httpParams := paramsOf(body)
		for _, se := range body {
			if _, ok := se.d.(*config.Server); ok {
				out = append(out, t.server(se, httpParams))
			}
		}
	}
	return out
}

// Sites returns the server blocks that route at least one location to a
// uwsgi daemon.
func (t *Tree) Sites() []ServerBlock {
	out := []ServerBlock{}
	for _, s := range t.Servers() {
		if len(s.Apps) > 0 {
			out = append(out, s)
		}
	}
	return out
}

func (t *Tree) server(se entry, httpParams params) ServerBlock {
	s := ServerBlock{
		File:        se.file.Path,
		Line:        se.file.startLine(se.d),
		Managed:     IsManaged(se.file.Source),
		ServerNames: []string{},
		Listen:      []string{},
		Apps:        []App{},
		Static:      []Static{},
	}
	body := t.expand(se.file, children(se.d))
	inherited := paramsOf(body).or(httpParams)
	for _, e := range body {
		switch e.d.GetName() {
		case "server_name":
			s.ServerNames = append(s.ServerNames, values(paramStrings(e.d))...)
		case "listen":
			s.Listen = append(s.Listen, strings.Join(values(paramStrings(e.d)), " "))
		case "client_max_body_size":
			if v := values(paramStrings(e.d)); len(v) > 0 {
				s.MaxBody = v[0]
			}
		case "ssl_certificate":
			s.TLSCert = firstValue(e.d)
		case "ssl_certificate_key":
			s.TLSKey = firstValue(e.d)
		case "add_header":
			s.HSTS = s.HSTS || strings.EqualFold(firstValue(e.d), "Strict-Transport-Security")
		}
	}
	t.locations(&s, body, inherited)
	return s
}

// locations collects apps and static locations, descending into nested
// locations, each inheriting uwsgi_params only when it defines none.
func (t *Tree) locations(s *ServerBlock, body []entry, inherited params) {
	for _, e := range body {
		loc, ok := e.d.(*config.Location)
		if !ok {
			continue
		}
		lbody := t.expand(e.file, children(loc))
		p := paramsOf(lbody).or(inherited)
		where := strings.Join(paramStrings(loc), " ")
		timeout := ""
		for _, le := range lbody {
			if le.d.GetName() == "uwsgi_read_timeout" {
				if v := values(paramStrings(le.d)); len(v) > 0 {
					timeout = v[0]
				}
			}
		}
		for _, le := range lbody {
			switch le.d.GetName() {
			case "uwsgi_pass":
				s.Apps = append(s.Apps, App{
					Location:    where,
					Line:        e.file.startLine(loc),
					UwsgiPass:   strings.Join(paramStrings(le.d), " "),
					Pyhome:      p.first("UWSGI_PYHOME", "UWSGI_HOME"),
					Chdir:       p.get("UWSGI_CHDIR"),
					Script:      p.script(),
					ScriptName:  p.get("SCRIPT_NAME"),
					ReadTimeout: timeout,
				})
			case "alias":
				if v := values(paramStrings(le.d)); len(v) > 0 {
					s.Static = append(s.Static, Static{Location: where, Alias: v[0]})
				}
			case "proxy_pass":
				if where == acmeLocation {
					s.ACMEChallenge = strings.TrimPrefix(firstValue(le.d), "http://")
				}
			}
		}
		t.locations(s, lbody, p)
	}
}

func paramStrings(d config.IDirective) []string {
	ps := d.GetParameters()
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.GetValue()
	}
	return out
}

// PidFile is the main context's pid directive, "" when it has none.
func (t *Tree) PidFile() string { return t.mainValue("pid") }

// User is the user nginx's worker processes run as: the main context's
// user directive, else nginx's built-in default, nobody.
func (t *Tree) User() string {
	if u := t.mainValue("user"); u != "" {
		return u
	}
	return "nobody"
}

// mainValue is the first value of a directive of the main context, includes
// followed; "" when there is none.
func (t *Tree) mainValue(name string) string {
	main := t.byPath[t.Main]
	for _, e := range t.expand(main, main.Config.Directives) {
		if e.d.GetName() == name {
			if v := values(paramStrings(e.d)); len(v) > 0 {
				return v[0]
			}
		}
	}
	return ""
}

// acmeLocation is where ACME's HTTP-01 challenge is asked for (^~: no
// regex location may take it).
const acmeLocation = "^~ /.well-known/acme-challenge/"

func firstValue(d config.IDirective) string {
	if v := values(paramStrings(d)); len(v) > 0 {
		return v[0]
	}
	return ""
}

// TLSListen is the server's listen with the ssl parameter (its address
// only), "" when it has none.
func (s ServerBlock) TLSListen() string {
	for _, l := range s.Listen {
		f := strings.Fields(l)
		if len(f) > 1 && slices.Contains(f[1:], "ssl") {
			return f[0]
		}
	}
	return ""
}
