package shielding

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// Shielded channels. A one-shot ciphertext (Encrypt) costs the enclave an
// HPKE decapsulation (ML-KEM-768 and X25519), about half of what a direct
// call costs it. A client that sends many calls opens a channel instead:
// it encapsulates once to the shielding key, both ends export a 32-byte
// AES-256-GCM key from that HPKE context, and each call is sealed under
// it with its own nonce. The key never leaves the client and the
// enclave's memory, so the host learns no more than from one-shot
// ciphertexts; a replayed call is refused by its signed nonce, as a
// replayed one-shot ciphertext is.
//
// A channel ciphertext is ChannelMagic, a kind byte, then
//   - ChannelOpen: the encapsulated key (EncapsulatedKeySize bytes), or
//   - ChannelData: the channel's ID (ChannelIDSize bytes),
//
// then a 12-byte nonce and the AES-256-GCM ciphertext, whose associated
// data is everything before it. An open ciphertext carries a call too and
// any enclave of the shard decrypts it (they share the shielding key); a
// data ciphertext is shorter and cheaper but decrypts only at an enclave
// that has seen the channel opened since it started, and is refused there
// as ReasonUnknownChannel otherwise, so the client sends it again as an
// open one. Channels are for direct calls only: an indirect invocation is
// applied by every worker from the chain and is always one-shot.
const (
	// InfoChannel is the HPKE info of a channel's encapsulation.
	InfoChannel = "integritee/shielding/v1/channel"
	// ChannelMagic starts every channel ciphertext. Encrypt never returns
	// a ciphertext that starts with it.
	ChannelMagic = "\x00ITC"
	// ChannelOpen and ChannelData are the kinds of channel ciphertexts.
	ChannelOpen byte = 1
	ChannelData byte = 2
	// ChannelIDSize is the size of a channel's ID.
	ChannelIDSize = 16
	// EncapsulatedKeySize is the size of an ML-KEM-768+X25519
	// encapsulation (ML-KEM ciphertext || X25519 ephemeral key).
	EncapsulatedKeySize = 1088 + 32

	channelKeyLabel = "integritee/shielding/v1/channel-key"
	channelIDLabel  = "integritee/shielding/v1/channel-id"
	channelNonce    = 12
	channelTag      = 16
)

// ErrChannelCiphertext means bytes that start as a channel ciphertext are
// not a well-formed one.
var ErrChannelCiphertext = errors.New("shielding: malformed channel ciphertext")

// ChannelID names the channel of an encapsulated key: both ends compute it,
// so an open ciphertext needs no answer before data ciphertexts follow.
func ChannelID(enc []byte) [ChannelIDSize]byte {
	h := sha256.New()
	h.Write([]byte(channelIDLabel))
	h.Write(enc)
	var id [ChannelIDSize]byte
	copy(id[:], h.Sum(nil))
	return id
}

// ChannelKey derives a channel's AES-256-GCM key from its HPKE context
// (a *hpke.Sender at the client, a *hpke.Recipient in the enclave).
func ChannelKey(ctx interface {
	Export(string, int) ([]byte, error)
}) ([]byte, error) {
	k, err := ctx.Export(channelKeyLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("shielding: channel key: %w", err)
	}
	return k, nil
}

// Channel is the client's end of a shielded channel. It is safe for
// concurrent use.
type Channel struct {
	id   [ChannelIDSize]byte
	enc  []byte
	aead cipher.AEAD

	mu  sync.Mutex
	seq uint64 // the next nonce
}

// NewChannel opens a channel to the serialised shielding public key pub.
func NewChannel(pub []byte) (*Channel, error) {
	pk, err := ParsePublicKey(pub)
	if err != nil {
		return nil, err
	}
	enc, s, err := hpke.NewSender(pk, KDF(), AEAD(), []byte(InfoChannel))
	if err != nil {
		return nil, fmt.Errorf("shielding: open channel: %w", err)
	}
	key, err := ChannelKey(s)
	if err != nil {
		return nil, err
	}
	aead, err := ChannelAEAD(key)
	if err != nil {
		return nil, err
	}
	return &Channel{id: ChannelID(enc), enc: enc, aead: aead}, nil
}

// ChannelAEAD returns the AES-256-GCM of a channel key.
func ChannelAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("shielding: channel key: %w", err)
	}
	return cipher.NewGCM(b)
}

// ID returns the channel's ID.
func (c *Channel) ID() [ChannelIDSize]byte { return c.id }

// Seal seals plaintext (a signed trusted call) on the channel: as an open
// ciphertext if open is set, else as a data ciphertext. Every call gets a
// fresh nonce, a counter: the key is this channel's alone, so the nonces
// never repeat under it.
func (c *Channel) Seal(plaintext []byte, open bool) []byte {
	c.mu.Lock()
	seq := c.seq
	c.seq++
	c.mu.Unlock()
	kind, head := ChannelData, c.id[:]
	if open {
		kind, head = ChannelOpen, c.enc
	}
	out := make([]byte, 0, len(ChannelMagic)+1+len(head)+channelNonce+len(plaintext)+channelTag)
	out = append(out, ChannelMagic...)
	out = append(out, kind)
	out = append(out, head...)
	out = binary.BigEndian.AppendUint64(append(out, 0, 0, 0, 0), seq)
	return c.aead.Seal(out, out[len(out)-channelNonce:], plaintext, out)
}

// ChannelCiphertext is a parsed channel ciphertext.
type ChannelCiphertext struct {
	// Open is set for an open ciphertext, whose Enc is the encapsulated
	// key; ID is the channel's either way.
	Open bool
	Enc  []byte
	ID   [ChannelIDSize]byte
	// Header is the associated data: everything before Sealed.
	Header, Nonce, Sealed []byte
}

// IsChannel reports whether ct is meant as a channel ciphertext.
func IsChannel(ct []byte) bool { return bytes.HasPrefix(ct, []byte(ChannelMagic)) }

// ParseChannel parses a channel ciphertext (IsChannel(ct)); the slices
// alias ct.
func ParseChannel(ct []byte) (*ChannelCiphertext, error) {
	if !IsChannel(ct) || len(ct) < len(ChannelMagic)+1 {
		return nil, ErrChannelCiphertext
	}
	p := &ChannelCiphertext{}
	rest := ct[len(ChannelMagic)+1:]
	switch ct[len(ChannelMagic)] {
	case ChannelOpen:
		if len(rest) < EncapsulatedKeySize {
			return nil, ErrChannelCiphertext
		}
		p.Open, p.Enc, rest = true, rest[:EncapsulatedKeySize], rest[EncapsulatedKeySize:]
		p.ID = ChannelID(p.Enc)
	case ChannelData:
		if len(rest) < ChannelIDSize {
			return nil, ErrChannelCiphertext
		}
		p.ID, rest = [ChannelIDSize]byte(rest[:ChannelIDSize]), rest[ChannelIDSize:]
	default:
		return nil, ErrChannelCiphertext
	}
	if len(rest) < channelNonce+channelTag {
		return nil, ErrChannelCiphertext
	}
	p.Header, p.Nonce, p.Sealed = ct[:len(ct)-len(rest)+channelNonce], rest[:channelNonce], rest[channelNonce:]
	return p, nil
}

// OpenWith decrypts p with its channel's AEAD.
func (p *ChannelCiphertext) OpenWith(aead cipher.AEAD) ([]byte, error) {
	pt, err := aead.Open(nil, p.Nonce, p.Sealed, p.Header)
	if err != nil {
		return nil, ErrChannelCiphertext
	}
	return pt, nil
}
