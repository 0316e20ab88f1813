package pcs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
)

// SignTCBInfo renders info compactly in Intel's layout for its version
// (3 if unset; id "SGX" if unset in version 3), signs the bytes with key
// (raw r||s, as Intel does) and returns the signed document, parsed back from
// the signed bytes. chain is the signing chain, signer first.
func SignTCBInfo(info TCBInfo, key *ecdsa.PrivateKey, chain []*x509.Certificate) (*SignedTCBInfo, error) {
	if info.Version == 0 {
		info.Version = 3
	}
	if info.Version == 3 && info.ID == "" {
		info.ID = IDSGX
	}
	body, err := marshalTCBInfo(&info)
	if err != nil {
		return nil, fmt.Errorf("sign TCB info: %w", err)
	}
	if _, err := parseTCBInfoBody(body); err != nil {
		return nil, fmt.Errorf("sign TCB info: %w", err)
	}
	sig, err := signRaw(key, body)
	if err != nil {
		return nil, fmt.Errorf("sign TCB info: %w", err)
	}
	return newSignedTCBInfo(body, sig, chain)
}

// SignQEIdentity renders id in Intel's enclave identity v2 layout (version 2
// and id "QE" if unset), signs it and returns the signed document.
func SignQEIdentity(id QEIdentity, key *ecdsa.PrivateKey, chain []*x509.Certificate) (*SignedQEIdentity, error) {
	if id.Version == 0 {
		id.Version = 2
	}
	if id.ID == "" {
		id.ID = IDQE
	}
	body, err := marshalQEIdentity(&id)
	if err != nil {
		return nil, fmt.Errorf("sign QE identity: %w", err)
	}
	if _, err := parseQEIdentityBody(body); err != nil {
		return nil, fmt.Errorf("sign QE identity: %w", err)
	}
	sig, err := signRaw(key, body)
	if err != nil {
		return nil, fmt.Errorf("sign QE identity: %w", err)
	}
	return newSignedQEIdentity(body, sig, chain)
}

func signRaw(key *ecdsa.PrivateKey, body []byte) ([]byte, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, errors.New("signing key must be ECDSA P-256")
	}
	h := sha256.Sum256(body)
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig, nil
}

// MarshalEnvelope returns the PCS response form {"tcbInfo":<Body>,"signature":"hex"},
// with Body inserted verbatim so the signature still covers it.
func (s *SignedTCBInfo) MarshalEnvelope() ([]byte, error) {
	return envelope("tcbInfo", s.Body, s.Signature)
}

// MarshalEnvelope returns the PCS response form {"enclaveIdentity":<Body>,"signature":"hex"}.
func (s *SignedQEIdentity) MarshalEnvelope() ([]byte, error) {
	return envelope("enclaveIdentity", s.Body, s.Signature)
}

func envelope(key string, body, sig []byte) ([]byte, error) {
	if err := checkObject(body); err != nil {
		return nil, fmt.Errorf("marshal envelope: %w", err)
	}
	if len(sig) != 64 {
		return nil, fmt.Errorf("marshal envelope: %w: signature is %d bytes, want 64", ErrMalformed, len(sig))
	}
	out := make([]byte, 0, len(body)+len(key)+160)
	out = append(out, `{"`...)
	out = append(out, key...)
	out = append(out, `":`...)
	out = append(out, body...)
	out = append(out, `,"signature":"`...)
	out = append(out, hex.EncodeToString(sig)...)
	out = append(out, `"}`...)
	return out, nil
}
