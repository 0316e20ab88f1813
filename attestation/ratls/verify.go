package ratls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/dcap"
	"github.com/integritee-go/integritee/attestation/ias"
	"github.com/integritee-go/integritee/attestation/pcs"
)

// Rejection classes. Errors from this package wrap one of these, or the
// error of the dcap, ias or attestation package that rejected the evidence.
var (
	// ErrNoAttestation: the certificate carries neither an OE/EGo quote nor
	// IAS evidence.
	ErrNoAttestation = errors.New("certificate carries no attestation")
	// ErrKeyBinding: the attestation is valid but does not commit to the
	// certificate's key, so whoever holds the key is not shown to be the
	// enclave.
	ErrKeyBinding = errors.New("attestation does not bind the certificate key")
	// ErrCertificate: the certificate itself is unacceptable (outside its
	// validity period, bad self-signature, unknown critical extension,
	// ambiguous evidence).
	ErrCertificate = errors.New("invalid RA-TLS certificate")
	// ErrNoCollateral: a DCAP quote needs collateral and none was available.
	ErrNoCollateral = errors.New("no DCAP collateral")
)

// CollateralFunc returns the PCS collateral (TCB info, QE identity, CRLs)
// for the platform with this FMSPC.
type CollateralFunc func(fmspc [6]byte) (*pcs.Collateral, error)

// StaticCollateral returns a CollateralFunc that always answers c: for a
// single platform type, the sim backend, or tests.
func StaticCollateral(c *pcs.Collateral) CollateralFunc {
	return func([6]byte) (*pcs.Collateral, error) { return c, nil }
}

// Verifier decides whether an RA-TLS certificate belongs to an acceptable
// enclave. A peer's DCAP quote is verified exactly as fully as a chain
// registration's: PCK chain, CRLs, TCB info and QE identity, TCB status
// under Policy.
type Verifier struct {
	// Policy gives the roots and the acceptable enclaves.
	Policy attestation.Policy
	// Collateral supplies DCAP collateral. It is a function, not a static
	// value, because peers run on different platforms (FMSPCs), each with
	// its own TCB info, and collateral must be refreshed as it expires; the
	// caller can fetch and cache per FMSPC. Use StaticCollateral for one.
	Collateral CollateralFunc
	// CollateralForQuote, if set, is used instead of Collateral: it sees the
	// whole quote, so it can also pick the PCK CRL of the quote's issuer
	// from a set of collateral (teerex.Collateral.ForQuote).
	CollateralForQuote func(quote []byte) (*pcs.Collateral, error)
	// Now is the verification time; nil means time.Now.
	Now func() time.Time
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// VerifyCertificate verifies the attestation in cert, that it commits to
// cert's public key, that cert is inside its validity period, and that the
// enclave passes the policy. It returns the verified attestation.
func (v *Verifier) VerifyCertificate(cert *x509.Certificate) (*attestation.Result, error) {
	return v.verify(cert, true)
}

// VerifyAttestationOnly is VerifyCertificate without the key binding. It is
// for certificates whose report data commits to something else, such as the
// Integritee IAS certificates whose report data is the enclave's ed25519
// signer: the caller must compare Result.ReportData with what it expects.
// Never use it to authenticate a TLS peer.
func (v *Verifier) VerifyAttestationOnly(cert *x509.Certificate) (*attestation.Result, error) {
	return v.verify(cert, false)
}

// evidence kinds found in a certificate.
const (
	evidenceNone = iota
	evidenceQuote
	evidenceIAS
)

func findEvidence(cert *x509.Certificate) (kind int, ext []byte, err error) {
	for _, e := range cert.Extensions {
		var k int
		switch {
		case e.Id.Equal(oidQuote):
			k = evidenceQuote
		case e.Id.Equal(oidNetscapeComment):
			k = evidenceIAS
		default:
			continue
		}
		if kind != evidenceNone {
			// Two attestations in one certificate: refuse to pick one.
			return evidenceNone, nil, fmt.Errorf("%w: more than one attestation extension", ErrCertificate)
		}
		kind, ext = k, e.Value
	}
	return kind, ext, nil
}

func (v *Verifier) verify(cert *x509.Certificate, bind bool) (*attestation.Result, error) {
	if cert == nil {
		return nil, fmt.Errorf("verify RA-TLS certificate: %w: nil certificate", ErrCertificate)
	}
	at := v.now()
	if len(cert.UnhandledCriticalExtensions) > 0 {
		return nil, fmt.Errorf("verify RA-TLS certificate: %w: unhandled critical extension %v",
			ErrCertificate, cert.UnhandledCriticalExtensions[0])
	}
	kind, ext, err := findEvidence(cert)
	if err != nil {
		return nil, fmt.Errorf("verify RA-TLS certificate: %w", err)
	}
	var res *attestation.Result
	switch kind {
	case evidenceQuote:
		res, err = v.verifyQuote(cert, ext, at, bind)
	case evidenceIAS:
		res, err = v.verifyIAS(cert, at, bind)
	default:
		return nil, fmt.Errorf("verify RA-TLS certificate: %w", ErrNoAttestation)
	}
	if err != nil {
		return nil, fmt.Errorf("verify RA-TLS certificate: %w", err)
	}
	if at.Before(cert.NotBefore) || at.After(cert.NotAfter) {
		return nil, fmt.Errorf("verify RA-TLS certificate: %w: valid %s to %s, now %s", ErrCertificate,
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	if err := v.Policy.Check(res, at); err != nil {
		return nil, fmt.Errorf("verify RA-TLS certificate: policy: %w", err)
	}
	return res, nil
}

// verifyQuote handles the OE/EGo format.
func (v *Verifier) verifyQuote(cert *x509.Certificate, ext []byte, at time.Time, bind bool) (*attestation.Result, error) {
	quote, err := ParseExtension(ext)
	if err != nil {
		return nil, err
	}
	// The certificate is self-signed by the key the quote commits to. TLS
	// proves possession of the key anyway; checking the signature here
	// rejects certificates assembled around a foreign quote early and
	// keeps what we accept to what OE/EGo and we produce.
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, fmt.Errorf("%w: self-signature: %w", ErrCertificate, err)
	}
	if v.Collateral == nil && v.CollateralForQuote == nil {
		return nil, ErrNoCollateral
	}
	fmspc, err := quoteFMSPC(quote)
	if err != nil {
		return nil, err
	}
	var col *pcs.Collateral
	if v.CollateralForQuote != nil {
		col, err = v.CollateralForQuote(quote)
	} else {
		col, err = v.Collateral(fmspc)
	}
	if err != nil {
		return nil, fmt.Errorf("%w for FMSPC %x: %w", ErrNoCollateral, fmspc, err)
	}
	if col == nil {
		return nil, fmt.Errorf("%w for FMSPC %x", ErrNoCollateral, fmspc)
	}
	res, err := dcap.Verify(quote, dcap.Options{Roots: v.Policy.DCAPRoots, Collateral: col, Time: at})
	if err != nil {
		return nil, err
	}
	if bind {
		want := ReportData(cert.RawSubjectPublicKeyInfo)
		if subtle.ConstantTimeCompare(res.ReportData[:], want[:]) != 1 {
			return nil, fmt.Errorf("%w: report data %x, want SHA-256(SPKI) %x || 0^32",
				ErrKeyBinding, res.ReportData[:32], want[:32])
		}
	}
	return res, nil
}

// quoteFMSPC reads the FMSPC from the quote's PCK certificate. The value is
// not trusted: dcap.Verify checks the chain and that the collateral's FMSPC
// matches, so a lie here only selects collateral that then fails.
func quoteFMSPC(quote []byte) ([6]byte, error) {
	q, err := dcap.ParseQuote(quote)
	if err != nil {
		return [6]byte{}, err
	}
	if len(q.PCKChain) == 0 {
		return [6]byte{}, fmt.Errorf("%w: quote carries no PCK certificate", ErrNoCollateral)
	}
	ext, err := dcap.ParsePCKExtensions(q.PCKChain[0])
	if err != nil {
		return [6]byte{}, err
	}
	return ext.FMSPC, nil
}

// verifyIAS handles the Integritee/MesaTEE format.
func (v *Verifier) verifyIAS(cert *x509.Certificate, at time.Time, bind bool) (*attestation.Result, error) {
	// These generators produce certificates whose self-signature does not
	// verify (SOURCES.md), so it is not checked; TLS still proves possession
	// of the key, and the report data binds it.
	ev, err := ias.EvidenceFromCertificate(cert)
	if err != nil {
		return nil, err
	}
	res, err := ias.Verify(ev, ias.Options{Roots: v.Policy.IASRoots, Time: at})
	if err != nil {
		return nil, err
	}
	if bind {
		want, err := rawP256(cert)
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(res.ReportData[:], want) != 1 {
			return nil, fmt.Errorf("%w: report data %x, want the certificate key X||Y %x",
				ErrKeyBinding, res.ReportData[:], want)
		}
	}
	return res, nil
}

// rawP256 returns the certificate's P-256 public key as X||Y (64 bytes).
func rawP256(cert *x509.Certificate) ([]byte, error) {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: IAS RA-TLS certificate key is %T, want ECDSA P-256", ErrKeyBinding, cert.PublicKey)
	}
	k, err := pub.ECDH()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyBinding, err)
	}
	b := k.Bytes() // 0x04 || X || Y
	return b[1:], nil
}
