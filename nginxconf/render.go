package nginxconf

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"text/template"

	"github.com/pyvhost/pyvhost/templates"
)

// ManagedHeader starts every file pyvhost owns; a file without it is never
// rewritten.
const ManagedHeader = "# Managed by pyvhost"

// IsManaged reports whether a file's bytes are a pyvhost-owned site.
func IsManaged(src []byte) bool { return bytes.HasPrefix(src, []byte(ManagedHeader)) }

var siteTemplate = template.Must(template.New("site.conf").Parse(templates.SiteConf))

// RenderOptions are facts about the target nginx that change the block.
type RenderOptions struct {
	// IncludeParams: an uwsgi_params file exists beside nginx.conf, so the
	// block includes it; otherwise the params are written inline.
	IncludeParams bool
	// HTTP2Directive: nginx 1.25.1 or later, where `http2 on;` replaces
	// listen's http2 parameter (which then warns).
	HTTP2Directive bool
}

type renderTLS struct {
	TLSSpec
	PortSuffix string // ":8443" in the redirect when HTTPS is not on 443
}

type renderApp struct {
	AppSpec
	Location string
}

type renderStatic struct {
	Location, Dir string
}

// Render returns the server block for a spec. The spec is normalized and
// validated first; nothing unchecked reaches the template.
func Render(spec SiteSpec, opt RenderOptions) ([]byte, error) {
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	data := struct {
		Domain, Listen, ServerNames, MaxBody string
		Params                               []string
		Apps                                 []renderApp
		Statics                              []renderStatic
		TLS                                  *renderTLS
		HTTP2Directive                       bool
		HostParam                            string // HTTP_HOST with the port, when the client's URL has one
	}{
		Domain:         spec.Domain,
		Listen:         spec.Listen,
		ServerNames:    strings.Join(append([]string{spec.Domain}, spec.Aliases...), " "),
		MaxBody:        spec.MaxBody,
		Params:         []string{"include uwsgi_params;"},
		HTTP2Directive: opt.HTTP2Directive,
	}
	if spec.TLS != nil {
		data.TLS = &renderTLS{TLSSpec: *spec.TLS}
	}
	if spec.TLS != nil && !spec.TLS.Pending {
		if port := listenPort(spec.TLS.Listen); port != "443" {
			// uwsgi_params' HTTP_HOST is $host, without the port: an app
			// building URLs or checking a CSRF origin needs it. A literal,
			// not the client's raw Host header.
			data.TLS.PortSuffix = ":" + port
			data.HostParam = "$host:" + port
		}
	}
	if !opt.IncludeParams {
		data.Params = inlineParams()
	}
	for _, a := range spec.Apps {
		data.Apps = append(data.Apps, renderApp{a, appLocation(a.Mount)})
	}
	for _, s := range spec.Statics {
		// alias and location both end in "/" so no request can climb out of
		// the directory (gixy's alias_traversal).
		dir := s.Dir
		if dir != "/" {
			dir += "/"
		}
		data.Statics = append(data.Statics, renderStatic{staticLocation(s.URL), dir})
	}
	var b bytes.Buffer
	if err := siteTemplate.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("render site %s: %w", spec.Domain, err)
	}
	return b.Bytes(), nil
}

// inlineParams returns the uwsgi_param lines of the embedded uwsgi_params,
// comments and blank lines dropped.
func inlineParams() []string {
	var out []string
	for _, l := range strings.Split(templates.UwsgiParams, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return out
}

// listenPort is the port of a listen value (PORT or ADDR:PORT).
func listenPort(l string) string {
	if _, port, err := net.SplitHostPort(l); err == nil {
		return port
	}
	return l
}
