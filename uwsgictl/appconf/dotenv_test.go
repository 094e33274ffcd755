package appconf

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestParseDotenv(t *testing.T) {
	tests := []struct {
		name, src string
		want      map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"comments and blanks", "# a comment\n\n  # indented\nA=1\n", map[string]string{"A": "1"}},
		{"bare trimmed", "A =  hello world  \n", map[string]string{"A": "hello world"}},
		{"bare comment", "A=1 # one\nB=x#y\n", map[string]string{"A": "1", "B": "x#y"}},
		{"export", "export A=1\nexport\tB=2\n", map[string]string{"A": "1", "B": "2"}},
		{"a key named export", "export=1\n", map[string]string{"export": "1"}},
		{"empty value", "A=\nB=''\nC=\"\"\n", map[string]string{"A": "", "B": "", "C": ""}},
		{"single quotes literal", `A='a\nb $x "q"'` + "\n", map[string]string{"A": `a\nb $x "q"`}},
		{"double quote escapes", `A="a\nb\tc\"d\\e\$f\qg"` + "\n", map[string]string{"A": "a\nb\tc\"d\\e$f\\qg"}},
		{"multi-line double", "KEY=\"-----BEGIN-----\nline2\n-----END-----\"\nB=2\n", map[string]string{"KEY": "-----BEGIN-----\nline2\n-----END-----", "B": "2"}},
		{"multi-line single", "A='x\ny'\n", map[string]string{"A": "x\ny"}},
		{"comment after quotes", "A=\"x # not a comment\" # a comment\n", map[string]string{"A": "x # not a comment"}},
		{"equals in value", "DATABASE_URL=postgres://u:p@h/db?sslmode=require\n", map[string]string{"DATABASE_URL": "postgres://u:p@h/db?sslmode=require"}},
		{"later wins", "A=1\nA=2\n", map[string]string{"A": "2"}},
		{"crlf", "A=1\r\nB=\"x\"\r\n", map[string]string{"A": "1", "B": "x"}},
		{"no final newline", "A=1", map[string]string{"A": "1"}},
		{"utf-8", "GREETING=héllo ✓\n", map[string]string{"GREETING": "héllo ✓"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDotenv(".env", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseDotenvErrors(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		msg       string
	}{
		{"no equals", "A=1\nJUSTAWORD\n", 2, `"JUSTAWORD": want KEY=VALUE`},
		{"space in key", "MY KEY=1\n", 1, `"MY KEY=1": want KEY=VALUE`},
		{"bad key", "1A=1\n", 1, `variable name "1A"`},
		{"dash in key", "MY-KEY=1\n", 1, `variable name "MY-KEY"`},
		{"reserved", "PYVHOST_WORKER=x\n", 1, "pyvhost's own"},
		{"unclosed", "A=1\nB=\"abc\nC=2\n", 2, `B: no closing "`},
		{"text after quote", "A='x' y\n", 1, `A: "y" after the closing quote`},
		{"after multi-line", "A=\"x\ny\"\nbad\n", 3, `"bad": want KEY=VALUE`},
		{"nul", "A=x\x00y\n", 1, "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDotenv("prod.env", []byte(tt.src))
			var de *DotenvError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a DotenvError", err)
			}
			if de.Line != tt.line || !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "prod.env:") {
				t.Errorf("err = %q (line %d), want line %d and %q", err, de.Line, tt.line, tt.msg)
			}
		})
	}
}

// FuzzParseDotenv: any input parses or fails with a DotenvError, never
// panics, and every variable it yields is one an environment can hold
// and one the app may set.
func FuzzParseDotenv(f *testing.F) {
	for _, s := range []string{"A=1\n", "export A='x'\n", "A=\"a\\nb\nc\"\n", "# c\n\nB=x # y\n", "A=\"", "=1", "A='x' y"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		env, err := ParseDotenv("f", src)
		if err != nil {
			var de *DotenvError
			if !errors.As(err, &de) || de.Line < 1 || de.Line > strings.Count(string(src), "\n")+1 {
				t.Fatalf("err = %v: want a DotenvError with a line in the file", err)
			}
			return
		}
		for k, v := range env {
			if ValidateKey(k) != nil || ValidateValue(k, v) != nil {
				t.Fatalf("parsed %q=%q, which is not a valid variable", k, v)
			}
		}
	})
}
