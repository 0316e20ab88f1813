// Package keys holds the enclave's private keys: the signer (ed25519, one
// per enclave, its chain account), the shielding key (HPKE
// ML-KEM-768+X25519, shared by the shard's enclaves) and the state key
// (32 bytes, shared by the shard's enclaves). They are created on first
// start and leave the enclave only sealed (package seal).
//
// Only trusted code imports this package; the host must not (a test in
// package enclave checks that the protocol carries no key material).
package keys

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/enclave/seal"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/tee"
)

// Sealing labels, one per key: a blob of one key does not open as another.
const (
	LabelSigner    = "integritee/enclave/v1/signer"
	LabelShielding = "integritee/enclave/v1/shielding"
	LabelState     = "integritee/enclave/v1/state"
)

// StateKeySize is the size of the state key.
const StateKeySize = 32

// Errors.
var (
	// ErrIncomplete means some but not all sealed keys were given: the
	// enclave refuses to regenerate a subset.
	ErrIncomplete = errors.New("keys: some sealed keys missing")
	// ErrBadKey means a blob opened but does not hold a valid key.
	ErrBadKey = errors.New("keys: unsealed key invalid")
	// ErrDecrypt means a shielded ciphertext did not decrypt.
	ErrDecrypt = errors.New("keys: ciphertext does not decrypt under the shielding key")
)

// Sealed are the three sealed key blobs.
type Sealed struct {
	Signer, Shielding, State []byte
}

// Empty reports whether no blob is set (first start).
func (s Sealed) Empty() bool {
	return len(s.Signer) == 0 && len(s.Shielding) == 0 && len(s.State) == 0
}

// Keys are the enclave's private keys.
type Keys struct {
	signer    ed25519.PrivateKey
	shielding hpke.PrivateKey
	state     []byte
	tagKey    []byte // derived from the signer: authenticates outgoing calls
}

// Generate creates fresh keys.
func Generate() (*Keys, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("keys: signer seed: %w", err)
	}
	sk, err := shielding.KEM().GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("keys: shielding key: %w", err)
	}
	state := make([]byte, StateKeySize)
	if _, err := rand.Read(state); err != nil {
		return nil, fmt.Errorf("keys: state key: %w", err)
	}
	return assemble(seed, sk, state)
}

func assemble(seed []byte, sk hpke.PrivateKey, state []byte) (*Keys, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: signer seed of %d bytes", ErrBadKey, len(seed))
	}
	if len(state) != StateKeySize {
		return nil, fmt.Errorf("%w: state key of %d bytes", ErrBadKey, len(state))
	}
	tag, err := hkdf.Key(sha256.New, seed, nil, "integritee/enclave/v1/outgoing-tag", 32)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return &Keys{signer: ed25519.NewKeyFromSeed(seed), shielding: sk, state: state, tagKey: tag}, nil
}

// Seal seals each key for this enclave and shard.
func (k *Keys) Seal(b tee.Backend, shard [32]byte) (Sealed, error) {
	sh, err := k.shielding.Bytes()
	if err != nil {
		return Sealed{}, fmt.Errorf("keys: serialise shielding key: %w", err)
	}
	var s Sealed
	if s.Signer, err = seal.Seal(b, LabelSigner, shard, k.signer.Seed()); err != nil {
		return Sealed{}, err
	}
	if s.Shielding, err = seal.Seal(b, LabelShielding, shard, sh); err != nil {
		return Sealed{}, err
	}
	if s.State, err = seal.Seal(b, LabelState, shard, k.state); err != nil {
		return Sealed{}, err
	}
	return s, nil
}

// Unseal opens sealed keys of this enclave and shard. Every blob must be
// present; a tampered, truncated or foreign blob gives an error wrapping
// the seal package's error.
func Unseal(b tee.Backend, shard [32]byte, s Sealed) (*Keys, error) {
	if len(s.Signer) == 0 || len(s.Shielding) == 0 || len(s.State) == 0 {
		return nil, ErrIncomplete
	}
	seed, err := seal.Open(b, LabelSigner, shard, s.Signer)
	if err != nil {
		return nil, fmt.Errorf("unseal signer: %w", err)
	}
	sh, err := seal.Open(b, LabelShielding, shard, s.Shielding)
	if err != nil {
		return nil, fmt.Errorf("unseal shielding key: %w", err)
	}
	sk, err := shielding.KEM().NewPrivateKey(sh)
	if err != nil {
		return nil, fmt.Errorf("%w: shielding key: %w", ErrBadKey, err)
	}
	state, err := seal.Open(b, LabelState, shard, s.State)
	if err != nil {
		return nil, fmt.Errorf("unseal state key: %w", err)
	}
	return assemble(seed, sk, state)
}

// SignerPublic returns the signer's public key: the enclave's account.
func (k *Keys) SignerPublic() ed25519.PublicKey {
	return k.signer.Public().(ed25519.PublicKey)
}

// Sign signs msg with the signer.
func (k *Keys) Sign(msg []byte) []byte { return ed25519.Sign(k.signer, msg) }

// ShieldingPublic returns the serialised shielding public key.
func (k *Keys) ShieldingPublic() []byte { return k.shielding.PublicKey().Bytes() }

// Decrypt opens a ciphertext made by shielding.Encrypt with the same info.
func (k *Keys) Decrypt(info string, ciphertext []byte) ([]byte, error) {
	pt, err := hpke.Open(k.shielding, shielding.KDF(), shielding.AEAD(), []byte(info), ciphertext)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// ChannelKey decapsulates a shielded channel's encapsulated key and
// returns the channel's AES-256-GCM key (shielding.Channel). Decapsulation
// does not fail on a tampered enc (ML-KEM rejects implicitly): a wrong key
// shows when the channel's first ciphertext does not open.
func (k *Keys) ChannelKey(enc []byte) ([]byte, error) {
	if len(enc) != shielding.EncapsulatedKeySize {
		return nil, ErrDecrypt
	}
	r, err := hpke.NewRecipient(enc, k.shielding, shielding.KDF(), shielding.AEAD(), []byte(shielding.InfoChannel))
	if err != nil {
		return nil, ErrDecrypt
	}
	return shielding.ChannelKey(r)
}

// StateKey returns the state key, for the state package to derive its
// blinding and encryption keys from.
func (k *Keys) StateKey() []byte { return append([]byte(nil), k.state...) }

// Tag authenticates msg as produced by this enclave (HMAC-SHA256 under a
// key derived from the signer).
func (k *Keys) Tag(msg []byte) []byte {
	m := hmac.New(sha256.New, k.tagKey)
	m.Write(msg)
	return m.Sum(nil)
}

// CheckTag reports whether tag is Tag(msg).
func (k *Keys) CheckTag(msg, tag []byte) bool { return hmac.Equal(k.Tag(msg), tag) }
