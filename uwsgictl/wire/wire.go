// Package wire encodes and decodes the uwsgi protocol's request packets:
// a 4-byte header (modifier1, little-endian vars size, modifier2) followed
// by the vars block, each var a little-endian uint16-length-prefixed key
// and value. The request body follows on the stream; its length is the
// CONTENT_LENGTH var. Standard library only.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderSize is the size of a uwsgi packet header.
const HeaderSize = 4

// Defaults and bounds of the limits, as uWSGI has them.
const (
	DefaultBufferSize = 4096  // uWSGI's --buffer-size default
	MaxBufferSize     = 65535 // the header's 16-bit size field
	DefaultMaxVars    = 128   // uWSGI's default: --max-vars 64 gives 128 pairs
)

// Header is a uwsgi packet header.
type Header struct {
	Modifier1 uint8
	Size      uint16 // size of the vars block, body not included
	Modifier2 uint8
}

// ParseHeader decodes a packet header.
func ParseHeader(b [HeaderSize]byte) Header {
	return Header{Modifier1: b[0], Size: binary.LittleEndian.Uint16(b[1:3]), Modifier2: b[3]}
}

// Bytes encodes the header.
func (h Header) Bytes() [HeaderSize]byte {
	var b [HeaderSize]byte
	b[0] = h.Modifier1
	binary.LittleEndian.PutUint16(b[1:3], h.Size)
	b[3] = h.Modifier2
	return b
}

// Var is one request variable. Keys may repeat; the last value wins.
type Var struct{ Key, Value string }

// Request is a decoded request packet, without its body.
type Request struct {
	Header
	Vars []Var
}

// Get returns the last value of key, or "".
func (r *Request) Get(key string) string {
	v, _ := r.Lookup(key)
	return v
}

// Lookup returns the last value of key and whether it was present.
func (r *Request) Lookup(key string) (string, bool) {
	for i := len(r.Vars) - 1; i >= 0; i-- {
		if r.Vars[i].Key == key {
			return r.Vars[i].Value, true
		}
	}
	return "", false
}

// Limits bound what a decoder accepts.
type Limits struct {
	BufferSize int // largest vars block (uWSGI's --buffer-size)
	MaxVars    int // most key/value pairs
}

// DefaultLimits are uWSGI's defaults.
var DefaultLimits = Limits{BufferSize: DefaultBufferSize, MaxVars: DefaultMaxVars}

// Errors a decoder returns. Each is a refusal of one request, never a
// reason to stop serving.
var (
	ErrTooLarge    = errors.New("uwsgi vars block larger than the buffer size")
	ErrTooManyVars = errors.New("too many uwsgi vars")
	ErrTruncated   = errors.New("uwsgi var runs past the end of the block")
	ErrEmptyKey    = errors.New("uwsgi var with an empty key")
)

// SizeError is ErrTooLarge with the numbers, for the log.
type SizeError struct{ Size, Max int }

func (e *SizeError) Error() string {
	return fmt.Sprintf("uwsgi vars block of %d bytes is larger than the buffer size %d (raise --buffer-size, up to %d)", e.Size, e.Max, MaxBufferSize)
}
func (e *SizeError) Unwrap() error { return ErrTooLarge }

// ParseVars decodes a vars block.
func ParseVars(block []byte, maxVars int) ([]Var, error) {
	vars := make([]Var, 0, 32)
	for len(block) > 0 {
		if len(vars) >= maxVars {
			return nil, fmt.Errorf("%w: more than %d", ErrTooManyVars, maxVars)
		}
		key, rest, err := lengthPrefixed(block)
		if err != nil {
			return nil, err
		}
		if len(key) == 0 {
			return nil, ErrEmptyKey
		}
		val, rest, err := lengthPrefixed(rest)
		if err != nil {
			return nil, err
		}
		vars = append(vars, Var{string(key), string(val)})
		block = rest
	}
	return vars, nil
}

func lengthPrefixed(b []byte) (s, rest []byte, err error) {
	if len(b) < 2 {
		return nil, nil, ErrTruncated
	}
	n := int(binary.LittleEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, nil, ErrTruncated
	}
	return b[2 : 2+n], b[2+n:], nil
}

// ReadRequest reads one packet's header and vars from r. It returns the
// request and the raw bytes read (header and vars), which a router passes
// on unchanged to the worker that serves the request.
func ReadRequest(r io.Reader, lim Limits) (*Request, []byte, error) {
	var hb [HeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return nil, nil, fmt.Errorf("read uwsgi header: %w", err)
	}
	h := ParseHeader(hb)
	if int(h.Size) > lim.BufferSize {
		return nil, hb[:], &SizeError{int(h.Size), lim.BufferSize}
	}
	raw := make([]byte, HeaderSize+int(h.Size))
	copy(raw, hb[:])
	if _, err := io.ReadFull(r, raw[HeaderSize:]); err != nil {
		return nil, raw, fmt.Errorf("read uwsgi vars: %w", err)
	}
	vars, err := ParseVars(raw[HeaderSize:], lim.MaxVars)
	if err != nil {
		return nil, raw, err
	}
	return &Request{Header: h, Vars: vars}, raw, nil
}

// Decode parses a complete packet (header and vars) held in memory.
func Decode(raw []byte, lim Limits) (*Request, error) {
	if len(raw) < HeaderSize {
		return nil, ErrTruncated
	}
	h := ParseHeader([HeaderSize]byte(raw[:HeaderSize]))
	if int(h.Size) > lim.BufferSize {
		return nil, &SizeError{int(h.Size), lim.BufferSize}
	}
	if len(raw) < HeaderSize+int(h.Size) {
		return nil, ErrTruncated
	}
	vars, err := ParseVars(raw[HeaderSize:HeaderSize+int(h.Size)], lim.MaxVars)
	if err != nil {
		return nil, err
	}
	return &Request{Header: h, Vars: vars}, nil
}

// Encode builds a request packet: header then vars. It is for tests and
// clients; nginx is the usual sender.
func Encode(modifier1, modifier2 uint8, vars []Var) ([]byte, error) {
	size := 0
	for _, v := range vars {
		if len(v.Key) > 0xffff || len(v.Value) > 0xffff {
			return nil, fmt.Errorf("uwsgi var %q: longer than 65535 bytes", v.Key)
		}
		size += 4 + len(v.Key) + len(v.Value)
	}
	if size > MaxBufferSize {
		return nil, fmt.Errorf("uwsgi vars block of %d bytes: larger than %d", size, MaxBufferSize)
	}
	out := make([]byte, HeaderSize, HeaderSize+size)
	h := Header{Modifier1: modifier1, Size: uint16(size), Modifier2: modifier2}.Bytes()
	copy(out, h[:])
	for _, v := range vars {
		out = binary.LittleEndian.AppendUint16(out, uint16(len(v.Key)))
		out = append(out, v.Key...)
		out = binary.LittleEndian.AppendUint16(out, uint16(len(v.Value)))
		out = append(out, v.Value...)
	}
	return out, nil
}
