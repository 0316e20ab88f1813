// Package ias verifies EPID attestation evidence: attestation verification
// reports (AVRs) that the Intel Attestation Service signed over an enclave's
// EPID quote.
//
// An AVR is a JSON document whose isvEnclaveQuoteBody holds the quote (an EPID
// header and the SGX report body). IAS signs the exact JSON bytes with
// RSASSA-PKCS1-v1_5/SHA-256 under its report-signing certificate, which
// chains to the Intel SGX Attestation Report Signing CA. Verify checks that
// signature and chain at a caller-given time, that the report is not from the
// future, and maps the IAS quote status onto attestation.TCBStatus. Which
// statuses and how old a report are acceptable is attestation.Policy's
// decision, not this package's.
//
// The evidence arrives in several containers, each with a loader:
//   - EvidenceFromCertificate / EvidenceFromDER: Integritee and MesaTEE RA-TLS
//     certificates carrying "report|signature|cert" in a Netscape Comment
//     extension;
//   - EvidenceFromResponse: IAS's HTTP response (body plus the
//     X-IASReport-Signature and URL-encoded X-IASReport-Signing-Certificate
//     headers), as oasis-core stores it;
//   - EvidenceFromPhala: Phala's {raReport, signature, rawSigningCert} JSON.
//
// Only the standard library is used.
package ias

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/attestation"
)

// Rejection classes. Errors returned by this package wrap one of these (or
// attestation.ErrFromFuture), so callers can tell them apart with errors.Is.
var (
	// ErrMalformed: the evidence or report cannot be parsed.
	ErrMalformed = errors.New("malformed IAS evidence")
	// ErrNoEvidence: a certificate carries no IAS report.
	ErrNoEvidence = errors.New("no IAS report in certificate")
	// ErrSignature: the report signature does not verify under the signing
	// certificate.
	ErrSignature = errors.New("IAS report signature invalid")
	// ErrUntrustedSigner: the signing certificate does not chain to a
	// trusted root at the verification time. The chain error is wrapped too,
	// so errors.Is(err, attestation.ErrUntrustedRoot) and errors.As with
	// x509.CertificateInvalidError work.
	ErrUntrustedSigner = errors.New("IAS report signer not trusted")
	// ErrQuoteStatus: IAS did not vouch for the quote (SIGNATURE_INVALID,
	// SIGRL_VERSION_MISMATCH or a status this package does not know).
	ErrQuoteStatus = errors.New("IAS quote status rejected")
)

// Evidence is an AVR as it travels: the exact signed body, IAS's signature
// and the signing certificate chain.
type Evidence struct {
	Body      []byte
	Signature []byte
	// Chain is the signing certificate first; the IAS root may follow and
	// is ignored unless configured as a root.
	Chain []*x509.Certificate
}

// Options configure Verify.
type Options struct {
	// Roots anchor the signing chain: the Intel SGX Attestation Report
	// Signing CA in production.
	Roots []*x509.Certificate
	// Time is the verification time for the chain and the future check.
	// It is required: evidence is never verified against the wall clock
	// implicitly.
	Time time.Time
}

// Verify checks an AVR and returns what it establishes about the enclave:
// the signing chain is verified to opts.Roots at opts.Time, the signature
// over the exact body bytes, then the report is parsed, must not be dated
// after opts.Time, and its quote status must be one IAS issues for a valid
// quote. Result.Timestamp is the report's timestamp and Result.RawStatus
// IAS's status word.
func Verify(ev *Evidence, opts Options) (*attestation.Result, error) {
	if ev == nil {
		return nil, fmt.Errorf("verify IAS report: %w: nil evidence", ErrMalformed)
	}
	if opts.Time.IsZero() {
		// x509 would silently use time.Now for a zero time.
		return nil, errors.New("verify IAS report: no verification time")
	}
	if len(ev.Chain) == 0 || ev.Chain[0] == nil {
		return nil, fmt.Errorf("verify IAS report: %w: no signing certificate", ErrUntrustedSigner)
	}
	for i, c := range ev.Chain {
		if c == nil {
			return nil, fmt.Errorf("verify IAS report: %w: nil certificate at %d", ErrMalformed, i)
		}
	}
	signer := ev.Chain[0]
	if _, err := attestation.VerifyChain(ev.Chain, opts.Roots, opts.Time); err != nil {
		return nil, fmt.Errorf("verify IAS report: %w: %w", ErrUntrustedSigner, err)
	}
	if signer.KeyUsage != 0 && signer.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, fmt.Errorf("verify IAS report: %w: signing certificate lacks digitalSignature key usage", ErrUntrustedSigner)
	}
	if err := checkSignature(signer, ev.Body, ev.Signature); err != nil {
		return nil, fmt.Errorf("verify IAS report: %w", err)
	}

	r, err := ParseReport(ev.Body)
	if err != nil {
		return nil, fmt.Errorf("verify IAS report: %w", err)
	}
	if r.Timestamp.After(opts.Time) {
		return nil, fmt.Errorf("verify IAS report: %w: report %s, verification time %s",
			attestation.ErrFromFuture, r.Timestamp.Format(time.RFC3339Nano), opts.Time.UTC().Format(time.RFC3339Nano))
	}
	status, err := MapStatus(r.QuoteStatus)
	if err != nil {
		return nil, fmt.Errorf("verify IAS report %s: %w", r.ID, err)
	}

	b := &r.Quote.Body
	return &attestation.Result{
		Kind:        attestation.KindIAS,
		MRENCLAVE:   b.MRENCLAVE,
		MRSIGNER:    b.MRSIGNER,
		ISVProdID:   b.ISVProdID,
		ISVSVN:      b.ISVSVN,
		Attributes:  b.Attributes,
		CPUSVN:      b.CPUSVN,
		ReportData:  b.ReportData,
		TCBStatus:   status,
		RawStatus:   r.QuoteStatus,
		AdvisoryIDs: r.AdvisoryIDs,
		Timestamp:   r.Timestamp,
	}, nil
}

func checkSignature(signer *x509.Certificate, body, sig []byte) error {
	pub, ok := signer.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: signing key is %T, want RSA", ErrSignature, signer.PublicKey)
	}
	digest := sha256.Sum256(body)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return nil
}

// MapStatus maps an IAS isvEnclaveQuoteStatus onto the DCAP vocabulary.
// Statuses for which IAS did not verify the quote, and unknown ones, are an
// error wrapping ErrQuoteStatus.
func MapStatus(s string) (attestation.TCBStatus, error) {
	switch s {
	case "OK":
		return attestation.StatusUpToDate, nil
	case "GROUP_OUT_OF_DATE":
		return attestation.StatusOutOfDate, nil
	case "CONFIGURATION_NEEDED":
		return attestation.StatusConfigurationNeeded, nil
	case "SW_HARDENING_NEEDED":
		return attestation.StatusSWHardeningNeeded, nil
	case "CONFIGURATION_AND_SW_HARDENING_NEEDED":
		return attestation.StatusConfigurationAndSWHardeningNeeded, nil
	case "GROUP_REVOKED", "KEY_REVOKED", "SIGNATURE_REVOKED":
		// The quote's signature was checked, so the report is genuine;
		// the platform is revoked, which the policy rejects.
		return attestation.StatusRevoked, nil
	case "SIGNATURE_INVALID", "SIGRL_VERSION_MISMATCH":
		// IAS could not verify the quote: the report body is not attested.
		return "", fmt.Errorf("%w: %s", ErrQuoteStatus, s)
	}
	return "", fmt.Errorf("%w: unknown status %q", ErrQuoteStatus, s)
}
