package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"
)

// TestSpecial8: the word test flags a word exactly when a byte of it is
// not a plain string's.
func TestSpecial8(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			for _, fill := range []byte{'a', ' ', '~', '0'} {
				w := bytes.Repeat([]byte{fill}, 8)
				w[pos] = byte(c)
				if got := special8(binary.LittleEndian.Uint64(w)); got != !plainByte[c] {
					t.Fatalf("byte %#x at %d among %q: special %v", c, pos, fill, got)
				}
			}
		}
	}
}

// whole reports whether b is one value Value takes, and nothing after.
func whole(b []byte) bool {
	s := Scanner{B: b}
	_, ok := s.Value()
	return ok && s.End()
}

func depth(v any) int {
	d := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			d = max(d, depth(e))
		}
		return d + 1
	case []any:
		for _, e := range v {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}

// agrees fails t unless Value takes b exactly when encoding/json finds it
// valid (but for nesting beyond maxDepth, which it declines).
func agrees(t *testing.T, b []byte) bool {
	t.Helper()
	got, want := whole(b), json.Valid(b)
	if got && !want {
		t.Fatalf("%q: taken, invalid for encoding/json", b)
	}
	if want && !got {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%q: valid and undecodable: %v", b, err)
		}
		if depth(v) <= maxDepth {
			t.Fatalf("%q: declined, valid for encoding/json", b)
		}
	}
	return got
}

func TestValue(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{`{"a":[1,-2.5e+3,0,-0,0.5E7,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"],"b":{}}`, true},
		{" [ ] ", true},
		{`"\ud800"`, true},
		{"\"\xff\xfe\"", true},
		{`{"a":1,"a":2}`, true},
		{`01`, false},
		{`1.`, false},
		{`.5`, false},
		{`1e`, false},
		{`-`, false},
		{`+1`, false},
		{`"\x"`, false},
		{`"\u12g4"`, false},
		{"\"a\nb\"", false},
		{`{"a" 1}`, false},
		{`{"a":1,}`, false},
		{`[1,]`, false},
		{`{1:2}`, false},
		{`tru`, false},
		{`nul`, false},
		{`[1] 2`, false},
		{`"abc`, false},
		{``, false},
	} {
		if got := agrees(t, []byte(tt.in)); got != tt.ok {
			t.Errorf("%q: taken %v, want %v", tt.in, got, tt.ok)
		}
	}
	deep := bytes.Repeat([]byte("["), maxDepth+2)
	deep = append(deep, bytes.Repeat([]byte("]"), maxDepth+2)...)
	if whole(deep) {
		t.Error("nesting beyond maxDepth taken")
	}
	agrees(t, deep)
}

// FuzzValue: Value takes only what encoding/json finds valid, and all of
// it up to maxDepth.
func FuzzValue(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,-2.5e+3,true,null,"x\"\u00e9"],"b":{}}`,
		`{"jsonrpc":"2.0","id":3,"result":{"status":"executed","block":{"header":{"number":7}},"proof":{"aunts":["ab","cd"]}}}`,
		`[[[[]]]]`, `"\ud800\udc00"`, `-0.0e-0`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { agrees(t, b) })
}

func TestMembers(t *testing.T) {
	var m Members
	if m.Has(3) || !m.First(3) || !m.Has(3) || m.First(3) || m.Has(2) || !m.First(31) {
		t.Fatalf("members %b", m)
	}
}
