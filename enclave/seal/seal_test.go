package seal_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/integritee-go/integritee/enclave/seal"
	"github.com/integritee-go/integritee/tee/sim"
)

func backend(t *testing.T, m byte, secret string) *sim.Backend {
	t.Helper()
	b, err := sim.New(sim.Config{Measurement: &[32]byte{m}, SealingSecret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	b := backend(t, 1, "cpu")
	shard := [32]byte{7}
	msg := []byte("the state key")
	blob, err := seal.Seal(b, "label", shard, msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(blob) != len(msg)+seal.Overhead {
		t.Fatalf("blob of %d bytes", len(blob))
	}
	if bytes.Contains(blob, msg) {
		t.Fatal("plaintext visible in the blob")
	}
	// A restarted enclave (new backend instance, same identity) opens it.
	got, err := seal.Open(backend(t, 1, "cpu"), "label", shard, blob)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open = %q, %v", got, err)
	}

	flip := func(i int) []byte {
		c := bytes.Clone(blob)
		c[i] ^= 1
		return c
	}
	tests := []struct {
		name  string
		b     *sim.Backend
		label string
		shard [32]byte
		blob  []byte
		want  error
	}{
		{"truncated", b, "label", shard, blob[:seal.Overhead-1], seal.ErrTruncated},
		{"empty", b, "label", shard, nil, seal.ErrTruncated},
		{"cut tag", b, "label", shard, blob[:len(blob)-1], seal.ErrAuthentication},
		{"bad magic", b, "label", shard, flip(0), seal.ErrFormat},
		{"nonce flipped", b, "label", shard, flip(5), seal.ErrAuthentication},
		{"ciphertext flipped", b, "label", shard, flip(seal.Overhead - 16 + 1), seal.ErrAuthentication},
		{"tag flipped", b, "label", shard, flip(len(blob) - 1), seal.ErrAuthentication},
		{"other purpose", b, "other", shard, blob, seal.ErrAuthentication},
		{"other shard", b, "label", [32]byte{8}, blob, seal.ErrAuthentication},
		{"other enclave", backend(t, 2, "cpu"), "label", shard, blob, seal.ErrAuthentication},
		{"other cpu", backend(t, 1, "other cpu"), "label", shard, blob, seal.ErrAuthentication},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := seal.Open(tt.b, tt.label, tt.shard, tt.blob)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSealFreshNonce(t *testing.T) {
	b := backend(t, 1, "cpu")
	a1, _ := seal.Seal(b, "l", [32]byte{}, []byte("x"))
	a2, _ := seal.Seal(b, "l", [32]byte{}, []byte("x"))
	if bytes.Equal(a1, a2) {
		t.Fatal("two seals of the same plaintext are equal")
	}
}
