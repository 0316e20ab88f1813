package keys_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/seal"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/tee/sim"
)

func backend(t *testing.T, m byte) *sim.Backend {
	t.Helper()
	b, err := sim.New(sim.Config{Measurement: &[32]byte{m}, SealingSecret: []byte("cpu")})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealUnsealSameKeys(t *testing.T) {
	b := backend(t, 1)
	shard := [32]byte{3}
	k, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.Seal(b, shard)
	if err != nil {
		t.Fatal(err)
	}
	r, err := keys.Unseal(backend(t, 1), shard, s)
	if err != nil {
		t.Fatal(err)
	}
	if !r.SignerPublic().Equal(k.SignerPublic()) || !bytes.Equal(r.ShieldingPublic(), k.ShieldingPublic()) ||
		!bytes.Equal(r.StateKey(), k.StateKey()) {
		t.Fatal("unsealed keys differ from the sealed ones")
	}
	msg := []byte("m")
	if !ed25519.Verify(k.SignerPublic(), msg, r.Sign(msg)) {
		t.Fatal("restored signer signs differently")
	}
	if !r.CheckTag(msg, k.Tag(msg)) || r.CheckTag([]byte("n"), k.Tag(msg)) {
		t.Fatal("tag key not restored")
	}
	ct, err := shielding.Encrypt(k.ShieldingPublic(), shielding.InfoTrustedCall, msg)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := r.Decrypt(shielding.InfoTrustedCall, ct); err != nil || !bytes.Equal(pt, msg) {
		t.Fatalf("Decrypt = %q, %v", pt, err)
	}
}

func TestUnsealRejects(t *testing.T) {
	b := backend(t, 1)
	shard := [32]byte{3}
	k, _ := keys.Generate()
	s, err := k.Seal(b, shard)
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(f func(*keys.Sealed)) keys.Sealed {
		c := keys.Sealed{Signer: bytes.Clone(s.Signer), Shielding: bytes.Clone(s.Shielding), State: bytes.Clone(s.State)}
		f(&c)
		return c
	}
	tests := []struct {
		name   string
		b      *sim.Backend
		shard  [32]byte
		sealed keys.Sealed
		want   error
	}{
		{"missing state", b, shard, tamper(func(c *keys.Sealed) { c.State = nil }), keys.ErrIncomplete},
		{"truncated signer", b, shard, tamper(func(c *keys.Sealed) { c.Signer = c.Signer[:10] }), seal.ErrTruncated},
		{"tampered shielding", b, shard, tamper(func(c *keys.Sealed) { c.Shielding[20] ^= 1 }), seal.ErrAuthentication},
		{"truncated state", b, shard, tamper(func(c *keys.Sealed) { c.State = c.State[:len(c.State)-1] }), seal.ErrAuthentication},
		{"swapped blobs", b, shard, tamper(func(c *keys.Sealed) { c.Signer, c.State = c.State, c.Signer }), seal.ErrAuthentication},
		{"other shard", b, [32]byte{4}, s, seal.ErrAuthentication},
		{"other enclave", backend(t, 2), shard, s, seal.ErrAuthentication},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keys.Unseal(tt.b, tt.shard, tt.sealed)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecryptRejects(t *testing.T) {
	k, _ := keys.Generate()
	other, _ := keys.Generate()
	ct, err := shielding.Encrypt(k.ShieldingPublic(), shielding.InfoTrustedCall, []byte("call"))
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(ct)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name string
		k    *keys.Keys
		info string
		ct   []byte
	}{
		{"other key", other, shielding.InfoTrustedCall, ct},
		{"other purpose", k, shielding.InfoShieldRecipient, ct},
		{"tampered", k, shielding.InfoTrustedCall, flipped},
		{"truncated", k, shielding.InfoTrustedCall, ct[:100]},
		{"empty", k, shielding.InfoTrustedCall, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.k.Decrypt(tt.info, tt.ct); !errors.Is(err, keys.ErrDecrypt) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestEncryptRejectsBadPublicKey(t *testing.T) {
	if _, err := shielding.Encrypt(make([]byte, 10), shielding.InfoTrustedCall, nil); err == nil {
		t.Fatal("short key accepted")
	}
}
