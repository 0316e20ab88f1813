package ias

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// oidNetscapeComment (2.16.840.1.113730.1.13) is the extension in which
// Integritee and MesaTEE RA-TLS certificates carry the IAS evidence.
var oidNetscapeComment = asn1.ObjectIdentifier{2, 16, 840, 1, 113730, 1, 13}

// asn1TagIA5String is the universal tag byte of an IA5String.
const asn1TagIA5String = 0x16

// EvidenceFromDER parses a DER RA-TLS certificate and extracts its IAS
// evidence. The certificate's own signature is not checked: the
// Integritee/MesaTEE generators produce certificates whose self-signature
// does not verify, and the trust comes from the IAS report, not from it.
// The parsed certificate is returned for binding checks on its key.
func EvidenceFromDER(der []byte) (*Evidence, *x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: parse RA-TLS certificate: %w", ErrMalformed, err)
	}
	ev, err := EvidenceFromCertificate(c)
	if err != nil {
		return nil, nil, err
	}
	return ev, c, nil
}

// EvidenceFromCertificate extracts the IAS evidence from an Integritee or
// MesaTEE RA-TLS certificate: the Netscape Comment extension
// (2.16.840.1.113730.1.13) whose value is the ASCII "<report JSON>|<base64 signature>|<base64 DER signing cert>".
// Those generators put the ASCII directly in the extnValue; a value wrapped
// in an IA5String, as the Netscape Comment is specified, is accepted too.
func EvidenceFromCertificate(c *x509.Certificate) (*Evidence, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil certificate", ErrNoEvidence)
	}
	var value []byte
	found := false
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidNetscapeComment) {
			continue
		}
		if found {
			return nil, fmt.Errorf("%w: duplicate Netscape Comment extension", ErrMalformed)
		}
		value, found = e.Value, true
	}
	if !found {
		return nil, ErrNoEvidence
	}
	if len(value) > 0 && value[0] == asn1TagIA5String {
		var s string
		rest, err := asn1.Unmarshal(value, &s)
		if err != nil {
			return nil, fmt.Errorf("%w: Netscape Comment IA5String: %w", ErrMalformed, err)
		}
		if len(rest) > 0 {
			return nil, fmt.Errorf("%w: %d bytes after Netscape Comment IA5String", ErrMalformed, len(rest))
		}
		value = []byte(s)
	}
	return ParseNetscapeComment(value)
}

// ParseNetscapeComment parses "<report JSON>|<base64 signature>|<base64 DER
// signing cert>". It splits at the last two separators, since neither base64
// field can contain '|'. The report itself is parsed only by Verify.
func ParseNetscapeComment(b []byte) (*Evidence, error) {
	i := bytes.LastIndexByte(b, '|')
	if i < 0 {
		return nil, fmt.Errorf("%w: Netscape Comment: no '|' separator", ErrMalformed)
	}
	j := bytes.LastIndexByte(b[:i], '|')
	if j < 0 {
		return nil, fmt.Errorf("%w: Netscape Comment: want report|signature|certificate", ErrMalformed)
	}
	body, sigB64, certB64 := b[:j], b[j+1:i], b[i+1:]
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: Netscape Comment: empty report", ErrMalformed)
	}
	sig, err := decodeBase64(string(sigB64))
	if err != nil {
		return nil, fmt.Errorf("%w: Netscape Comment signature: %w", ErrMalformed, err)
	}
	der, err := decodeBase64(string(certB64))
	if err != nil {
		return nil, fmt.Errorf("%w: Netscape Comment signing certificate: %w", ErrMalformed, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: Netscape Comment signing certificate: %w", ErrMalformed, err)
	}
	return &Evidence{Body: bytes.Clone(body), Signature: sig, Chain: []*x509.Certificate{cert}}, nil
}

// EvidenceFromResponse assembles evidence from an IAS HTTP response: the
// body, the X-IASReport-Signature header (base64) and the
// X-IASReport-Signing-Certificate header (URL-encoded PEM, signing cert
// first). oasis-core stores reports in this form.
func EvidenceFromResponse(body []byte, signature, signingCerts string) (*Evidence, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty report body", ErrMalformed)
	}
	sig, err := decodeBase64(strings.TrimSpace(signature))
	if err != nil {
		return nil, fmt.Errorf("%w: report signature: %w", ErrMalformed, err)
	}
	// PathUnescape, not QueryUnescape: '+' is a base64 character and must
	// not become a space.
	pemText, err := url.PathUnescape(strings.TrimSpace(signingCerts))
	if err != nil {
		return nil, fmt.Errorf("%w: signing certificates: %w", ErrMalformed, err)
	}
	chain, err := parsePEMChain([]byte(pemText))
	if err != nil {
		return nil, fmt.Errorf("%w: signing certificates: %w", ErrMalformed, err)
	}
	return &Evidence{Body: bytes.Clone(body), Signature: sig, Chain: chain}, nil
}

func parsePEMChain(rest []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(chain), err)
		}
		chain = append(chain, c)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("trailing data after PEM certificates")
	}
	if len(chain) == 0 {
		return nil, errors.New("no PEM certificates")
	}
	return chain, nil
}

// EvidenceFromPhala parses Phala's IAS attestation JSON,
// {"raReport": "<report JSON as a string>", "signature": …,
// "rawSigningCert": …}. Signature and DER certificate are base64 in the
// pRuntime sample and hex in the pallet's; both are accepted. The signed
// bytes are the raReport string's UTF-8 bytes.
func EvidenceFromPhala(b []byte) (*Evidence, error) {
	obj, err := decodeObject(b)
	if err != nil {
		return nil, fmt.Errorf("%w: phala attestation: %w", ErrMalformed, err)
	}
	var report, sigText, certText string
	for _, f := range []struct {
		key string
		dst *string
	}{{"raReport", &report}, {"signature", &sigText}, {"rawSigningCert", &certText}} {
		if err := obj.get(f.key, f.dst, true); err != nil {
			return nil, fmt.Errorf("%w: phala attestation: %w", ErrMalformed, err)
		}
	}
	if report == "" {
		return nil, fmt.Errorf("%w: phala attestation: empty raReport", ErrMalformed)
	}
	sig, err := decodeHexOrBase64(sigText)
	if err != nil {
		return nil, fmt.Errorf("%w: phala attestation signature: %w", ErrMalformed, err)
	}
	der, err := decodeHexOrBase64(certText)
	if err != nil {
		return nil, fmt.Errorf("%w: phala attestation signing certificate: %w", ErrMalformed, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: phala attestation signing certificate: %w", ErrMalformed, err)
	}
	return &Evidence{Body: []byte(report), Signature: sig, Chain: []*x509.Certificate{cert}}, nil
}

// decodeHexOrBase64 decodes hex when s is even-length and all hex digits,
// base64 otherwise. The two cannot be confused for the values involved: a
// DER certificate's base64 starts "MII", and a misread signature would only
// fail to verify.
func decodeHexOrBase64(s string) ([]byte, error) {
	if len(s)%2 == 0 && isHex(s) {
		return hex.DecodeString(s)
	}
	return decodeBase64(s)
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
