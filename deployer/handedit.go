package deployer

import (
	"bytes"
	"fmt"

	"github.com/pyvhost/pyvhost/nginxconf"
)

// HandEditError is a change that would overwrite edits made by hand to the
// file pyvhost owns: its bytes are no longer the ones pyvhost last wrote
// (the newest release). Diff shows the edits, which the change would lose.
type HandEditError struct {
	Path    string
	Release int
	Diff    string
}

func (e *HandEditError) Error() string {
	return fmt.Sprintf("%s was edited by hand since pyvhost wrote it (release %d): this change would lose the edits shown; make them with pyvhost's flags (e.g. --max-body), or pass --force to overwrite them",
		e.Path, e.Release)
}

// checkHandEdits refuses a change to a site whose file differs from what
// pyvhost last recorded writing, unless force. A site with no release yet
// (made before pyvhost recorded them) is not checked.
func checkHandEdits(stateDir string, sc *nginxconf.SiteChanges, force bool) error {
	if force {
		return nil
	}
	for _, c := range sc.Changes {
		if c.Path != sc.SitePath || c.Kind == nginxconf.Create || c.Kind == nginxconf.Symlink {
			continue
		}
		all, err := Releases(stateDir, sc.Spec.Domain)
		if err != nil || len(all) == 0 {
			return err
		}
		last := all[len(all)-1]
		if bytes.Equal(last.Config, c.Old) {
			return nil
		}
		d, err := nginxconf.Change{Kind: nginxconf.Modify, Path: c.Path, Old: last.Config, New: c.Old}.Diff()
		if err != nil {
			return err
		}
		return &HandEditError{Path: c.Path, Release: last.N, Diff: d}
	}
	return nil
}
