package nginxconf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tufanbarisyildirim/gonginx/config"
	"github.com/tufanbarisyildirim/gonginx/parser"
)

// Tree is a whole nginx configuration: the main file and every file it
// includes, each parsed on its own so that every error names its file.
type Tree struct {
	Main   string  // absolute path of the main configuration file
	Prefix string  // directory of Main; relative includes resolve against it, as with nginx -c
	Files  []*File // every loaded file once, in the order nginx first opens it

	byPath   map[string]*File
	includes map[*config.Include][]*File
	ahead    map[string]parsed // files a glob matched, parsed in parallel, not yet loaded
	mainOnly bool              // LoadMain: includes inside blocks are not followed
	cache    *ParseCache       // files parsed by earlier loads; nil: none

	serversOnce sync.Once
	servers     []ServerBlock // Servers, walked once
}

// parsed is a file read and parsed ahead of its turn, or why it could not be.
type parsed struct {
	f   *File
	err error
}

// File is one parsed configuration file.
type File struct {
	Path   string // as nginx opens it: the glob match, symlinks not resolved
	Source []byte
	Config *config.Config

	starts map[config.IDirective]blockPos // block directives to their source position
}

// ConfigError is an error in a configuration file, located like nginx does.
type ConfigError struct {
	File string
	Line int // 0 when the parser gave no position
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// maxIncludeDepth bounds include nesting; nginx has no real limit, but a
// config that deep is a loop in disguise.
const maxIncludeDepth = 32

// Load reads the configuration rooted at main and every file it includes.
// Unknown directives are accepted (real configs use third-party modules);
// structure errors are reported with file and line.
func Load(main string) (*Tree, error) { return load(main, false, nil) }

// LoadMain reads only the main context: the main file and what it
// includes outside any block, which is where nginx takes pid and user
// from — not the http block's sites-enabled/*, 10,000 files on a big box.
// Its Servers and Sites are empty.
func LoadMain(main string) (*Tree, error) { return load(main, true, nil) }

func load(main string, mainOnly bool, cache *ParseCache) (*Tree, error) {
	abs, err := filepath.Abs(main)
	if err != nil {
		return nil, fmt.Errorf("load nginx config: %w", err)
	}
	t := &Tree{
		Main:     abs,
		Prefix:   filepath.Dir(abs),
		byPath:   map[string]*File{},
		includes: map[*config.Include][]*File{},
		ahead:    map[string]parsed{},
		mainOnly: mainOnly,
		cache:    cache,
	}
	if _, err := t.load(abs, nil); err != nil {
		return nil, err
	}
	return t, nil
}

// Mentions reports whether any file of the tree has s in its text: a cheap
// test before a walk of every block (a directive nobody wrote is in no
// block; comments may give false positives, never negatives).
func (t *Tree) Mentions(s string) bool {
	for _, f := range t.Files {
		if bytes.Contains(f.Source, []byte(s)) {
			return true
		}
	}
	return false
}

// File returns the loaded file at path, or nil.
func (t *Tree) File(path string) *File { return t.byPath[path] }

func (t *Tree) load(path string, stack []string) (*File, error) {
	if f, ok := t.byPath[path]; ok {
		return f, nil
	}
	p, ok := t.ahead[path]
	if ok {
		delete(t.ahead, path)
	} else {
		p.f, p.err = t.cache.parse(path)
	}
	if p.err != nil {
		return nil, p.err
	}
	f := p.f
	t.byPath[path] = f
	t.Files = append(t.Files, f)
	stack = append(stack, path)
	if err := t.loadIncludes(f, f.Config.Directives, stack); err != nil {
		return nil, err
	}
	return f, nil
}

func (t *Tree) loadIncludes(f *File, dirs []config.IDirective, stack []string) error {
	for _, d := range dirs {
		if inc, ok := d.(*config.Include); ok {
			files, err := t.resolveInclude(f, inc, stack)
			if err != nil {
				return err
			}
			t.includes[inc] = files
			continue
		}
		if t.mainOnly {
			continue
		}
		if err := t.loadIncludes(f, children(d), stack); err != nil {
			return err
		}
	}
	return nil
}

// resolveInclude loads the files an include names, as nginx would: relative
// to the prefix, globs sorted, dot-files skipped by wildcards, and a plain
// path that does not exist is an error.
func (t *Tree) resolveInclude(f *File, inc *config.Include, stack []string) ([]*File, error) {
	pattern := unquote(inc.IncludePath)
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(t.Prefix, pattern)
	}
	fail := func(msg string) error { return &ConfigError{f.Path, inc.GetLine(), msg} }
	var paths []string
	if strings.ContainsAny(pattern, "*?[") {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return nil, fail(fmt.Sprintf("include %q: %v", pattern, err))
		}
		for _, m := range matches {
			if strings.HasPrefix(filepath.Base(m), ".") {
				continue
			}
			if st, err := os.Stat(m); err == nil && st.IsDir() {
				continue
			}
			paths = append(paths, m)
		}
		sort.Strings(paths)
	} else {
		if _, err := os.Stat(pattern); err != nil {
			return nil, fail(fmt.Sprintf("include %q: %v", pattern, errors.Unwrap(err)))
		}
		paths = []string{pattern}
	}
	if len(stack) >= maxIncludeDepth {
		return nil, fail("includes nested too deep (a loop?)")
	}
	t.parseAhead(paths)
	var out []*File
	for _, p := range paths {
		for _, s := range stack {
			if s == p {
				return nil, fail(fmt.Sprintf("include cycle through %s", p))
			}
		}
		inf, err := t.load(p, stack)
		if err != nil {
			return nil, err
		}
		out = append(out, inf)
	}
	return out, nil
}

func readAndParse(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read nginx config: %w", err)
	}
	return ParseFile(path, src)
}

// parseAhead reads and parses, on every CPU at once, the files of a glob
// that are not loaded yet (a sites-enabled/* of 10,000 sites took most of
// `pyvhost sites`'s time on one); load then takes them in nginx's order,
// so the includes they make and the first error are the same as one by one.
func (t *Tree) parseAhead(paths []string) {
	var todo []string
	for _, p := range paths {
		if _, ok := t.byPath[p]; !ok {
			todo = append(todo, p)
		}
	}
	if len(todo) < parseAheadMin {
		return
	}
	out := make([]parsed, len(todo))
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(todo); i = int(next.Add(1) - 1) {
				out[i].f, out[i].err = t.cache.parse(todo[i])
			}
		}()
	}
	wg.Wait()
	for i, p := range todo {
		t.ahead[p] = out[i]
	}
}

// parseAheadMin is the fewest files worth parsing in parallel.
const parseAheadMin = 8

var lineInMsg = regexp.MustCompile(`(?:on|at) line (\d+)`)

// ParseFile parses one configuration file without following its includes.
// It never panics: gonginx panics on some inputs and those become errors.
func ParseFile(path string, src []byte) (f *File, err error) {
	toks, err := scan(src)
	lastLine := strings.Count(string(src), "\n") + 1
	if err == nil {
		var bl []blockPos
		bl, err = blocks(toks, lastLine)
		if err == nil {
			return parseChecked(path, src, toks, bl)
		}
	}
	var se *ScanError
	if errors.As(err, &se) {
		return nil, &ConfigError{path, se.Line, se.Msg}
	}
	return nil, &ConfigError{File: path, Msg: err.Error()}
}

// parseChecked makes gonginx's tree of a file the scanner has checked:
// from the tokens when the two tokenizers agree on it (build.go), else
// with gonginx's parser.
func parseChecked(path string, src []byte, toks []token, bl []blockPos) (f *File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, &ConfigError{File: path, Msg: fmt.Sprintf("parser failed: %v", r)}
		}
	}()
	var c *config.Config
	if plain(src, toks) {
		c, err = build(path, toks)
	} else {
		c, err = parser.NewStringParser(string(src), parser.WithSkipValidDirectivesErr()).Parse()
	}
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", "; ")
		line := 0
		if m := lineInMsg.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return nil, &ConfigError{path, line, msg}
	}
	c.FilePath = path
	f = &File{Path: path, Source: src, Config: c, starts: map[config.IDirective]blockPos{}}
	f.indexBlocks(bl)
	return f, nil
}

// indexBlocks pairs gonginx's block directives with the scanner's positions.
// gonginx only knows the line a block closes on, so blocks are matched by
// (name, closing line), in order.
func (f *File) indexBlocks(bl []blockPos) {
	type key struct {
		name string
		line int
	}
	queue := map[key][]blockPos{}
	for _, b := range bl {
		k := key{b.name, b.closeLine}
		queue[k] = append(queue[k], b)
	}
	var walk func(dirs []config.IDirective)
	walk = func(dirs []config.IDirective) {
		for _, d := range dirs {
			if d.GetBlock() == nil {
				continue
			}
			k := key{d.GetName(), d.GetLine()}
			if q := queue[k]; len(q) > 0 {
				f.starts[d] = q[0]
				queue[k] = q[1:]
			}
			walk(children(d))
		}
	}
	walk(f.Config.Directives)
}

// startLine is the line a block directive begins on (its name), falling back
// to gonginx's closing line when the two parsers disagree.
func (f *File) startLine(d config.IDirective) int {
	if b, ok := f.starts[d]; ok {
		return b.startLine
	}
	return d.GetLine()
}

// children returns a block directive's directives in source order. gonginx
// splits an http block's servers from its other directives; nginx's order
// matters (first server is the default), so merge them back by line.
func children(d config.IDirective) []config.IDirective {
	if h, ok := d.(*config.HTTP); ok {
		all := make([]config.IDirective, 0, len(h.Directives)+len(h.Servers))
		all = append(all, h.Directives...)
		for _, s := range h.Servers {
			all = append(all, s)
		}
		sort.SliceStable(all, func(i, j int) bool { return all[i].GetLine() < all[j].GetLine() })
		return all
	}
	b := d.GetBlock()
	if b == nil {
		return nil
	}
	return b.GetDirectives()
}
