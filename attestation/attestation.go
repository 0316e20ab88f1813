// Package attestation holds what every attestation format shares: the typed
// result of a verification, TCB statuses, certificate-chain anchoring and the
// verification policy the chain and the enclaves enforce.
//
// The format-specific verifiers live in the subpackages dcap (SGX ECDSA quotes),
// pcs (Intel's collateral: TCB info, QE identity, CRLs), ias (EPID attestation
// verification reports) and ratls (attested TLS certificates).
package attestation

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Kind names the attestation format a result came from.
type Kind string

const (
	KindDCAP Kind = "dcap"
	KindIAS  Kind = "ias"
)

// TCBStatus is the platform's TCB status in Intel's DCAP vocabulary. IAS
// statuses are mapped onto it (see the ias package); the source's own word is
// kept in Result.RawStatus.
type TCBStatus string

const (
	StatusUpToDate                          TCBStatus = "UpToDate"
	StatusSWHardeningNeeded                 TCBStatus = "SWHardeningNeeded"
	StatusConfigurationNeeded               TCBStatus = "ConfigurationNeeded"
	StatusConfigurationAndSWHardeningNeeded TCBStatus = "ConfigurationAndSWHardeningNeeded"
	StatusOutOfDate                         TCBStatus = "OutOfDate"
	StatusOutOfDateConfigurationNeeded      TCBStatus = "OutOfDateConfigurationNeeded"
	StatusRevoked                           TCBStatus = "Revoked"
)

// Known reports whether s is one of the statuses above.
func (s TCBStatus) Known() bool {
	switch s {
	case StatusUpToDate, StatusSWHardeningNeeded, StatusConfigurationNeeded,
		StatusConfigurationAndSWHardeningNeeded, StatusOutOfDate,
		StatusOutOfDateConfigurationNeeded, StatusRevoked:
		return true
	}
	return false
}

// Result is what a successful verification establishes about an enclave.
// Verifiers fill it only after every signature, chain and collateral check
// passed; a Result never describes unverified data.
type Result struct {
	Kind       Kind     `json:"kind"`
	MRENCLAVE  [32]byte `json:"mrenclave"`
	MRSIGNER   [32]byte `json:"mrsigner"`
	ISVProdID  uint16   `json:"isv_prod_id"`
	ISVSVN     uint16   `json:"isv_svn"`
	Attributes [16]byte `json:"attributes"`
	CPUSVN     [16]byte `json:"cpu_svn"`
	ReportData [64]byte `json:"report_data"`

	TCBStatus   TCBStatus `json:"tcb_status"`
	RawStatus   string    `json:"raw_status,omitempty"`
	AdvisoryIDs []string  `json:"advisory_ids,omitempty"`

	// DCAP only.
	QETCBStatus TCBStatus `json:"qe_tcb_status,omitempty"`
	FMSPC       []byte    `json:"fmspc,omitempty"`
	TCBDate     time.Time `json:"tcb_date,omitzero"`

	// Timestamp is when the evidence was produced: the IAS report's
	// timestamp, or for DCAP the verification time (a quote carries none).
	Timestamp time.Time `json:"timestamp"`
}

// attributeDebug is SGX ATTRIBUTES.FLAGS bit 1 (DEBUG).
const attributeDebug = 0x02

// Debug reports whether the enclave was launched in debug mode, in which its
// memory is readable by the host: such an enclave protects nothing.
func (r *Result) Debug() bool { return r.Attributes[0]&attributeDebug != 0 }

// Errors of policy enforcement. Verifiers wrap their own, more specific errors.
var (
	ErrDebugEnclave        = errors.New("debug enclave not allowed")
	ErrMRENCLAVENotAllowed = errors.New("MRENCLAVE not allowed")
	ErrMRSIGNERNotAllowed  = errors.New("MRSIGNER not allowed")
	ErrTCBStatus           = errors.New("TCB status not accepted")
	ErrTooOld              = errors.New("attestation too old")
	ErrFromFuture          = errors.New("attestation timestamp in the future")
	ErrUntrustedRoot       = errors.New("certificate chain does not lead to a trusted root")
)

// Policy says which verified enclaves are acceptable. The zero Policy accepts
// nothing: it trusts no root and accepts no TCB status.
type Policy struct {
	// DCAPRoots anchor PCK chains and collateral signing chains (Intel SGX
	// Root CA in production, the sim backend's dev root in dev mode).
	DCAPRoots []*x509.Certificate
	// IASRoots anchor IAS report-signing certificates.
	IASRoots []*x509.Certificate
	// AllowedMRENCLAVE and AllowedMRSIGNER, when non-empty, restrict the
	// measurements; empty means any.
	AllowedMRENCLAVE [][32]byte
	AllowedMRSIGNER  [][32]byte
	// AllowDebug admits debug enclaves (dev chains only).
	AllowDebug bool
	// AcceptedTCBStatuses lists the platform TCB statuses that pass.
	AcceptedTCBStatuses []TCBStatus
	// MaxAge bounds the age of evidence that carries a timestamp (IAS
	// reports). Zero means no bound.
	MaxAge time.Duration
}

// Check enforces the policy on a verified result at time at. It does not
// verify signatures: r must come from a verifier run with this policy's roots.
func (p *Policy) Check(r *Result, at time.Time) error {
	if r.Debug() && !p.AllowDebug {
		return ErrDebugEnclave
	}
	if len(p.AllowedMRENCLAVE) > 0 && !contains(p.AllowedMRENCLAVE, r.MRENCLAVE) {
		return fmt.Errorf("%w: %x", ErrMRENCLAVENotAllowed, r.MRENCLAVE)
	}
	if len(p.AllowedMRSIGNER) > 0 && !contains(p.AllowedMRSIGNER, r.MRSIGNER) {
		return fmt.Errorf("%w: %x", ErrMRSIGNERNotAllowed, r.MRSIGNER)
	}
	accepted := false
	for _, s := range p.AcceptedTCBStatuses {
		if s == r.TCBStatus {
			accepted = true
			break
		}
	}
	if !accepted {
		return fmt.Errorf("%w: %s", ErrTCBStatus, r.TCBStatus)
	}
	if p.MaxAge > 0 && r.Kind == KindIAS {
		age := at.Sub(r.Timestamp)
		if age < 0 {
			return fmt.Errorf("%w: %s after %s", ErrFromFuture, r.Timestamp.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		}
		if age > p.MaxAge {
			return fmt.Errorf("%w: %s old, at most %s", ErrTooOld, age, p.MaxAge)
		}
	}
	return nil
}

func contains(set [][32]byte, v [32]byte) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// VerifyChain verifies that chain[0] chains through chain[1:] to one of roots
// at time at, and returns the verified path (leaf first, root last).
//
// Roots are anchored by subject and public key, not by their exact bytes:
// Intel re-issued its SGX Root CA with the same key, and quotes embed either
// issue. Self-signed certificates inside chain are never trusted on their own;
// they only count if a root with the same subject and key is configured.
func VerifyChain(chain, roots []*x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("verify certificate chain: empty chain")
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("verify certificate chain: %w: no roots configured", ErrUntrustedRoot)
	}
	if c := chain[0]; isSelfSigned(c) {
		// A root presented on its own (e.g. as a root CRL's issuer chain) may
		// be another issue of a trusted root: same subject and key.
		for _, r := range roots {
			if bytes.Equal(r.RawSubject, c.RawSubject) && sameKey(r, c) {
				if at.Before(c.NotBefore) || at.After(c.NotAfter) {
					return nil, fmt.Errorf("verify certificate chain: root certificate not valid at %s", at.UTC().Format(time.RFC3339))
				}
				return []*x509.Certificate{c}, nil
			}
		}
	}
	rootPool := x509.NewCertPool()
	for _, r := range roots {
		rootPool.AddCert(r)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		if isSelfSigned(c) {
			continue
		}
		inter.AddCert(c)
	}
	paths, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         rootPool,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			return nil, fmt.Errorf("verify certificate chain: %w: %v", ErrUntrustedRoot, err)
		}
		return nil, fmt.Errorf("verify certificate chain: %w", err)
	}
	return paths[0], nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

func sameKey(a, b *x509.Certificate) bool {
	k, ok := a.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b.PublicKey)
}
