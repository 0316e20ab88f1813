// Package tx defines the wire format of integritee-node transactions:
// deterministic CBOR (RFC 8949 Core Deterministic Encoding) of a body
// {chain_id, sender, nonce, fee, call}, signed with ed25519 over a
// domain-separated digest.
package tx

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/internal/ed25519x"
)

// SigningDomain prefixes the signed digest so that a transaction signature
// can never be replayed as a signature of another protocol message.
const SigningDomain = "integritee-tx-v1"

// MaxTxBytes bounds an encoded SignedTx. It leaves room for an attestation
// (DCAP quote plus collateral) in a teerex registration.
const MaxTxBytes = 128 << 10

// Errors of decoding and stateless verification. The chain maps each to a
// stable ABCI code (see chain/types/errors.go).
var (
	ErrTooLarge     = errors.New("transaction too large")
	ErrMalformed    = errors.New("malformed transaction")
	ErrBadSignature = errors.New("bad signature")
)

// AddressLen is the length of an account address: an ed25519 public key.
const AddressLen = ed25519.PublicKeySize

// Address is an account: the ed25519 public key that signs its transactions.
type Address [AddressLen]byte

// String returns the address as lower-case hex.
func (a Address) String() string { return hex.EncodeToString(a[:]) }

// MarshalText encodes the address as hex (JSON genesis files).
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText decodes a hex address.
func (a *Address) UnmarshalText(b []byte) error {
	p, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// MarshalBinary returns the address's bytes: the CBOR codec copies them
// at once, where it encodes a byte array one element at a time (see
// types.Hash.MarshalBinary).
func (a Address) MarshalBinary() ([]byte, error) { return a[:], nil }

// UnmarshalBinary sets the address from exactly AddressLen bytes.
func (a *Address) UnmarshalBinary(b []byte) error {
	if len(b) != len(a) {
		return fmt.Errorf("address: want %d bytes, got %d", len(a), len(b))
	}
	copy(a[:], b)
	return nil
}

// ParseAddress decodes a hex address of exactly AddressLen bytes.
func ParseAddress(s string) (Address, error) {
	var a Address
	if len(s) != 2*AddressLen {
		return a, fmt.Errorf("address %q: want %d hex characters, got %d", s, 2*AddressLen, len(s))
	}
	if _, err := hex.Decode(a[:], []byte(s)); err != nil {
		return a, fmt.Errorf("address %q: %w", s, err)
	}
	return a, nil
}

// AddressOf returns the address of an ed25519 public key.
func AddressOf(pub ed25519.PublicKey) Address {
	var a Address
	copy(a[:], pub)
	return a
}

// Call is one call of one module: the module name, the method and the
// method's arguments as a nested deterministic CBOR value. The module decodes
// Args strictly (see DecodeArgs).
type Call struct {
	Module string          `cbor:"module"`
	Method string          `cbor:"method"`
	Args   cbor.RawMessage `cbor:"args"`
}

// NewCall encodes args and returns the call.
func NewCall(module, method string, args any) (Call, error) {
	raw, err := codec.Marshal(args)
	if err != nil {
		return Call{}, fmt.Errorf("encode %s.%s args: %w", module, method, err)
	}
	return Call{Module: module, Method: method, Args: raw}, nil
}

// DecodeArgs strictly decodes the call's arguments into v.
func (c Call) DecodeArgs(v any) error {
	if err := codec.Unmarshal(c.Args, v); err != nil {
		return fmt.Errorf("%s.%s args: %w", c.Module, c.Method, err)
	}
	return nil
}

// Body is the signed content of a transaction.
type Body struct {
	ChainID string  `cbor:"chain_id"`
	Sender  Address `cbor:"sender"`
	Nonce   uint64  `cbor:"nonce"`
	Fee     uint64  `cbor:"fee"`
	Call    Call    `cbor:"call"`
}

// SignBytes returns the digest that the sender signs:
// sha256(SigningDomain || cbor(body)).
func (b *Body) SignBytes() ([]byte, error) {
	enc, err := codec.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode body: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(SigningDomain))
	h.Write(enc)
	return h.Sum(nil), nil
}

// SignedTx is a body with the sender's signature.
type SignedTx struct {
	Body      Body   `cbor:"body"`
	Signature []byte `cbor:"sig"`
}

// Sign signs the body with key, whose public key must be the body's sender.
func Sign(body Body, key ed25519.PrivateKey) (*SignedTx, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign: private key has %d bytes", len(key))
	}
	if AddressOf(key.Public().(ed25519.PublicKey)) != body.Sender {
		return nil, errors.New("sign: key does not belong to the sender")
	}
	digest, err := body.SignBytes()
	if err != nil {
		return nil, err
	}
	return &SignedTx{Body: body, Signature: ed25519.Sign(key, digest)}, nil
}

// Encode returns the wire bytes of the transaction.
func (s *SignedTx) Encode() ([]byte, error) {
	return codec.Marshal(s)
}

// Verify checks the signature against the sender's key. A sender that is
// not a valid signing key (a small-order point such as the all-zero
// address, or a non-canonical encoding) never verifies: see ed25519x.
func (s *SignedTx) Verify() error {
	if len(s.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature has %d bytes", ErrBadSignature, len(s.Signature))
	}
	digest, err := s.Body.SignBytes()
	if err != nil {
		return err
	}
	if !ed25519x.Verify(s.Body.Sender[:], digest, s.Signature) {
		return ErrBadSignature
	}
	return nil
}

// Decode parses wire bytes into a SignedTx without verifying the signature.
// Oversized input gives ErrTooLarge; anything that is not exactly the
// canonical encoding of a SignedTx gives ErrMalformed.
func Decode(b []byte) (*SignedTx, error) {
	if len(b) > MaxTxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxTxBytes)
	}
	var s SignedTx
	if err := codec.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return &s, nil
}

// Hash is the transaction hash as CometBFT computes it: sha256 of the wire
// bytes (the hash that /tx?hash= and tx.hash events use).
func Hash(wire []byte) [32]byte { return sha256.Sum256(wire) }
