package wire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// A two-var GET packet, byte by byte.
var literal = []byte{
	0x00, 0x1a, 0x00, 0x00, // modifier1 0, size 26 (LE), modifier2 0
	0x0e, 0x00, 'R', 'E', 'Q', 'U', 'E', 'S', 'T', '_', 'M', 'E', 'T', 'H', 'O', 'D',
	0x03, 0x00, 'G', 'E', 'T',
	0x01, 0x00, 'X',
	0x00, 0x00, // empty value is allowed
}

func TestDecodeLiteral(t *testing.T) {
	r, err := Decode(literal, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := []Var{{"REQUEST_METHOD", "GET"}, {"X", ""}}
	if r.Modifier1 != 0 || r.Size != 26 || !reflect.DeepEqual(r.Vars, want) {
		t.Fatalf("got %+v", r)
	}
	enc, err := Encode(0, 0, want)
	if err != nil || !bytes.Equal(enc, literal) {
		t.Fatalf("Encode = % x, %v; want % x", enc, err, literal)
	}
}

// TestNginxCaptures re-encodes the vars of packets captured from nginx
// 1.22 and checks the size nginx put in the header, then decodes them back.
func TestNginxCaptures(t *testing.T) {
	f, err := os.Open("../../testdata/wire/nginx-1.22-uwsgi-packets.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var p struct {
			Modifier1, Modifier2 uint8
			Size                 int
			Vars                 [][2]string
			Body                 string
		}
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		var vars []Var
		for _, kv := range p.Vars {
			vars = append(vars, Var{kv[0], kv[1]})
		}
		raw, err := Encode(p.Modifier1, p.Modifier2, vars)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw)-HeaderSize != p.Size {
			t.Errorf("packet %d: encoded vars are %d bytes, nginx sent %d", n, len(raw)-HeaderSize, p.Size)
		}
		// The body follows on the stream; ReadRequest must stop before it.
		stream := bytes.NewReader(append(raw, p.Body...))
		r, got, err := ReadRequest(stream, DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, raw) || !reflect.DeepEqual(r.Vars, vars) {
			t.Errorf("packet %d: round trip differs", n)
		}
		if rest := stream.Len(); rest != len(p.Body) {
			t.Errorf("packet %d: read into the body (%d of %d bytes left)", n, rest, len(p.Body))
		}
		if r.Get("CONTENT_LENGTH") != "" && r.Get("CONTENT_LENGTH") != "11" {
			t.Errorf("packet %d: CONTENT_LENGTH %q", n, r.Get("CONTENT_LENGTH"))
		}
		n++
	}
	if n < 3 {
		t.Fatalf("only %d captured packets", n)
	}
}

func TestDuplicateKeysLastWins(t *testing.T) {
	r := &Request{Vars: []Var{{"HTTP_COOKIE", "a=1"}, {"HTTP_COOKIE", "b=2"}}}
	if r.Get("HTTP_COOKIE") != "b=2" {
		t.Fatal("last value must win, as in uWSGI")
	}
	if _, ok := r.Lookup("NOPE"); ok {
		t.Fatal("Lookup found an absent key")
	}
}

func TestDecodeRefusals(t *testing.T) {
	big := make([]Var, 0)
	for i := 0; i < 129; i++ {
		big = append(big, Var{"K", "v"})
	}
	tooMany, _ := Encode(0, 0, big)
	hugeVal, _ := Encode(0, 0, []Var{{"K", strings.Repeat("x", 5000)}})
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"short header", []byte{0, 1}, ErrTruncated},
		{"block shorter than header says", []byte{0, 10, 0, 0, 1, 0}, ErrTruncated},
		{"key length past end", []byte{0, 3, 0, 0, 9, 0, 'A'}, ErrTruncated},
		{"value length missing", []byte{0, 3, 0, 0, 1, 0, 'A'}, ErrTruncated},
		{"empty key", []byte{0, 4, 0, 0, 0, 0, 0, 0}, ErrEmptyKey},
		{"129 vars", tooMany, ErrTooManyVars},
		{"over buffer size", hugeVal, ErrTooLarge},
	}
	for _, tc := range tests {
		if _, err := Decode(tc.raw, DefaultLimits); !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := Decode(hugeVal, Limits{BufferSize: MaxBufferSize, MaxVars: 128}); err != nil {
		t.Errorf("a larger --buffer-size must accept the packet: %v", err)
	}
	var se *SizeError
	if _, _, err := ReadRequest(bytes.NewReader(hugeVal), DefaultLimits); !errors.As(err, &se) || se.Size != 5005 || se.Max != 4096 {
		t.Errorf("ReadRequest error = %v, want a SizeError 5005 > 4096", err)
	}
}

func TestEncodeRefusesOversize(t *testing.T) {
	if _, err := Encode(0, 0, []Var{{"K", strings.Repeat("x", 70000)}}); err == nil {
		t.Fatal("a 70000-byte value was encoded")
	}
	if _, err := Encode(0, 0, []Var{{"K", strings.Repeat("x", 40000)}, {"L", strings.Repeat("y", 40000)}}); err == nil {
		t.Fatal("an 80000-byte block was encoded")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(literal)
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := Decode(raw, Limits{BufferSize: MaxBufferSize, MaxVars: 1000})
		if err != nil {
			return
		}
		again, err := Encode(r.Modifier1, r.Modifier2, r.Vars)
		if err != nil {
			t.Fatalf("decoded vars do not encode: %v", err)
		}
		if !bytes.Equal(again, raw[:HeaderSize+int(r.Size)]) {
			t.Fatalf("decode/encode round trip differs")
		}
	})
}
