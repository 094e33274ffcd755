package deployer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
)

// Transaction applies a set of nginx file changes so they can be undone
// byte for byte. Before touching anything it writes a journal (the old
// bytes of every file it will change) into the state dir; Commit removes
// it. If the process dies in between, Recover on the next run finds the
// journal and puts the old files back.
type Transaction struct {
	journal string
	entries []journalEntry
}

type journalEntry struct {
	Path    string      `json:"path"`
	Dir     bool        `json:"dir,omitempty"`  // a directory the change creates
	Tree    bool        `json:"tree,omitempty"` // … with all that is put in it (removed whole)
	Existed bool        `json:"existed"`
	Symlink string      `json:"symlink,omitempty"` // the old link's target, when it was one
	Mode    fs.FileMode `json:"mode"`
	Old     []byte      `json:"old,omitempty"`
}

// journalName is the journal file in the state dir: outside every nginx
// include glob, so nginx never loads it.
const journalName = "nginx-transaction.json"

// Begin records the current state of every file the changes touch and
// applies the changes. On error the files are already restored, unless it
// also returns the transaction: then restoring failed too, and its
// journal stays for Rollback (or the next run's Recover) to finish.
func Begin(stateDir string, changes []nginxconf.Change) (*Transaction, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	t := &Transaction{journal: filepath.Join(stateDir, journalName)}
	removeStaleTemps(t.journal)
	if _, err := os.Stat(t.journal); err == nil {
		return nil, fmt.Errorf("an unfinished change is recorded in %s: run the command again to repair it first", t.journal)
	}
	for _, c := range changes {
		// A new file may need its directory (pyvhost.d/ on a single-file
		// config): record it, so a rollback removes it too.
		if dir := filepath.Dir(c.Path); !exists(dir) && !t.has(dir) {
			t.entries = append(t.entries, journalEntry{Path: dir, Dir: true})
		}
		e, err := snapshot(c.Path)
		if err != nil {
			return nil, err
		}
		t.entries = append(t.entries, e)
	}
	if err := writeJSONAtomic(t.journal, t.entries); err != nil {
		return nil, fmt.Errorf("write journal: %w", err)
	}
	for _, c := range changes {
		if err := applyChange(c); err != nil {
			if rerr := t.Rollback(); rerr != nil {
				// Not put back: the journal stays (it is how the next run
				// restores the files), and the caller's rollback, which
				// tries again, reports what could not be restored.
				return t, err
			}
			return nil, err
		}
	}
	return t, nil
}

func snapshot(path string) (journalEntry, error) {
	e := journalEntry{Path: path}
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return e, nil
	case err != nil:
		return e, err
	}
	e.Existed, e.Mode = true, st.Mode()
	if st.Mode()&fs.ModeSymlink != 0 {
		e.Symlink, err = os.Readlink(path)
		return e, err
	}
	e.Old, err = os.ReadFile(path)
	return e, err
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func (t *Transaction) has(path string) bool {
	for _, e := range t.entries {
		if e.Path == path {
			return true
		}
	}
	return false
}

// Reapply applies changes within a transaction that has applied others to
// the same files (a TLS site's first deploy writes its HTTP block with the
// ACME challenge, then the TLS blocks): files not journalled yet are, and
// the journal keeps the bytes from before the first.
func (t *Transaction) Reapply(changes []nginxconf.Change) error {
	for _, c := range changes {
		if !t.has(c.Path) {
			if err := t.Track(c.Path, false); err != nil {
				return err
			}
		}
		if c.Kind == nginxconf.Symlink {
			if target, err := os.Readlink(c.Path); err == nil && target == c.Target {
				continue // made by the first change already
			}
		}
		if c.Kind == nginxconf.Delete && !exists(c.Path) {
			continue
		}
		if err := applyChange(c); err != nil {
			return err
		}
	}
	return nil
}

func applyChange(c nginxconf.Change) error {
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o755); err != nil {
		return err
	}
	switch c.Kind {
	case nginxconf.Create, nginxconf.Modify:
		return writeFileAtomic(c.Path, c.New, 0o644)
	case nginxconf.Symlink:
		return os.Symlink(c.Target, c.Path)
	case nginxconf.Delete:
		return os.Remove(c.Path)
	}
	return fmt.Errorf("unknown change %q", c.Kind)
}

// Track adds a file the change is about to write outside nginx's tree (a
// release, an app's settings) to the journal, with its old bytes if it has
// any, or a directory it is about to create; an interrupted or failed
// change puts it back with the rest.
func (t *Transaction) Track(path string, dir bool) error {
	if t.has(path) {
		return nil
	}
	e := journalEntry{Path: path, Dir: dir}
	if !dir {
		var err error
		if e, err = snapshot(path); err != nil {
			return fmt.Errorf("journal %s: %w", path, err)
		}
	}
	t.entries = append(t.entries, e)
	if err := writeJSONAtomic(t.journal, t.entries); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	return nil
}

// TrackTree adds a directory the change is about to create, and others
// (a library: certmagic's ACME account) fill, to the journal: an
// interrupted or failed change removes it with all that is in it.
func (t *Transaction) TrackTree(path string) error {
	if t.has(path) {
		return nil
	}
	t.entries = append(t.entries, journalEntry{Path: path, Dir: true, Tree: true})
	if err := writeJSONAtomic(t.journal, t.entries); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	return nil
}

// Commit makes the changes final.
func (t *Transaction) Commit() error {
	if err := os.Remove(t.journal); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove journal: %w", err)
	}
	return nil
}

// Rollback puts every file back as it was, then forgets the journal.
func (t *Transaction) Rollback() error {
	if err := restore(t.entries); err != nil {
		return err
	}
	return t.Commit()
}

func restore(entries []journalEntry) error {
	var errs []error
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		removeStaleTemps(e.Path) // a write killed half-way leaves its temp file
		if asRecorded(e) {
			continue // never changed (or already put back): nothing to write
		}
		var err error
		switch {
		case !e.Existed && e.Tree:
			err = os.RemoveAll(e.Path)
		case !e.Existed: // a file, link or directory the change created
			if err = os.Remove(e.Path); errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
		case e.Symlink != "":
			if err = os.Remove(e.Path); err == nil || errors.Is(err, fs.ErrNotExist) {
				err = os.Symlink(e.Symlink, e.Path)
			}
		default:
			err = writeFileAtomic(e.Path, e.Old, e.Mode.Perm())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", e.Path, err))
		}
	}
	return errors.Join(errs...)
}

// asRecorded reports whether path is as its journal entry recorded it, so
// restoring it needs no write: a change that failed part-way, on a
// read-only directory say, restores what it changed and nothing else.
func asRecorded(e journalEntry) bool {
	now, err := snapshot(e.Path)
	if err != nil || now.Existed != e.Existed {
		return false
	}
	if !e.Existed {
		return true // still absent (a file or directory the change would create)
	}
	return now.Mode == e.Mode && now.Symlink == e.Symlink && bytes.Equal(now.Old, e.Old)
}

// PendingJournal is the journal of a change that was neither finished nor
// undone (a crash, or files that could not be put back), "" when there is
// none: nginx's files may then not be what pyvhost last wrote, until the
// next deploy, undeploy or rollback puts them back.
func PendingJournal(stateDir string) string {
	p := filepath.Join(stateDir, journalName)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// Recover finishes what a crashed run left: if a journal is in the state
// dir, the files it lists are put back as they were before that run. It
// reports whether it repaired anything.
func Recover(stateDir string) (bool, error) {
	path := filepath.Join(stateDir, journalName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var entries []journalEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return false, fmt.Errorf("journal %s is damaged (%v): check the nginx files it names by hand, then remove it", path, err)
	}
	if err := restore(entries); err != nil {
		return false, err
	}
	return true, os.Remove(path)
}

// tempPrefix is how writeFileAtomic names its temp file next to path.
func tempPrefix(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".pyvhost-")
}

// removeStaleTemps removes the temp files of writes to path that never
// reached their rename (the process was killed). Only callers holding the
// deploy lock use it: no other write can be under way.
func removeStaleTemps(path string) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	stale, _ := filepath.Glob(globEscape(tempPrefix(path)) + "*")
	for _, p := range stale {
		_ = os.Remove(p)
	}
}

// globEscape quotes the characters filepath.Glob treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// writeFileAtomic replaces path's content in one rename: a temp dot-file in
// the same directory (dot-files are never loaded by nginx's globs),
// fsynced, renamed over the target. A symlink is followed, so the link
// stays a link.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	tmp := fmt.Sprintf("%s%d", tempPrefix(path), time.Now().UnixNano())
	if err := writeSynced(tmp, data, mode); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, bare(err))
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, bare(err))
	}
	return nil
}

// writeSynced writes a new file and fsyncs it.
func writeSynced(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// bare is a file error without its path: the temp file's name says less
// than the file being written, which the caller names.
func bare(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, 0o600)
}
