package rpc

import (
	"encoding/binary"
	"encoding/json"

	"github.com/integritee-go/integritee/worker/rpc/api"
)

// The fast path reads the requests that clients send under load (a
// request object of the four JSON-RPC members, params of plain strings)
// without reflection, in one pass: encoding/json scanned such a message
// four times (validation and decoding of the envelope, then of the params
// through a strict Decoder), a ninth of the worker's CPU per call. It
// accepts only what it reads exactly as encoding/json does and declines
// everything else (escapes, other keys, keys in another case, a key twice,
// ids other than plain strings and integers), which then takes the
// encoding/json path as before. FuzzFastRequest holds it to that.

// jsonScan reads JSON from b at i.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and consumes c if it comes next.
func (s *jsonScan) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// plain reads a string of printable ASCII without escapes and returns its
// contents, which are then what encoding/json decodes it to.
func (s *jsonScan) plain() ([]byte, bool) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	j := start
	for j+8 <= len(s.b) && !special8(binary.LittleEndian.Uint64(s.b[j:])) {
		j += 8
	}
	for j < len(s.b) && plainByte[s.b[j]] {
		j++
	}
	if j == len(s.b) || s.b[j] != '"' {
		return nil, false
	}
	s.i = j + 1
	return s.b[start:j], true
}

// special8 reports whether any of the 8 bytes in x is not a plain
// string's (the word-at-a-time tests of "Bit Twiddling Hacks", hasless
// and haszero, which never miss a byte, though they may flag a wrong one).
func special8(x uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	quote, backslash, del := x^(lo*'"'), x^(lo*'\\'), x^(lo*0x7f)
	return ((x-lo*0x20)&^x|x|(quote-lo)&^quote|(backslash-lo)&^backslash|(del-lo)&^del)&hi != 0
}

// plainByte tells the bytes a plain string holds: printable ASCII but the
// quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// id reads a plain string or an integer without fraction or exponent and
// returns its JSON text.
func (s *jsonScan) id() ([]byte, bool) {
	s.space()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '"' {
		_, ok := s.plain()
		return s.b[start:s.i], ok
	}
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	switch n := s.i - digits; {
	case n == 0, n > 1 && s.b[digits] == '0':
		return nil, false
	}
	// A fraction or an exponent would follow here; the caller's next
	// token (',' or '}') then fails and the request is declined.
	return s.b[start:s.i], true
}

// object reads an object of plain-string members, calling member for
// each; member reports whether it takes the member.
func (s *jsonScan) object(member func(key []byte) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		key, ok := s.plain()
		if !ok || !s.next(':') || !member(key) {
			return false
		}
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// end reports whether only white space is left.
func (s *jsonScan) end() bool {
	s.space()
	return s.i == len(s.b)
}

// fastRequest reads raw as parseRequest's json.Unmarshal would, if raw is
// a request of the common shape; ok is false otherwise. The request
// holds copies, not raw itself: raw may be a pooled buffer.
func fastRequest(raw []byte) (r request, ok bool) {
	s := jsonScan{b: raw}
	var seen [4]bool
	once := func(i int) bool {
		if seen[i] {
			return false
		}
		seen[i] = true
		return true
	}
	ok = s.object(func(key []byte) bool {
		switch string(key) {
		case "jsonrpc":
			v, ok := s.plain()
			r.JSONRPC = string(v)
			return ok && once(0)
		case "id":
			v, ok := s.id()
			r.ID = append(json.RawMessage(nil), v...)
			return ok && once(1)
		case "method":
			v, ok := s.plain()
			r.Method = string(v)
			return ok && once(2)
		case "params":
			s.space()
			start := s.i
			ok := s.object(func([]byte) bool { _, ok := s.plain(); return ok })
			r.Params = append(json.RawMessage(nil), s.b[start:s.i]...)
			return ok && once(3)
		}
		return false
	})
	if !ok || !s.end() {
		return request{}, false
	}
	return r, true
}

// fastParams decodes raw, a params object, into v as params' strict
// Decoder would, for the params of the calls and getters; ok is false if
// it cannot.
func fastParams(raw []byte, v any) (ok bool) {
	var names [2]string
	var dst [2]*string
	switch p := v.(type) {
	case *api.CallParams:
		names, dst = [2]string{"shard", "call"}, [2]*string{&p.Shard, &p.Call}
	case *api.GetterParams:
		names, dst = [2]string{"shard", "request"}, [2]*string{&p.Shard, &p.Request}
	default:
		return false
	}
	s := jsonScan{b: raw}
	var seen [2]bool
	ok = s.object(func(key []byte) bool {
		for i, name := range names {
			if string(key) == name && !seen[i] {
				seen[i] = true
				v, ok := s.plain()
				*dst[i] = string(v)
				return ok
			}
		}
		return false
	})
	if !ok || !s.end() {
		*dst[0], *dst[1] = "", ""
		return false
	}
	return true
}
