package dcap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/integritee-go/integritee/attestation"
)

// Errors of the signature checks, in the order Verify runs them.
var (
	ErrPCKChain              = errors.New("invalid PCK certificate chain")
	ErrQEReportSignature     = errors.New("QE report signature invalid")
	ErrAttestationKeyBinding = errors.New("attestation key not bound by QE report")
	ErrQuoteSignature        = errors.New("quote signature invalid")
)

// VerifySignatures checks everything a quote proves by itself, for any TEE
// type: the PCK chain leads to one of roots at time at, the PCK key signed
// the QE report, the QE report binds the attestation key and auth data, and
// the attestation key signed header and body. It returns the verified PCK
// path, leaf first. q must come from ParseQuote.
//
// It does not look at collateral: the TCB status, the QE identity and
// revocation are Verify's business.
func VerifySignatures(q *Quote, roots []*x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	if q.signed == nil || q.qeReport == nil {
		return nil, fmt.Errorf("verify quote: %w: quote not produced by ParseQuote", ErrMalformed)
	}
	path, err := verifyPCKChain(q.PCKChain, roots, at)
	if err != nil {
		return nil, err
	}

	pck, ok := path[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || pck.Curve != elliptic.P256() {
		return nil, fmt.Errorf("verify QE report: %w: PCK key is not ECDSA P-256", ErrQEReportSignature)
	}
	if !verifyRaw(pck, q.qeReport, q.QEReportSignature[:]) {
		return nil, fmt.Errorf("verify QE report: %w", ErrQEReportSignature)
	}

	// The QE report is the only thing the PCK key vouches for; its report
	// data is what ties the attestation key to the platform.
	want := sha256.Sum256(append(append([]byte{}, q.AttestationKey[:]...), q.QEAuthData...))
	rd := q.QEReport.ReportData
	if subtle.ConstantTimeCompare(rd[:32], want[:]) != 1 {
		return nil, fmt.Errorf("verify attestation key: %w: QE report data %x, want sha256(key||auth data) %x", ErrAttestationKeyBinding, rd[:32], want)
	}
	if !bytes.Equal(rd[32:], make([]byte, 32)) {
		return nil, fmt.Errorf("verify attestation key: %w: QE report data[32:64] not zero", ErrAttestationKeyBinding)
	}

	ak, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, q.AttestationKey[:]...))
	if err != nil {
		return nil, fmt.Errorf("verify quote signature: %w: attestation key: %v", ErrQuoteSignature, err)
	}
	if !verifyRaw(ak, q.signed, q.Signature[:]) {
		return nil, fmt.Errorf("verify quote signature: %w", ErrQuoteSignature)
	}
	return path, nil
}

// verifyPCKChain anchors the chain at roots and requires every certificate
// the quote carries to be on the verified path. The last one may instead be
// another issue of the path's root (same subject and key, valid
// self-signature): Intel re-issued its root, and old quotes embed the old one.
// Requiring this keeps the embedded chain honest, although only roots decide
// trust.
func verifyPCKChain(chain, roots []*x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	path, err := attestation.VerifyChain(chain, roots, at)
	if err != nil {
		return nil, fmt.Errorf("verify PCK chain: %w: %w", ErrPCKChain, err)
	}
	if len(path) < 2 {
		return nil, fmt.Errorf("verify PCK chain: %w: PCK certificate is itself a root", ErrPCKChain)
	}
	root := path[len(path)-1]
	for i, c := range chain {
		if onPath(c, path) {
			continue
		}
		if i == len(chain)-1 && bytes.Equal(c.RawSubject, root.RawSubject) &&
			bytes.Equal(c.RawSubjectPublicKeyInfo, root.RawSubjectPublicKeyInfo) &&
			c.CheckSignatureFrom(c) == nil {
			continue
		}
		return nil, fmt.Errorf("verify PCK chain: %w: certificate %d (%s) is not on the verified path", ErrPCKChain, i, c.Subject)
	}
	return path, nil
}

func onPath(c *x509.Certificate, path []*x509.Certificate) bool {
	for _, p := range path {
		if c.Equal(p) {
			return true
		}
	}
	return false
}

// verifyRaw checks a 64-byte big-endian r||s ECDSA signature over
// sha256(msg).
func verifyRaw(k *ecdsa.PublicKey, msg, sig []byte) bool {
	if len(sig) != signatureSize {
		return false
	}
	d := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(k, d[:], r, s)
}
