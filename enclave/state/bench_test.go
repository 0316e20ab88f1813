package state

import (
	"bytes"
	"testing"
)

// BenchmarkBlind measures blinding a state key (each read and write of
// the state blinds its key).
func BenchmarkBlind(b *testing.B) {
	s := newState(b, 1)
	k := []byte("balances/free/0123456789abcdef0123456789abcdef")
	for b.Loop() {
		s.Blind(k)
	}
}

// BenchmarkEncrypt measures encrypting a changed entry's value (its
// synthetic nonce and AES-GCM).
func BenchmarkEncrypt(b *testing.B) {
	s := newState(b, 1)
	k := s.Blind([]byte("balances/free/x"))
	v := bytes.Repeat([]byte{7}, 14)
	for b.Loop() {
		s.encrypt(k, 5, v)
	}
}
