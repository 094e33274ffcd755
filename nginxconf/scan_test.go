package nginxconf

import (
	"strings"
	"testing"
)

func TestScanTokens(t *testing.T) {
	src := "a \"b;c\" 'd#e' f#g; # comment\nset $x ${host}_y;\r\nh {\n}\n"
	toks, err := scan([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range toks {
		got = append(got, tk.text)
	}
	want := []string{"a", `"b;c"`, "'d#e'", "f#g", ";", "set", "$x", "${host}_y", ";", "h", "{", "}"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("tokens = %q, want %q", got, want)
	}
	if toks[5].line != 2 || toks[9].line != 3 || toks[11].line != 4 {
		t.Fatalf("lines = %d %d %d, want 2 3 4", toks[5].line, toks[9].line, toks[11].line)
	}
}

func TestBlocksPositions(t *testing.T) {
	src := "http {\n  server\n  {\n    location / { x; }\n  }\n}\n"
	toks, err := scan([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	bl, err := blocks(toks, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name       string
		start, end int
		depth      int
	}{{"http", 1, 6, 0}, {"server", 2, 5, 1}, {"location", 4, 4, 2}}
	if len(bl) != len(want) {
		t.Fatalf("got %d blocks, want %d", len(bl), len(want))
	}
	for i, w := range want {
		b := bl[i]
		if b.name != w.name || b.startLine != w.start || b.closeLine != w.end || b.depth != w.depth {
			t.Errorf("block %d = %s %d-%d depth %d, want %+v", i, b.name, b.startLine, b.closeLine, b.depth, w)
		}
	}
}

// TestScanErrors uses nginx's own wording and lines (checked against
// nginx 1.22's `nginx -t`).
func TestScanErrors(t *testing.T) {
	tests := []struct {
		src  string
		line int
		msg  string
	}{
		{"http {\n", 2, `unexpected end of file, expecting "}"`},
		{"events {}\n}\nserver {}\n", 2, `unexpected "}"`},
		{"listen 80\n", 2, `unexpected end of file, expecting ";" or "}"`},
		{"a \"unterminated;\n", 1, "unterminated quoted string"},
		{"a \"x\"y;\n", 1, `after quoted string`},
		{"server { listen 80 }\n", 1, `unexpected "}"`},
		{";\n", 1, `unexpected ";"`},
		{"{ }\n", 1, `unexpected "{"`},
		{"content_by_lua_block { a = { b = 1 }\n", 2, `unexpected end of file, expecting "}"`},
	}
	for _, tc := range tests {
		_, err := ParseFile("f.conf", []byte(tc.src))
		ce, ok := err.(*ConfigError)
		if !ok {
			t.Errorf("%q: error = %v, want a ConfigError", tc.src, err)
			continue
		}
		if ce.Line != tc.line || !strings.Contains(ce.Msg, tc.msg) || ce.File != "f.conf" {
			t.Errorf("%q: got %s, want f.conf:%d: ...%s", tc.src, ce, tc.line, tc.msg)
		}
	}
}

func TestParseFileAcceptsRealWorldSyntax(t *testing.T) {
	srcs := []string{
		"if ($request_method = POST) { return 405; }\n",
		"if ( $host ~* \"^(www\\.)?(.*)$\" ) { set $a $2; }\n",
		"location ~ \"^/api/v\\d{1,2}/\" { }\n",
		"map $a $b { default 0; '' 1; \"~*x\" \"y;z\"; }\n",
		"content_by_lua_block { local t = { a = { b = 1 } } }\n",
		"server {\r\n listen 80;\r\n}\r\n",
		"",
		"# only a comment",
		"more_set_headers 'Server: x';\npassenger_enabled on;\n",
	}
	for _, s := range srcs {
		if _, err := ParseFile("f.conf", []byte(s)); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestUnquote(t *testing.T) {
	tests := map[string]string{
		`plain`:            "plain",
		`"a;b"`:            "a;b",
		`'a b'`:            "a b",
		`"esc \"q\" \\ x"`: `esc "q" \ x`,
		`'it\'s'`:          "it's",
		`"tab\there"`:      "tab\there",
		`"unclosed`:        `"unclosed`,
		`a\"b`:             `a"b`,
		`"\d{1,3}"`:        `\d{1,3}`,
	}
	for in, want := range tests {
		if got := unquote(in); got != want {
			t.Errorf("unquote(%s) = %q, want %q", in, got, want)
		}
	}
}
