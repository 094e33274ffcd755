package nginxconf

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// ConflictError says a name is already served on the same address by a
// server block pyvhost would not replace.
type ConflictError struct {
	Name, Listen string
	File         string
	Line         int
	Managed      bool
}

func (e *ConflictError) Error() string {
	owner := "a server block pyvhost does not own"
	if e.Managed {
		owner = "another pyvhost site"
	}
	return fmt.Sprintf("%s is already served on %s by %s at %s:%d: remove it there or deploy another name",
		e.Name, e.Listen, owner, e.File, e.Line)
}

// Conflicts checks the names of spec against every server block outside
// ownPath (the file the deploy would replace). A name nginx already has on
// the same listen address is an error (nginx would warn "conflicting server
// name" and ignore one of them); a name that another block wins by nginx's
// precedence (our *.example.com against their www.example.com) is returned
// as a warning.
func (t *Tree) Conflicts(spec SiteSpec, ownPath string) (warnings []string, err error) {
	keys := []string{listenKey(spec.Listen)}
	if spec.TLS != nil && !spec.TLS.Pending {
		keys = append(keys, listenKey(spec.TLS.Listen)) // the HTTPS port too
	}
	for _, key := range keys {
		w, err := t.conflictsOn(spec, ownPath, key)
		if err != nil {
			return nil, err
		}
		warnings = append(warnings, w...)
	}
	return warnings, nil
}

// conflictsOn is Conflicts for one listen address.
func (t *Tree) conflictsOn(spec SiteSpec, ownPath, key string) (warnings []string, err error) {
	ours := append([]string{spec.Domain}, spec.Aliases...)
	own := resolved(ownPath)
	for _, b := range t.Servers() {
		if !slices.Contains(b.listenKeys(), key) {
			continue
		}
		// whether the block is the site's own file is asked only of a block
		// whose names meet ours: resolving every file's symlinks was most
		// of a deploy's conflict check at 10,000 sites on one port
		isOwn := sync.OnceValue(func() bool { return resolved(b.File) == own })
		for _, n := range ours {
			for _, theirs := range b.ServerNames {
				meets := sameName(n, theirs)
				warns := !meets && kindOf(n) != nameExact && kindOf(theirs) != nameRegex && beats(theirs, n)
				if (!meets && !warns) || isOwn() {
					continue
				}
				if meets {
					return nil, &ConflictError{n, key, b.File, b.Line, b.Managed}
				}
				warnings = append(warnings, fmt.Sprintf("%s is served by %s:%d, not by %s (nginx prefers %s)", theirs, b.File, b.Line, n, theirs))
			}
		}
	}
	return warnings, nil
}

// beats reports whether server_name theirs takes some hosts that our
// wildcard would match: it is more specific and matches inside ours.
func beats(theirs, ours string) bool {
	for _, t := range nameForms(theirs) {
		host := t
		if kindOf(t) != nameExact {
			host = wildcardExample(t)
		}
		ts, tok := nameMatch(t, host)
		us, uok := nameMatch(ours, host)
		if tok && uok && ts > us {
			return true
		}
	}
	return false
}

// wildcardExample makes a host a wildcard name matches.
func wildcardExample(name string) string {
	switch kindOf(name) {
	case nameLeadingWildcard:
		return "x" + name[1:]
	case nameTrailingWildcard:
		return name[:len(name)-1] + "x"
	}
	return name
}

// resolved follows symlinks so sites-enabled/x and sites-available/x compare
// equal; a path that does not exist yet stays as it is.
func resolved(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	if _, err := os.Lstat(p); err != nil {
		return filepath.Clean(p)
	}
	return p
}
