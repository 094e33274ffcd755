package nginxconf

import (
	"fmt"
	"net"
	"path"
	"sort"
	"strings"
)

// DefaultMaxBody is a site's client_max_body_size unless --max-body says
// otherwise: nginx's own default, 1m, refuses ordinary uploads (a phone's
// photo) with a 413 the app never sees.
const DefaultMaxBody = "16m"

// DefaultAppSocketDir is where per-app unix sockets live unless --socket says
// otherwise; the daemon's --app-sockets default.
const DefaultAppSocketDir = "/run/pyvhost/apps"

// SiteSpec is everything pyvhost writes into one site's server block.
type SiteSpec struct {
	Domain  string
	Aliases []string
	Listen  string // PORT or ADDR:PORT; "" means 80
	MaxBody string // client_max_body_size: nginx's SIZE (16m, 1g; 0 = no limit); "" means DefaultMaxBody
	Apps    []AppSpec
	Statics []StaticSpec
	// TLS serves the site over HTTPS (HTTP then only redirects to it and
	// answers ACME challenges); nil serves HTTP only.
	TLS *TLSSpec `json:",omitempty"`

	// SocketDir is where an app's default unix socket goes ("" means
	// DefaultAppSocketDir); it must be the daemon's --app-sockets.
	SocketDir string `json:"-"`
	// TLSOff, in a change, turns a site's TLS off (--tls off).
	TLSOff bool `json:"-"`
}

// DefaultHTTPSListen is a TLS site's HTTPS port unless --https-listen says
// otherwise.
const DefaultHTTPSListen = "443"

// TLSSpec is a site's HTTPS: where it listens, its certificate and key
// (files pyvhost installed in its state dir), and whether it sends HSTS.
type TLSSpec struct {
	Listen string // [ADDR:]PORT; "" means DefaultHTTPSListen
	Cert   string // ssl_certificate: the chain, leaf first
	Key    string // ssl_certificate_key
	HSTS   bool   // Strict-Transport-Security (hard to undo: off unless asked)
	// Challenge is the loopback ADDR:PORT the HTTP block proxies ACME's
	// HTTP-01 requests (/.well-known/acme-challenge/) to, where pyvhost
	// answers them while an order is validated; "" for a brought
	// certificate.
	Challenge string
	// Pending renders the site as HTTP with the challenge location, not
	// yet TLS: what goes live while its first certificate is ordered.
	Pending bool `json:"-"`
}

// AppSpec is one WSGI app mounted in the site.
type AppSpec struct {
	Mount  string // "/" or "/prefix"
	Socket string // uwsgi_pass address; "" means the app's own unix socket
	Venv   string // UWSGI_PYHOME; "" means APPDIR/.venv
	AppDir string // UWSGI_CHDIR
	Module string // UWSGI_SCRIPT: module[:callable]

	// ReadTimeout is the location's uwsgi_read_timeout as nginx writes it
	// ("35s"); "" leaves nginx's default, 60s. deploy sets it from the
	// app's harakiri, so nginx does not give up before the app does.
	ReadTimeout string `json:",omitempty"`
}

// StaticSpec is a URL prefix nginx serves straight from a directory.
type StaticSpec struct {
	URL string // "/static"
	Dir string
}

// ParseStatic parses a --static URL=DIR flag.
func ParseStatic(s string) (StaticSpec, error) {
	u, d, ok := strings.Cut(s, "=")
	if !ok {
		return StaticSpec{}, fmt.Errorf("--static %q: want URL=DIR, e.g. /static/=/srv/app/static", s)
	}
	return StaticSpec{URL: u, Dir: d}, nil
}

// AppSocket is the default per-app socket for a mount of a domain, e.g.
// unix:/run/pyvhost/apps/example.com.sock or .../example.com_blog.sock.
func AppSocket(domain, mount string) string { return AppSocketIn(DefaultAppSocketDir, domain, mount) }

// AppSocketIn is AppSocket for a daemon whose --app-sockets is dir.
func AppSocketIn(dir, domain, mount string) string {
	if dir == "" {
		dir = DefaultAppSocketDir
	}
	name := FileStem(domain)
	if mount != "/" {
		name += strings.ReplaceAll(mount, "/", "_")
	}
	return "unix:" + path.Join(dir, name+".sock")
}

// FileStem is the file-name form of a domain: "*" becomes "_", which no
// real host name contains.
func FileStem(domain string) string { return strings.ReplaceAll(domain, "*", "_") }

func cleanURLPath(p string) string {
	if p == "/" || p == "" {
		return p
	}
	return strings.TrimRight(p, "/")
}

// Normalize fills defaults and puts the spec in canonical order, so the same
// site always renders to the same bytes.
func (s *SiteSpec) Normalize() {
	s.Domain = strings.ToLower(s.Domain)
	seen := map[string]bool{s.Domain: true}
	var aliases []string
	for _, a := range s.Aliases {
		a = strings.ToLower(a)
		if !seen[a] {
			seen[a] = true
			aliases = append(aliases, a)
		}
	}
	sort.Strings(aliases)
	s.Aliases = aliases
	if s.Listen == "" {
		s.Listen = "80"
	}
	if s.MaxBody == "" {
		s.MaxBody = DefaultMaxBody
	}
	if s.TLS != nil && s.TLS.Listen == "" {
		s.TLS.Listen = DefaultHTTPSListen
	}
	for i := range s.Apps {
		a := &s.Apps[i]
		a.Mount = NormalizeMount(a.Mount)
		if a.Socket == "" {
			a.Socket = AppSocketIn(s.SocketDir, s.Domain, a.Mount)
		}
		if a.Venv == "" && a.AppDir != "" {
			a.Venv = path.Join(a.AppDir, ".venv")
		}
	}
	sort.SliceStable(s.Apps, func(i, j int) bool { return s.Apps[i].Mount < s.Apps[j].Mount })
	for i := range s.Statics {
		s.Statics[i].URL = cleanURLPath(s.Statics[i].URL)
		if s.Statics[i].Dir != "/" {
			s.Statics[i].Dir = strings.TrimRight(s.Statics[i].Dir, "/")
		}
	}
	sort.SliceStable(s.Statics, func(i, j int) bool { return s.Statics[i].URL < s.Statics[j].URL })
}

// InvalidError is bad input: a value the user gave that pyvhost refuses.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// Validate checks every value before it can reach the template.
func (s *SiteSpec) Validate() error {
	if err := s.validate(false); err != nil {
		return &InvalidError{err}
	}
	return nil
}

// ValidateChange checks a spec as the user gave it (a normalized copy) for
// a change to a site that may exist already: nothing to serve is fine there
// (a new --alias or --listen alone); whether the merged site serves
// something is checked after.
func (s SiteSpec) ValidateChange() error {
	s.Apps = append([]AppSpec(nil), s.Apps...) // Normalize rewrites them in place
	s.Statics = append([]StaticSpec(nil), s.Statics...)
	s.Normalize()
	if err := s.validate(true); err != nil {
		return &InvalidError{err}
	}
	return nil
}

func (s *SiteSpec) validate(allowEmpty bool) error {
	if err := ValidateDomain("domain", s.Domain); err != nil {
		return err
	}
	for _, a := range s.Aliases {
		if err := ValidateDomain("--alias", a); err != nil {
			return err
		}
	}
	if err := ValidateListen("--listen", s.Listen); err != nil {
		return err
	}
	if err := ValidateSize("--max-body", s.MaxBody); err != nil {
		return err
	}
	if err := s.TLS.validate(s.Listen); err != nil {
		return err
	}
	if len(s.Apps) == 0 && len(s.Statics) == 0 && !allowEmpty {
		return fmt.Errorf("site %s has nothing to serve: give --app-dir and --module", s.Domain)
	}
	taken := map[string]string{} // nginx location -> what uses it
	claim := func(loc, what string) error {
		if prev, ok := taken[loc]; ok {
			return fmt.Errorf("%s and %s both want location %s", prev, what, loc)
		}
		taken[loc] = what
		return nil
	}
	for _, a := range s.Apps {
		if err := ValidateURLPath("--mount", a.Mount); err != nil {
			return err
		}
		if err := ValidateSocket("--socket", a.Socket); err != nil {
			return err
		}
		if err := ValidatePath("--venv", a.Venv); err != nil {
			return err
		}
		if err := ValidatePath("--app-dir", a.AppDir); err != nil {
			return err
		}
		if a.Module == "" {
			return fmt.Errorf("--module is required: the Python module (and :callable) to serve, e.g. myapp or myproject.wsgi:application")
		}
		if err := ValidateModule("--module", a.Module); err != nil {
			return err
		}
		if err := ValidateDuration("uwsgi_read_timeout", a.ReadTimeout); a.ReadTimeout != "" && err != nil {
			return err
		}
		if err := claim(appLocation(a.Mount), "the app at "+a.Mount); err != nil {
			return err
		}
	}
	for _, st := range s.Statics {
		if err := ValidateURLPath("--static URL", st.URL); err != nil {
			return err
		}
		if err := ValidatePath("--static DIR", st.Dir); err != nil {
			return err
		}
		if err := claim(staticLocation(st.URL), "--static "+st.URL); err != nil {
			return err
		}
	}
	return nil
}

// appLocation is the nginx location an app mount gets: "/" or "/prefix/"
// (with the slash, so /blog does not also catch /blogroll).
func appLocation(mount string) string {
	if mount == "/" {
		return "/"
	}
	return mount + "/"
}

func staticLocation(url string) string { return appLocation(url) }

// Merge adds or replaces the apps and statics of other (same mount or URL
// replaces), unions the aliases, and takes other's listen when set. It is how
// a deploy to an already managed domain updates its file. other may be
// un-normalized: a replaced app keeps its current socket when other gives
// none, and its venv when other gives none for the same app dir, so a
// redeploy with the original flags changes nothing it did not name.
func (s *SiteSpec) Merge(other SiteSpec) {
	s.Aliases = append(s.Aliases, other.Aliases...)
	if other.Listen != "" {
		s.Listen = other.Listen
	}
	if other.MaxBody != "" {
		s.MaxBody = other.MaxBody
	}
	switch {
	case other.TLSOff:
		s.TLS = nil
	case other.TLS != nil:
		t := *other.TLS
		s.TLS = &t
	}
	for _, a := range other.Apps {
		replaced := false
		for i := range s.Apps {
			old := s.Apps[i]
			if NormalizeMount(old.Mount) != NormalizeMount(a.Mount) {
				continue
			}
			if a.Socket == "" {
				a.Socket = old.Socket
			}
			if a.Venv == "" && path.Clean(a.AppDir) == path.Clean(old.AppDir) {
				a.Venv = old.Venv
			}
			s.Apps[i], replaced = a, true
		}
		if !replaced {
			s.Apps = append(s.Apps, a)
		}
	}
	for _, st := range other.Statics {
		replaced := false
		for i := range s.Statics {
			if cleanURLPath(s.Statics[i].URL) == cleanURLPath(st.URL) {
				s.Statics[i], replaced = st, true
			}
		}
		if !replaced {
			s.Statics = append(s.Statics, st)
		}
	}
}

// Remove takes the app mounted at mount out of the site; it reports
// whether there was one.
func (s *SiteSpec) Remove(mount string) bool {
	for i, a := range s.Apps {
		if NormalizeMount(a.Mount) == NormalizeMount(mount) {
			s.Apps = append(s.Apps[:i:i], s.Apps[i+1:]...)
			return true
		}
	}
	return false
}

// NormalizeMount is a --mount in its normalized form: "/" or "/blog"
// (no trailing slash).
func NormalizeMount(m string) string {
	if m = cleanURLPath(m); m == "" {
		return "/"
	}
	return m
}

// SpecFromServer reads a spec back from a server block pyvhost rendered.
func SpecFromServer(b ServerBlock) SiteSpec {
	var s SiteSpec
	if len(b.ServerNames) > 0 {
		s.Domain = b.ServerNames[0]
		s.Aliases = append(s.Aliases, b.ServerNames[1:]...)
	}
	if len(b.Listen) > 0 {
		s.Listen = b.Listen[0]
	}
	s.MaxBody = b.MaxBody
	for _, a := range b.Apps {
		mount := a.ScriptName
		if mount == "" {
			mount = "/"
		}
		s.Apps = append(s.Apps, AppSpec{Mount: mount, Socket: a.UwsgiPass, Venv: a.Pyhome, AppDir: a.Chdir, Module: a.Script, ReadTimeout: a.ReadTimeout})
	}
	for _, st := range b.Static {
		s.Statics = append(s.Statics, StaticSpec{URL: st.Location, Dir: st.Alias})
	}
	return s
}

func (t *TLSSpec) validate(httpListen string) error {
	if t == nil {
		return nil
	}
	if err := ValidateListen("--https-listen", t.Listen); err != nil {
		return err
	}
	if listenKey(t.Listen) == listenKey(httpListen) {
		return fmt.Errorf("--https-listen %s is the site's HTTP --listen too: give HTTPS a port of its own (443)", t.Listen)
	}
	for _, p := range []struct{ what, v string }{{"certificate", t.Cert}, {"key", t.Key}} {
		if p.v == "" {
			return fmt.Errorf("a TLS site needs its %s file", p.what)
		}
		if err := ValidatePath(p.what, p.v); err != nil {
			return err
		}
	}
	if t.Challenge != "" {
		if err := ValidateListen("the ACME challenge address", t.Challenge); err != nil {
			return err
		}
		if host, _, _ := net.SplitHostPort(t.Challenge); !net.ParseIP(host).IsLoopback() {
			return fmt.Errorf("the ACME challenge address %s must be on loopback (127.0.0.1:PORT)", t.Challenge)
		}
	}
	return nil
}
