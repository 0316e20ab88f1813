// Package shielding is the public half of the enclave's shielding key:
// what clients use to encrypt trusted calls and shield recipients to a
// shard. It holds no private key material and may be imported by anyone.
//
// The suite is HPKE (RFC 9180) base mode with the post-quantum hybrid KEM
// ML-KEM-768+X25519 (X-Wing), HKDF-SHA256 and AES-256-GCM, single-shot:
// ciphertext = encapsulated key || AEAD ciphertext.
package shielding

import (
	"crypto/hpke"
	"fmt"
)

// Info strings separate the uses of the shielding key: a ciphertext made
// for one purpose does not decrypt as another.
const (
	// InfoTrustedCall is the HPKE info of an invoke's trusted call.
	InfoTrustedCall = "integritee/shielding/v1/trusted-call"
	// InfoShieldRecipient is the HPKE info of shield_funds' recipient.
	InfoShieldRecipient = "integritee/shielding/v1/shield-recipient"
)

// Suite components.
func KEM() hpke.KEM   { return hpke.MLKEM768X25519() }
func KDF() hpke.KDF   { return hpke.HKDFSHA256() }
func AEAD() hpke.AEAD { return hpke.AES256GCM() }

// PublicKeySize is the size of a serialised public key (X-Wing: ML-KEM-768
// encapsulation key || X25519 public key).
const PublicKeySize = 1184 + 32

// ParsePublicKey decodes a serialised shielding public key.
func ParsePublicKey(b []byte) (hpke.PublicKey, error) {
	if len(b) != PublicKeySize {
		return nil, fmt.Errorf("shielding public key has %d bytes, want %d", len(b), PublicKeySize)
	}
	pk, err := KEM().NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("shielding public key: %w", err)
	}
	return pk, nil
}

// Encrypt encrypts plaintext to the serialised shielding public key pub for
// the purpose info.
func Encrypt(pub []byte, info string, plaintext []byte) ([]byte, error) {
	pk, err := ParsePublicKey(pub)
	if err != nil {
		return nil, err
	}
	for {
		ct, err := hpke.Seal(pk, KDF(), AEAD(), []byte(info), plaintext)
		if err != nil {
			return nil, fmt.Errorf("shielding encrypt: %w", err)
		}
		// One in 2^32 encapsulations starts like a channel ciphertext,
		// which the enclave would parse as one: encapsulate again.
		if !IsChannel(ct) {
			return ct, nil
		}
	}
}
