package shielding

import (
	"crypto/hpke"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/chain/codec"
)

// Private getters. A client asks the enclave a getter without the host
// learning the question or the answer: the request, encrypted to the
// shard's shielding key, carries the owner-signed getter and a fresh
// reply key of the client's; the enclave answers encrypted to that reply
// key, bound to the request. Since the reply key travels inside the
// request's ciphertext, the host can neither read nor swap it; and since
// the signed getter names the reply key (stf.SignGetter), whoever gets
// hold of a signed getter cannot wrap it again with a key of their own.
const (
	// InfoGetter is the HPKE info of a GetterRequest.
	InfoGetter = "integritee/shielding/v1/getter"
	// InfoGetterReply prefixes the HPKE info of a GetterResponse; the
	// SHA-256 of the request ciphertext follows, so an answer opens only
	// for the request it answers.
	InfoGetterReply = "integritee/shielding/v1/getter-reply/"
)

// MaxGetterRequest bounds a GetterRequest's plaintext.
const MaxGetterRequest = 64 << 10

// ErrGetterReply means a getter response does not open under the reply
// key for this request (tampered, or the answer to another request).
var ErrGetterReply = errors.New("shielding: getter response does not decrypt for this request")

// GetterRequest is the plaintext of a private getter request.
type GetterRequest struct {
	// Getter is the owner-signed getter (stf.SignedGetter CBOR), signed
	// for ReplyKey.
	Getter []byte `cbor:"getter"`
	// ReplyKey is the client's serialised ephemeral public key of the
	// shielding suite.
	ReplyKey []byte `cbor:"reply_key"`
}

// GetterResponse is the plaintext of the enclave's answer: the getter's
// value, or why it was refused.
type GetterResponse struct {
	Value []byte `cbor:"value,omitempty"`
	Error string `cbor:"error,omitempty"`
}

// ReplyKey is a client's ephemeral key for one getter's answer.
type ReplyKey struct {
	sk hpke.PrivateKey
}

// NewReplyKey returns a fresh reply key for one getter.
func NewReplyKey() (*ReplyKey, error) {
	sk, err := KEM().GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("shielding: reply key: %w", err)
	}
	return &ReplyKey{sk: sk}, nil
}

// Public returns the serialised public key: what the getter is signed for
// (stf.SignGetter) and the request carries.
func (k *ReplyKey) Public() []byte { return k.sk.PublicKey().Bytes() }

// NewGetterRequest encrypts signedGetter, signed for rk, with rk's public
// key to the shard's serialised shielding key pub and returns the request
// ciphertext; rk opens the answer.
func NewGetterRequest(pub []byte, rk *ReplyKey, signedGetter []byte) ([]byte, error) {
	pt, err := codec.Marshal(GetterRequest{Getter: signedGetter, ReplyKey: rk.Public()})
	if err != nil {
		return nil, fmt.Errorf("shielding: encode getter request: %w", err)
	}
	return Encrypt(pub, InfoGetter, pt)
}

// DecodeGetterRequest decodes a decrypted GetterRequest and checks the
// reply key.
func DecodeGetterRequest(pt []byte) (*GetterRequest, error) {
	if len(pt) > MaxGetterRequest {
		return nil, fmt.Errorf("shielding: getter request of %d bytes", len(pt))
	}
	var r GetterRequest
	if err := codec.Unmarshal(pt, &r); err != nil {
		return nil, fmt.Errorf("shielding: getter request: %w", err)
	}
	if _, err := ParsePublicKey(r.ReplyKey); err != nil {
		return nil, fmt.Errorf("reply key: %w", err)
	}
	return &r, nil
}

func replyInfo(request []byte) []byte {
	h := sha256.Sum256(request)
	return append([]byte(InfoGetterReply), h[:]...)
}

// SealGetterResponse encrypts resp to replyKey for the request ciphertext
// request (the enclave's side).
func SealGetterResponse(replyKey, request []byte, resp GetterResponse) ([]byte, error) {
	pk, err := ParsePublicKey(replyKey)
	if err != nil {
		return nil, err
	}
	pt, err := codec.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("shielding: encode getter response: %w", err)
	}
	ct, err := hpke.Seal(pk, KDF(), AEAD(), replyInfo(request), pt)
	if err != nil {
		return nil, fmt.Errorf("shielding: encrypt getter response: %w", err)
	}
	return ct, nil
}

// Open decrypts the answer to the request ciphertext request.
func (k *ReplyKey) Open(request, response []byte) (*GetterResponse, error) {
	pt, err := hpke.Open(k.sk, KDF(), AEAD(), replyInfo(request), response)
	if err != nil {
		return nil, ErrGetterReply
	}
	var r GetterResponse
	if err := codec.Unmarshal(pt, &r); err != nil {
		return nil, fmt.Errorf("shielding: getter response: %w", err)
	}
	return &r, nil
}
