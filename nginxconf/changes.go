package nginxconf

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	// An update keeps the site's current listen unless one is given, so
	// remember whether it was before Normalize fills the default.
	keepListen := spec.Listen == ""
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	layout, err := t.Layout()
	if err != nil {
		return nil, err
	}
	sc := &SiteChanges{Layout: layout, SitePath: layout.SitePath(spec.Domain)}
	old, err := os.ReadFile(sc.SitePath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", sc.SitePath, err)
	case !IsManaged(old):
		return nil, fmt.Errorf("%s exists and was not written by pyvhost: move it away, or deploy under another name", sc.SitePath)
	default:
		current, err := SpecFromFile(sc.SitePath, old)
		if err != nil {
			return nil, err
		}
		current.Normalize()
		if keepListen {
			spec.Listen = ""
		}
		current.Merge(spec)
		spec = current
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
	rendered, err := Render(spec, RenderOptions{IncludeParams: statErr == nil})
	if err != nil {
		return nil, err
	}
	switch {
	case old == nil:
		sc.Changes = append(sc.Changes, Change{Kind: Create, Path: sc.SitePath, New: rendered})
	case !bytes.Equal(old, rendered):
		sc.Changes = append(sc.Changes, Change{Kind: Modify, Path: sc.SitePath, Old: old, New: rendered})
	}
	if layout.Kind == LayoutDebian {
		link := layout.LoadedPath(spec.Domain)
		target, err := os.Readlink(link)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			sc.Changes = append(sc.Changes, Change{Kind: Symlink, Path: link, Target: sc.SitePath})
		case err != nil:
			return nil, fmt.Errorf("%s is not a symlink pyvhost made: move it away, or deploy under another name", link)
		case resolved(link) != resolved(sc.SitePath):
			return nil, fmt.Errorf("%s points to %s, not to pyvhost's %s: move it away, or deploy under another name", link, target, sc.SitePath)
		}
	}
	if layout.IncludeLine != "" {
		f := t.byPath[layout.HTTPFile]
		_, http := t.httpBlock()
		edited, err := f.addInclude(http, layout.IncludeLine)
		if err != nil {
			return nil, err
		}
		sc.Changes = append(sc.Changes, Change{Kind: Modify, Path: f.Path, Old: f.Source, New: edited})
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
	for _, e := range t.expand(f, f.Config.Directives) {
		if e.d.GetName() == "server" && e.d.GetBlock() != nil {
			return SpecFromServer(t.server(e, nil)), nil
		}
	}
	return SiteSpec{}, fmt.Errorf("%s: no server block in pyvhost's file", path)
}
