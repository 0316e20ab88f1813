package dcap

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/pcs"
)

// Errors of the collateral stage of Verify. Each wraps the pcs error that
// caused it, so errors.Is works for both (e.g. ErrCollateral and
// pcs.ErrExpired).
var (
	ErrNoCollateral = errors.New("no collateral")
	ErrCollateral   = errors.New("collateral invalid")
	ErrRevocation   = errors.New("PCK revocation check failed")
	ErrQEIdentity   = errors.New("QE not accepted by QE identity")
	ErrTCB          = errors.New("platform TCB not evaluable")
)

// Options configure Verify.
type Options struct {
	// Roots anchor the PCK chain and the collateral signing chains.
	Roots []*x509.Certificate
	// Collateral is Intel's (or the dev PKI's) TCB info, QE identity and
	// CRLs for the quote's platform.
	Collateral *pcs.Collateral
	// Time is when everything must be valid: the chain replays verification
	// at block time, so the wall clock is never consulted.
	Time time.Time
}

// Verify fully verifies an SGX ECDSA quote at opts.Time and returns what it
// establishes about the enclave. The checks run in the order the package
// documentation gives; the first failure is returned, wrapping one of this
// package's sentinel errors.
func Verify(quote []byte, opts Options) (*attestation.Result, error) {
	if opts.Time.IsZero() {
		return nil, errors.New("verify quote: no verification time given")
	}
	q, err := ParseQuote(quote)
	if err != nil {
		return nil, err
	}
	path, err := VerifySignatures(q, opts.Roots, opts.Time)
	if err != nil {
		return nil, err
	}
	if q.Body == nil {
		return nil, fmt.Errorf("verify quote: %w: %#x (only SGX enclave quotes)", ErrUnsupportedTEE, q.Header.TEEType)
	}
	c := opts.Collateral
	if c == nil {
		return nil, fmt.Errorf("verify quote: %w", ErrNoCollateral)
	}
	if err := c.Verify(opts.Roots, opts.Time); err != nil {
		return nil, fmt.Errorf("verify quote: %w: %w", ErrCollateral, err)
	}
	if err := c.CheckRevocation(path); err != nil {
		return nil, fmt.Errorf("verify quote: %w: %w", ErrRevocation, err)
	}

	id := &c.QEIdentity.Identity
	if err := id.CheckID(pcs.IDQE); err != nil {
		return nil, fmt.Errorf("verify quote: %w: %w", ErrQEIdentity, err)
	}
	qe, err := id.Evaluate(pcs.QEReport{
		MRSIGNER:   q.QEReport.MRSIGNER,
		ISVProdID:  q.QEReport.ISVProdID,
		MiscSelect: q.QEReport.MiscSelect,
		Attributes: q.QEReport.Attributes,
		ISVSVN:     q.QEReport.ISVSVN,
	})
	if err != nil {
		return nil, fmt.Errorf("verify quote: %w: %w", ErrQEIdentity, err)
	}

	ext, err := ParsePCKExtensions(path[0])
	if err != nil {
		return nil, fmt.Errorf("verify quote: %w", err)
	}
	level, err := c.TCBInfo.Info.Evaluate(ext.FMSPC, ext.PCEID, ext.CompSVN, ext.PCESVN)
	if err != nil {
		return nil, fmt.Errorf("verify quote: %w: %w", ErrTCB, err)
	}

	b := q.Body
	return &attestation.Result{
		Kind:        attestation.KindDCAP,
		MRENCLAVE:   b.MRENCLAVE,
		MRSIGNER:    b.MRSIGNER,
		ISVProdID:   b.ISVProdID,
		ISVSVN:      b.ISVSVN,
		Attributes:  b.Attributes,
		CPUSVN:      b.CPUSVN,
		ReportData:  b.ReportData,
		TCBStatus:   convergeStatus(level.Status, qe.Status),
		RawStatus:   string(level.Status),
		AdvisoryIDs: mergeAdvisories(level.AdvisoryIDs, qe.AdvisoryIDs),
		QETCBStatus: qe.Status,
		FMSPC:       slices.Clone(ext.FMSPC[:]),
		TCBDate:     level.TCBDate,
		Timestamp:   opts.Time,
	}, nil
}

// convergeStatus folds the QE's TCB status into the platform's as Intel's
// quote verification library does: an out-of-date or revoked quoting enclave
// weakens what its quotes prove, so a policy accepting only current platforms
// must not see "UpToDate" for them.
func convergeStatus(platform, qe attestation.TCBStatus) attestation.TCBStatus {
	switch qe {
	case attestation.StatusRevoked:
		return attestation.StatusRevoked
	case attestation.StatusOutOfDate:
		switch platform {
		case attestation.StatusUpToDate, attestation.StatusSWHardeningNeeded:
			return attestation.StatusOutOfDate
		case attestation.StatusConfigurationNeeded, attestation.StatusConfigurationAndSWHardeningNeeded:
			return attestation.StatusOutOfDateConfigurationNeeded
		}
	}
	return platform
}

// mergeAdvisories returns the platform's advisories followed by the QE's
// that are not already listed.
func mergeAdvisories(platform, qe []string) []string {
	out := slices.Clone(platform)
	for _, a := range qe {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
