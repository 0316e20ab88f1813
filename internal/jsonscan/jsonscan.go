// Package jsonscan reads the JSON-RPC messages that pass under load, the
// worker's requests and its answers, in one pass and without reflection.
// encoding/json validates a message before it decodes it and decodes
// through reflection: for a call's request (2.7 KB of hex) or its answer
// (a block header and a Merkle proof) that was a tenth of the worker's and
// of the load generator's CPU per call.
//
// A Scanner accepts only what it reads exactly as encoding/json does. Its
// callers take a fast path for the common shape of a message and decline
// everything else to encoding/json; their fuzz tests hold both to the
// same result.
package jsonscan

import "encoding/binary"

// Scanner reads JSON from B at I.
type Scanner struct {
	B []byte
	I int
}

// Space skips white space.
func (s *Scanner) Space() {
	for s.I < len(s.B) {
		switch s.B[s.I] {
		case ' ', '\t', '\n', '\r':
			s.I++
		default:
			return
		}
	}
}

// Next skips white space and consumes c if it comes next.
func (s *Scanner) Next(c byte) bool {
	s.Space()
	if s.I < len(s.B) && s.B[s.I] == c {
		s.I++
		return true
	}
	return false
}

// End reports whether only white space is left.
func (s *Scanner) End() bool {
	s.Space()
	return s.I == len(s.B)
}

// Plain reads a string of printable ASCII without escapes and returns its
// contents (aliasing B), which are then what encoding/json decodes it to.
func (s *Scanner) Plain() ([]byte, bool) {
	s.Space()
	if s.I >= len(s.B) || s.B[s.I] != '"' {
		return nil, false
	}
	start := s.I + 1
	j := start
	for j+8 <= len(s.B) && !special8(binary.LittleEndian.Uint64(s.B[j:])) {
		j += 8
	}
	for j < len(s.B) && plainByte[s.B[j]] {
		j++
	}
	if j == len(s.B) || s.B[j] != '"' {
		return nil, false
	}
	s.I = j + 1
	return s.B[start:j], true
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

// ID reads a plain string or an integer without fraction or exponent and
// returns its JSON text (aliasing B).
func (s *Scanner) ID() ([]byte, bool) {
	s.Space()
	start := s.I
	if s.I < len(s.B) && s.B[s.I] == '"' {
		_, ok := s.Plain()
		return s.B[start:s.I], ok
	}
	if s.I < len(s.B) && s.B[s.I] == '-' {
		s.I++
	}
	digits := s.I
	for s.I < len(s.B) && s.B[s.I] >= '0' && s.B[s.I] <= '9' {
		s.I++
	}
	switch n := s.I - digits; {
	case n == 0, n > 1 && s.B[digits] == '0':
		return nil, false
	}
	// A fraction or an exponent would follow here; the caller's next
	// token (',' or '}') then fails and the message is declined.
	return s.B[start:s.I], true
}

// Object reads an object whose keys are plain strings, calling member
// after each key's colon to read its value; member reports whether it
// took the member.
func (s *Scanner) Object(member func(key []byte) bool) bool {
	if !s.Next('{') {
		return false
	}
	if s.Next('}') {
		return true
	}
	for {
		key, ok := s.Plain()
		if !ok || !s.Next(':') || !member(key) {
			return false
		}
		if s.Next('}') {
			return true
		}
		if !s.Next(',') {
			return false
		}
	}
}

// Members records which members of an object were read: encoding/json
// takes the last of a key given twice, a fast path declines it.
type Members uint32

// First reports whether member i (below 32) is read for the first time,
// and records it.
func (m *Members) First(i int) bool {
	bit := Members(1) << i
	if *m&bit != 0 {
		return false
	}
	*m |= bit
	return true
}

// Has reports whether member i was read.
func (m Members) Has(i int) bool { return m&(1<<i) != 0 }

// maxDepth bounds the nesting Value follows (encoding/json's own limit is
// 10,000); deeper values are declined.
const maxDepth = 64

// Value reads any JSON value and returns its text (aliasing B). It
// validates as encoding/json does: the value's grammar, strings without
// control characters and with valid escapes (other bytes, valid UTF-8 or
// not, are taken as they are, as encoding/json's RawMessage takes them).
func (s *Scanner) Value() ([]byte, bool) {
	s.Space()
	start := s.I
	ok := s.value(0)
	return s.B[start:s.I], ok
}

func (s *Scanner) value(depth int) bool {
	if depth > maxDepth || s.I >= len(s.B) {
		return false
	}
	switch c := s.B[s.I]; {
	case c == '{':
		s.I++
		if s.Next('}') {
			return true
		}
		for {
			s.Space()
			if !s.str() || !s.Next(':') {
				return false
			}
			s.Space()
			if !s.value(depth + 1) {
				return false
			}
			if s.Next('}') {
				return true
			}
			if !s.Next(',') {
				return false
			}
		}
	case c == '[':
		s.I++
		if s.Next(']') {
			return true
		}
		for {
			s.Space()
			if !s.value(depth + 1) {
				return false
			}
			if s.Next(']') {
				return true
			}
			if !s.Next(',') {
				return false
			}
		}
	case c == '"':
		return s.str()
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(s.B)-s.I >= len(lit) && string(s.B[s.I:s.I+len(lit)]) == lit {
			s.I += len(lit)
			return true
		}
	}
	return false
}

// str reads a string with any escapes.
func (s *Scanner) str() bool {
	if s.I >= len(s.B) || s.B[s.I] != '"' {
		return false
	}
	s.I++
	for {
		for s.I+8 <= len(s.B) && !special8(binary.LittleEndian.Uint64(s.B[s.I:])) {
			s.I += 8
		}
		if s.I >= len(s.B) {
			return false
		}
		switch c := s.B[s.I]; {
		case c == '"':
			s.I++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.I+1 >= len(s.B) {
				return false
			}
			switch s.B[s.I+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.I += 2
			case 'u':
				if s.I+6 > len(s.B) {
					return false
				}
				for _, h := range s.B[s.I+2 : s.I+6] {
					if !isHex(h) {
						return false
					}
				}
				s.I += 6
			default:
				return false
			}
		default:
			s.I++
		}
	}
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// number reads a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *Scanner) number() bool {
	if s.B[s.I] == '-' {
		s.I++
	}
	switch {
	case s.I < len(s.B) && s.B[s.I] == '0':
		s.I++
	case s.digits() == 0:
		return false
	}
	if s.I < len(s.B) && s.B[s.I] == '.' {
		s.I++
		if s.digits() == 0 {
			return false
		}
	}
	if s.I < len(s.B) && (s.B[s.I] == 'e' || s.B[s.I] == 'E') {
		s.I++
		if s.I < len(s.B) && (s.B[s.I] == '+' || s.B[s.I] == '-') {
			s.I++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func (s *Scanner) digits() int {
	start := s.I
	for s.I < len(s.B) && s.B[s.I] >= '0' && s.B[s.I] <= '9' {
		s.I++
	}
	return s.I - start
}
