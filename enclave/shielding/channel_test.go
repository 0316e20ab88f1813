package shielding_test

import (
	"bytes"
	"crypto/hpke"
	"testing"

	"github.com/integritee-go/integritee/enclave/shielding"
)

// channelRecipient plays the enclave's end: the channel key of an open
// ciphertext's encapsulation.
func channelRecipient(t testing.TB, sk hpke.PrivateKey, enc []byte) []byte {
	t.Helper()
	r, err := hpke.NewRecipient(enc, sk, shielding.KDF(), shielding.AEAD(), []byte(shielding.InfoChannel))
	if err != nil {
		t.Fatal(err)
	}
	k, err := shielding.ChannelKey(r)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestChannelRoundTrip(t *testing.T) {
	sk, err := shielding.KEM().GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ch, err := shielding.NewChannel(sk.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("signed trusted call")
	open := ch.Seal(msg, true)
	p, err := shielding.ParseChannel(open)
	if err != nil || !p.Open || p.ID != ch.ID() {
		t.Fatalf("open ciphertext: %+v %v", p, err)
	}
	aead, err := shielding.ChannelAEAD(channelRecipient(t, sk, p.Enc))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := p.OpenWith(aead); err != nil || !bytes.Equal(pt, msg) {
		t.Fatalf("open: %q %v", pt, err)
	}
	seen := map[string]bool{string(open): true}
	for range 3 {
		data := ch.Seal(msg, false)
		if seen[string(data)] {
			t.Fatal("two seals of one message are equal: a nonce repeated")
		}
		seen[string(data)] = true
		q, err := shielding.ParseChannel(data)
		if err != nil || q.Open || q.ID != ch.ID() {
			t.Fatalf("data ciphertext: %+v %v", q, err)
		}
		if pt, err := q.OpenWith(aead); err != nil || !bytes.Equal(pt, msg) {
			t.Fatalf("data: %q %v", pt, err)
		}
		// The header is authenticated: the same body under another
		// channel's ID does not open.
		other := bytes.Clone(data)
		other[len(shielding.ChannelMagic)+1] ^= 1
		if q, err := shielding.ParseChannel(other); err != nil {
			t.Fatal(err)
		} else if _, err := q.OpenWith(aead); err == nil {
			t.Fatal("a data ciphertext opened under another channel ID")
		}
	}
	// Another HPKE info (a one-shot call's) gives another key.
	r, err := hpke.NewRecipient(p.Enc, sk, shielding.KDF(), shielding.AEAD(), []byte(shielding.InfoTrustedCall))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := shielding.ChannelKey(r)
	wrong, _ := shielding.ChannelAEAD(k)
	if _, err := p.OpenWith(wrong); err == nil {
		t.Fatal("a channel opened under another HPKE info")
	}
	// One-shot ciphertexts are never parsed as channel ones.
	for range 8 {
		ct, err := shielding.Encrypt(sk.PublicKey().Bytes(), shielding.InfoTrustedCall, msg)
		if err != nil || shielding.IsChannel(ct) {
			t.Fatalf("one-shot ciphertext taken for a channel one: %v", err)
		}
	}
}

// FuzzParseChannel: whatever bytes a host passes as a channel ciphertext,
// parsing never panics, and what it accepts is split exactly: header,
// nonce and sealed body are the whole input, the ID is the
// encapsulation's for an open ciphertext.
func FuzzParseChannel(f *testing.F) {
	sk, err := shielding.KEM().GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	ch, err := shielding.NewChannel(sk.PublicKey().Bytes())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ch.Seal([]byte("call"), true))
	f.Add(ch.Seal([]byte("call"), false))
	f.Add([]byte(shielding.ChannelMagic))
	f.Fuzz(func(t *testing.T, ct []byte) {
		p, err := shielding.ParseChannel(ct)
		if err != nil {
			return
		}
		whole := append(bytes.Clone(p.Header), p.Sealed...)
		if !bytes.Equal(whole, ct) || len(p.Nonce) != 12 || !bytes.HasSuffix(p.Header, p.Nonce) || len(p.Sealed) < 16 {
			t.Fatalf("parse of %x: header %x nonce %x sealed %x", ct, p.Header, p.Nonce, p.Sealed)
		}
		if p.Open && p.ID != shielding.ChannelID(p.Enc) {
			t.Fatal("an open ciphertext's ID is not its encapsulation's")
		}
	})
}
