package nginxconf

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tufanbarisyildirim/gonginx/config"
	"github.com/tufanbarisyildirim/gonginx/parser"
)

// buildCorpus is every nginx config in testdata, what Render makes, and
// forms the two tokenizers could read differently.
func buildCorpus(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	_ = filepath.WalkDir("../testdata", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".conf") || strings.Contains(p, "/nginx/") || strings.Contains(p, "sites-")) {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && len(b) < 1<<20 {
			out[p] = b
		}
		return nil
	})
	for name, src := range map[string]string{
		"quotes":            "server_name \"a b\" 'c;d' e\"f;\nadd_header X \"a\nb\";\n",
		"nested":            "http {\n  upstream u {\n    server 127.0.0.1:1 weight=2;\n    server unix:/x;\n  }\n  server {\n    location = / { return 200; }\n    location ^~ /a/ {\n      if ($x ~ ^/b) { return 301 https://$host$request_uri; }\n    }\n  }\n}\n",
		"include":           "include a/*.conf;\nhttp { include 'b c'; server { include uwsgi_params; } }\n",
		"comments":          "# top\nworker_processes 1; # inline\nhttp { # after brace\n  # before\n  server { listen 80 # mid\n   default_server; }\n}\n",
		"empty blocks":      "events {}\nhttp { server { } }\n",
		"multi-line":        "log_format main\n  '$remote_addr'\n  \"$request\";\nmap $a $b {\n  default 0;\n  ~x 1;\n}\n",
		"crlf":              "http {\r\n  server {\r\n    listen 80;\r\n  }\r\n}\r\n",
		"server outside":    "server 1.2.3.4;\nstream { server { listen 53 udp; } }\n",
		"quoted name":       "\"server_name\" a;\n",
		"words with marks":  "location ~* \\.php$ { }\nset $a b#c;\n",
		"marks in comments": "# `pyvhost deploy` \\ ${x} a_by_lua_block\nhttp { server { listen 80; } # `x`\n}\n",
	} {
		out["snippet: "+name] = []byte(src)
	}
	return out
}

// TestBuildMatchesGonginx: for every file the fast path takes, its tree is
// gonginx's own, comments aside; and the corpus exercises the fast path.
func TestBuildMatchesGonginx(t *testing.T) {
	fast := 0
	for name, src := range buildCorpus(t) {
		if compareBuild(t, name, src) {
			fast++
		}
	}
	t.Logf("%d files took the fast path", fast)
	if fast < 20 {
		t.Errorf("only %d files took the fast path: the comparison proves little", fast)
	}
}

// FuzzBuildMatchesGonginx: whatever the input, the fast path's tree is
// gonginx's.
func FuzzBuildMatchesGonginx(f *testing.F) {
	for _, src := range buildCorpus(f) {
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) { compareBuild(t, "fuzz", src) })
}

// compareBuild checks src's fast tree against gonginx's; false when the
// fast path does not take src.
func compareBuild(t *testing.T, name string, src []byte) bool {
	t.Helper()
	toks, err := scan(src)
	if err != nil || !plain(src, toks) {
		return false
	}
	if _, err := blocks(toks, strings.Count(string(src), "\n")+1); err != nil {
		return false
	}
	got, gotErr := build(name, toks)
	want, wantErr := parser.NewStringParser(string(src), parser.WithSkipValidDirectivesErr()).Parse()
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("%s: fast path error %v, gonginx %v\n%s", name, gotErr, wantErr, src)
	}
	if gotErr != nil {
		return true
	}
	want.FilePath = name
	stripComments(reflect.ValueOf(want), map[uintptr]bool{})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: the fast path's tree differs from gonginx's\nfast:    %s\ngonginx: %s\n%s", name, dumpTree(got.Block), dumpTree(want.Block), src)
	}
	return true
}

// stripComments zeroes gonginx's comment fields, which the fast path does
// not fill (nothing reads them).
func stripComments(v reflect.Value, seen map[uintptr]bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return
		}
		if v.Kind() == reflect.Pointer {
			if seen[v.Pointer()] {
				return
			}
			seen[v.Pointer()] = true
		}
		stripComments(v.Elem(), seen)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Field(i)
			switch name := v.Type().Field(i).Name; {
			case (name == "Comment" || name == "InlineComment") && f.CanSet():
				f.Set(reflect.Zero(f.Type()))
			case name == "Parent":
				// a back pointer: its target is walked from the root
			default:
				stripComments(f, seen)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			stripComments(v.Index(i), seen)
		}
	}
}

// dumpTree is a tree as text, for a failure's message.
func dumpTree(b config.IBlock) string {
	if b == nil {
		return "-"
	}
	var sb strings.Builder
	for _, d := range b.GetDirectives() {
		sb.WriteString(reflect.TypeOf(d).String() + " " + d.GetName())
		for _, p := range d.GetParameters() {
			sb.WriteString(" " + p.Value)
		}
		sb.WriteString(" @" + strconv.Itoa(d.GetLine()))
		if d.GetBlock() != nil {
			sb.WriteString(" {" + dumpTree(d.GetBlock()) + "}")
		}
		sb.WriteString("; ")
	}
	return sb.String()
}
