package nginxconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tufanbarisyildirim/gonginx/config"
)

// LayoutKind names how a configuration organises its sites.
type LayoutKind string

const (
	// LayoutDebian: http includes sites-enabled/*, files live in
	// sites-available and are enabled by a symlink.
	LayoutDebian LayoutKind = "debian"
	// LayoutConfD: http includes a conf.d/*.conf style directory.
	LayoutConfD LayoutKind = "conf.d"
	// LayoutSingleFile: http includes no site directory; pyvhost keeps its
	// files in pyvhost.d/ beside nginx.conf and adds one include line.
	LayoutSingleFile LayoutKind = "single-file"
)

// SingleFileDir is the directory pyvhost creates beside nginx.conf for a
// single-file configuration.
const SingleFileDir = "pyvhost.d"

// Layout says where pyvhost's own files go in a configuration.
type Layout struct {
	Kind       LayoutKind
	Dir        string // where pyvhost writes DOMAIN.conf
	EnabledDir string // debian: where the enabling symlink goes
	// single-file: the file holding the http block, and the include line
	// pyvhost must add to it when it is not there yet ("" when present).
	HTTPFile    string
	IncludeLine string
}

// SitePath is the file pyvhost writes for a domain.
func (l Layout) SitePath(domain string) string {
	return filepath.Join(l.Dir, FileStem(domain)+".conf")
}

// LoadedPath is the path nginx loads for a domain: the symlink on Debian.
func (l Layout) LoadedPath(domain string) string {
	if l.Kind == LayoutDebian {
		return filepath.Join(l.EnabledDir, FileStem(domain)+".conf")
	}
	return l.SitePath(domain)
}

// Describe says in one line which files pyvhost would own.
func (l Layout) Describe() string {
	switch l.Kind {
	case LayoutDebian:
		return fmt.Sprintf("debian: pyvhost owns %s and the symlink %s", l.SitePath("DOMAIN"), l.LoadedPath("DOMAIN"))
	case LayoutConfD:
		return fmt.Sprintf("conf.d: pyvhost owns %s", l.SitePath("DOMAIN"))
	default:
		s := fmt.Sprintf("single file: pyvhost owns %s", l.SitePath("DOMAIN"))
		if l.IncludeLine != "" {
			s += fmt.Sprintf(" and adds %q to the http block of %s", l.IncludeLine, l.HTTPFile)
		}
		return s
	}
}

// Layout detects how the configuration loads its sites, from the includes
// of its http block.
func (t *Tree) Layout() (Layout, error) {
	httpFile, http := t.httpBlock()
	if http == nil {
		return Layout{}, fmt.Errorf("%s: no http block: pyvhost adds sites to an http block", t.Main)
	}
	var confd, own string
	for _, d := range children(http) {
		inc, ok := d.(*config.Include)
		if !ok {
			continue
		}
		pattern := unquote(inc.IncludePath)
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(t.Prefix, pattern)
		}
		dir, glob := filepath.Split(pattern)
		dir = filepath.Clean(dir)
		if strings.ContainsAny(dir, "*?[") || !globAccepts(glob) {
			continue
		}
		switch filepath.Base(dir) {
		case "sites-enabled":
			avail := filepath.Join(filepath.Dir(dir), "sites-available")
			if st, err := os.Stat(avail); err == nil && st.IsDir() {
				return Layout{Kind: LayoutDebian, Dir: avail, EnabledDir: dir}, nil
			}
		case "conf.d":
			if confd == "" {
				confd = dir
			}
		case SingleFileDir:
			own = dir
		}
	}
	if confd != "" {
		return Layout{Kind: LayoutConfD, Dir: confd}, nil
	}
	l := Layout{Kind: LayoutSingleFile, Dir: filepath.Join(t.Prefix, SingleFileDir), HTTPFile: httpFile.Path}
	if own == "" {
		l.IncludeLine = "include " + SingleFileDir + "/*.conf;"
	}
	return l, nil
}

// globAccepts reports whether an include's file pattern loads DOMAIN.conf.
func globAccepts(glob string) bool {
	ok, err := filepath.Match(glob, "example.com.conf")
	return err == nil && ok && strings.ContainsAny(glob, "*?[")
}

// httpBlock finds the http block and the file that holds it.
func (t *Tree) httpBlock() (*File, config.IDirective) {
	main := t.byPath[t.Main]
	for _, e := range t.expand(main, main.Config.Directives) {
		if e.d.GetName() == "http" && e.d.GetBlock() != nil {
			return e.file, e.d
		}
	}
	return nil, nil
}

// addInclude returns src with line added just before the closing brace of
// the http block: a textual splice, so the rest of the user's file keeps
// every byte.
func (f *File) addInclude(http config.IDirective, line string) ([]byte, error) {
	b, ok := f.starts[http]
	if !ok {
		return nil, fmt.Errorf("%s: cannot locate the end of the http block", f.Path)
	}
	at := b.closeOff
	lineStart := at
	for lineStart > 0 && (f.Source[lineStart-1] == ' ' || f.Source[lineStart-1] == '\t') {
		lineStart--
	}
	nl := "\n"
	if strings.Contains(string(f.Source), "\r\n") {
		nl = "\r\n"
	}
	var out []byte
	out = append(out, f.Source[:lineStart]...)
	if lineStart > 0 && f.Source[lineStart-1] != '\n' {
		out = append(out, nl...)
	}
	out = append(out, "    "+line+nl...)
	out = append(out, f.Source[lineStart:]...)
	return out, nil
}
