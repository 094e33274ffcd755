package nginxconf

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ChangeKind says what a Change does to its path.
type ChangeKind string

const (
	Create  ChangeKind = "create"
	Modify  ChangeKind = "modify"
	Delete  ChangeKind = "delete"
	Symlink ChangeKind = "symlink" // create a symlink at Path pointing to Target
)

// Change is one file a deploy would write.
type Change struct {
	Kind   ChangeKind
	Path   string
	Old    []byte // current bytes (Modify, Delete)
	New    []byte // bytes to write (Create, Modify)
	Target string // Symlink only
}

// SiteChanges is what deploying a spec would do to the nginx configuration.
type SiteChanges struct {
	Spec     SiteSpec // the spec after merging with the site's current file
	Layout   Layout
	SitePath string // the file pyvhost owns for this domain
	Changes  []Change
	Warnings []string
}

// PlanSite works out the files a deploy of spec would create or modify,
// without touching anything: it merges spec into the domain's existing
// pyvhost file if there is one, checks names against every other server
// block, and renders the result.
func (t *Tree) PlanSite(spec SiteSpec) (*SiteChanges, error) {
	// An update merges what the user gave, before defaults are filled in:
	// an unset listen, socket or venv keeps the site's current one.
	if err := spec.ValidateChange(); err != nil {
		return nil, err
	}
	raw := spec
	raw.Apps = append([]AppSpec(nil), spec.Apps...)
	spec.Normalize()
	layout, err := t.Layout()
	if err != nil {
		return nil, err
	}
	sc := &SiteChanges{Layout: layout, SitePath: layout.SitePath(spec.Domain)}
	old, err := readOwnFile(sc.SitePath)
	switch {
	case err != nil:
		return nil, err
	case old == nil:
		if err := spec.Validate(); err != nil { // a new site must serve something
			return nil, err
		}
	default:
		current, err := SpecFromFile(sc.SitePath, old)
		if err != nil {
			return nil, err
		}
		current.Normalize()
		current.Merge(raw)
		spec = current
		spec.SocketDir = raw.SocketDir
		spec.Normalize()
		if err := spec.Validate(); err != nil {
			return nil, err
		}
	}
	sc.Spec = spec
	if sc.Warnings, err = t.Conflicts(spec, sc.SitePath); err != nil {
		return nil, err
	}
	_, statErr := os.Stat(filepath.Join(t.Prefix, "uwsgi_params"))
	rendered, err := Render(spec, RenderOptions{IncludeParams: statErr == nil, HTTP2Directive: HTTP2Directive()})
	if err != nil {
		return nil, err
	}
	if err := t.planWrite(sc, old, rendered); err != nil {
		return nil, err
	}
	return sc, nil
}

// planWrite adds the changes that make sc.SitePath hold content and be
// loaded by nginx: the file itself, its sites-enabled symlink on Debian,
// the include line on a single-file config.
func (t *Tree) planWrite(sc *SiteChanges, old, content []byte) error {
	switch {
	case old == nil:
		sc.Changes = append(sc.Changes, Change{Kind: Create, Path: sc.SitePath, New: content})
	case !bytes.Equal(old, content):
		sc.Changes = append(sc.Changes, Change{Kind: Modify, Path: sc.SitePath, Old: old, New: content})
	}
	layout := sc.Layout
	if layout.Kind == LayoutDebian {
		link := layout.LoadedPath(sc.Spec.Domain)
		target, err := os.Readlink(link)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			sc.Changes = append(sc.Changes, Change{Kind: Symlink, Path: link, Target: sc.SitePath})
		case err != nil:
			return fmt.Errorf("%s is not a symlink pyvhost made: move it away, or deploy under another name", link)
		case resolved(link) != resolved(sc.SitePath):
			return fmt.Errorf("%s points to %s, not to pyvhost's %s: move it away, or deploy under another name", link, target, sc.SitePath)
		}
	}
	if layout.IncludeLine != "" {
		f := t.byPath[layout.HTTPFile]
		_, http := t.httpBlock()
		edited, err := f.addInclude(http, layout.IncludeLine)
		if err != nil {
			return err
		}
		sc.Changes = append(sc.Changes, Change{Kind: Modify, Path: f.Path, Old: f.Source, New: edited})
	}
	return nil
}

// managedSite reads the file pyvhost owns for domain; it is an error when
// there is none or someone else wrote it.
func (t *Tree) managedSite(domain string) (*SiteChanges, []byte, error) {
	layout, err := t.Layout()
	if err != nil {
		return nil, nil, err
	}
	domain = strings.ToLower(domain)
	sc := &SiteChanges{Layout: layout, SitePath: layout.SitePath(domain), Spec: SiteSpec{Domain: domain}}
	old, err := readOwnFile(sc.SitePath)
	if err == nil && old == nil {
		err = fmt.Errorf("%s is not deployed: there is no %s (see pyvhost sites)", domain, sc.SitePath)
	}
	return sc, old, err
}

// readOwnFile reads the file pyvhost owns for a domain: nil when there is
// none yet, an error when someone else wrote the file at that path.
func readOwnFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", path, err)
	case !IsManaged(b):
		return nil, fmt.Errorf("%s exists and was not written by pyvhost, which changes only its own files: move it away, or use another domain", path)
	}
	return b, nil
}

// PlanRemove works out how to take a site down: its whole file (and
// symlink) when mount is "", else only the app at mount — the whole file
// when that was all it served. Spec is the site as it was.
func (t *Tree) PlanRemove(domain, mount string) (*SiteChanges, error) {
	sc, old, err := t.managedSite(domain)
	if err != nil {
		return nil, err
	}
	if sc.Spec, err = SpecFromFile(sc.SitePath, old); err != nil {
		return nil, err
	}
	sc.Spec.Normalize()
	if mount != "" {
		rest := sc.Spec
		rest.Apps = append([]AppSpec(nil), sc.Spec.Apps...)
		if !rest.Remove(mount) {
			return nil, &InvalidError{fmt.Errorf("%s has no app at --mount %s", domain, mount)}
		}
		if len(rest.Apps) > 0 || len(rest.Statics) > 0 {
			_, statErr := os.Stat(filepath.Join(t.Prefix, "uwsgi_params"))
			rendered, err := Render(rest, RenderOptions{IncludeParams: statErr == nil, HTTP2Directive: HTTP2Directive()})
			if err != nil {
				return nil, err
			}
			sc.Changes = []Change{{Kind: Modify, Path: sc.SitePath, Old: old, New: rendered}}
			return sc, nil
		}
	}
	if sc.Layout.Kind == LayoutDebian {
		link := sc.Layout.LoadedPath(strings.ToLower(domain))
		if resolved(link) == resolved(sc.SitePath) {
			sc.Changes = append(sc.Changes, Change{Kind: Delete, Path: link})
		}
	}
	sc.Changes = append(sc.Changes, Change{Kind: Delete, Path: sc.SitePath, Old: old})
	return sc, nil
}

// PlanRestore works out how to put content (an earlier release's exact
// bytes) back as the domain's file, enabled.
func (t *Tree) PlanRestore(domain string, content []byte) (*SiteChanges, error) {
	domain = strings.ToLower(domain)
	layout, err := t.Layout()
	if err != nil {
		return nil, err
	}
	sc := &SiteChanges{Layout: layout, SitePath: layout.SitePath(domain)}
	if sc.Spec, err = SpecFromFile(sc.SitePath, content); err != nil {
		return nil, err
	}
	sc.Spec.Normalize()
	old, err := readOwnFile(sc.SitePath)
	if err != nil {
		return nil, err
	}
	if sc.Warnings, err = t.Conflicts(sc.Spec, sc.SitePath); err != nil {
		return nil, err
	}
	if err := t.planWrite(sc, old, content); err != nil {
		return nil, err
	}
	return sc, nil
}

// SpecFromFile reads the spec back from a pyvhost-owned site file.
func SpecFromFile(path string, src []byte) (SiteSpec, error) {
	f, err := ParseFile(path, src)
	if err != nil {
		return SiteSpec{}, err
	}
	t := &Tree{Main: path, byPath: map[string]*File{path: f}}
	var blocks []ServerBlock
	for _, e := range t.expand(f, f.Config.Directives) {
		if e.d.GetName() == "server" && e.d.GetBlock() != nil {
			blocks = append(blocks, t.server(e, nil))
		}
	}
	if len(blocks) == 0 {
		return SiteSpec{}, fmt.Errorf("%s: no server block in pyvhost's file", path)
	}
	// A TLS site is two blocks: HTTP (redirects, ACME's challenge), then
	// HTTPS (the site itself).
	for i, b := range blocks {
		tls := b.TLSListen()
		if tls == "" {
			continue
		}
		spec := SpecFromServer(b)
		spec.TLS = &TLSSpec{Listen: tls, Cert: b.TLSCert, Key: b.TLSKey, HSTS: b.HSTS}
		spec.Listen = ""
		for j, h := range blocks {
			if j != i && h.TLSListen() == "" && len(h.Listen) > 0 {
				spec.Listen, spec.TLS.Challenge = h.Listen[0], h.ACMEChallenge
			}
		}
		return spec, nil
	}
	return SpecFromServer(blocks[0]), nil
}
