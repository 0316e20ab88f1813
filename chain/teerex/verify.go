package teerex

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/dcap"
	"github.com/integritee-go/integritee/attestation/ias"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Evidence is the attestation a registration carries.
type Evidence struct {
	// Kind is attestation.KindDCAP or attestation.KindIAS.
	Kind attestation.Kind `cbor:"kind"`
	// Quote is the raw SGX DCAP quote (dcap).
	Quote []byte `cbor:"quote,omitempty"`
	// Report is the exact signed IAS report JSON, Signature IAS's RSA
	// signature over it and Certs the signing chain as DER, signing
	// certificate first (ias).
	Report    []byte   `cbor:"report,omitempty"`
	Signature []byte   `cbor:"signature,omitempty"`
	Certs     [][]byte `cbor:"certs,omitempty"`
}

// Evidence size bounds, far above real evidence (a DCAP quote is about
// 4.6 KB, an IAS report 1 KB, its certificate 1.2 KB).
const (
	maxQuoteBytes     = 32 << 10
	maxReportBytes    = 16 << 10
	maxSignatureBytes = 1 << 10
	maxCerts          = 4
	maxCertBytes      = 8 << 10
)

func (ev *Evidence) validate() error {
	switch ev.Kind {
	case attestation.KindDCAP:
		switch {
		case len(ev.Quote) == 0 || len(ev.Quote) > maxQuoteBytes:
			return fmt.Errorf("dcap quote of %d bytes, want 1..%d", len(ev.Quote), maxQuoteBytes)
		case ev.Report != nil || ev.Signature != nil || ev.Certs != nil:
			return errors.New("dcap evidence with IAS fields")
		}
	case attestation.KindIAS:
		switch {
		case ev.Quote != nil:
			return errors.New("ias evidence with a quote")
		case len(ev.Report) == 0 || len(ev.Report) > maxReportBytes:
			return fmt.Errorf("ias report of %d bytes, want 1..%d", len(ev.Report), maxReportBytes)
		case len(ev.Signature) == 0 || len(ev.Signature) > maxSignatureBytes:
			return fmt.Errorf("ias signature of %d bytes, want 1..%d", len(ev.Signature), maxSignatureBytes)
		case len(ev.Certs) == 0 || len(ev.Certs) > maxCerts:
			return fmt.Errorf("ias chain of %d certificates, want 1..%d", len(ev.Certs), maxCerts)
		}
		for i, c := range ev.Certs {
			if len(c) == 0 || len(c) > maxCertBytes {
				return fmt.Errorf("ias certificate %d of %d bytes, want 1..%d", i, len(c), maxCertBytes)
			}
		}
	default:
		return fmt.Errorf("unknown evidence kind %q", ev.Kind)
	}
	return nil
}

// genesisDomain separates genesis identities from other hashes.
const genesisDomain = "integritee/genesis/v1"

// GenesisID names the chain an enclave follows: SHA-256 over a domain,
// the chain ID, the initial height and the hash of the genesis validator
// set (the light client's root of trust, which is also the ValidatorsHash
// of the header at the initial height). The chain records its own at
// genesis; an enclave computes it from what its light client starts from,
// commits to it in its report data and seals its keys under it, and
// trusted calls and getters are signed over it, so that nothing made for
// one chain is accepted on another.
func GenesisID(chainID string, initialHeight int64, validatorsHash []byte) types.Hash {
	h := sha256.New()
	h.Write([]byte(genesisDomain))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(chainID))))
	h.Write([]byte(chainID))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(max(initialHeight, 1))))
	h.Write(validatorsHash)
	return types.Hash(h.Sum(nil))
}

// ReportData is what an enclave must put in its report to register with
// signer key sender and shielding key shieldingKey on the chain whose
// genesis ID is genesis: SHA-256(sender || shieldingKey) followed by
// genesis. The second half binds the quote to the chain the enclave
// follows, so that an enclave a host pointed at another chain (its own
// validators under the real chain ID) cannot register here.
func ReportData(sender tx.Address, shieldingKey []byte, genesis types.Hash) [64]byte {
	h := sha256.New()
	h.Write(sender[:])
	h.Write(shieldingKey)
	var rd [64]byte
	copy(rd[:32], h.Sum(nil))
	copy(rd[32:], genesis[:])
	return rd
}

// Verify verifies ev under p's roots and collateral at time at. It
// does not apply the policy's acceptance rules (debug, status, age,
// measurements). Errors are this module's *types.Errors.
func (p *Policy) Verify(ev *Evidence, at time.Time) (*attestation.Result, error) {
	if err := ev.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedEvidence, err)
	}
	var (
		res *attestation.Result
		err error
	)
	switch ev.Kind {
	case attestation.KindDCAP:
		res, err = verifyDCAP(p, ev.Quote, at)
	default:
		res, err = verifyIAS(p, ev, at)
		// Freshness is a property of the evidence, checked with it: an IAS
		// report older than the policy allows proves nothing current.
		if err == nil && at.Sub(res.Timestamp) > p.IASMaxAge() {
			err = fmt.Errorf("%w: report of %s is %s old, at most %s", attestation.ErrTooOld,
				res.Timestamp.UTC().Format(time.RFC3339), at.Sub(res.Timestamp), p.IASMaxAge())
		}
	}
	if err != nil {
		return nil, Classify(err)
	}
	return res, nil
}

func verifyDCAP(p *Policy, quote []byte, at time.Time) (*attestation.Result, error) {
	roots, err := parseRoots(p.DCAPRoots)
	if err != nil {
		return nil, fmt.Errorf("%w: DCAP %w", ErrInvalidPolicy, err)
	}
	coll, err := p.collateralFor(quote)
	if err != nil {
		return nil, err
	}
	return dcap.Verify(quote, dcap.Options{Roots: roots, Collateral: coll, Time: at})
}

func verifyIAS(p *Policy, ev *Evidence, at time.Time) (*attestation.Result, error) {
	roots, err := parseRoots(p.IASRoots)
	if err != nil {
		return nil, fmt.Errorf("%w: IAS %w", ErrInvalidPolicy, err)
	}
	chain := make([]*x509.Certificate, 0, len(ev.Certs))
	for i, der := range ev.Certs {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: ias certificate %d: %w", ErrMalformedEvidence, i, err)
		}
		chain = append(chain, c)
	}
	return ias.Verify(&ias.Evidence{Body: ev.Report, Signature: ev.Signature, Chain: chain}, ias.Options{Roots: roots, Time: at})
}

// Collateral is a set of Intel-signed PCS collateral, as the policy holds
// it: what an enclave may take from its host to judge peers, since every
// document is verified under the enclave's own roots.
type Collateral struct {
	TCBInfos   []SignedDoc `cbor:"tcb_infos,omitempty"`
	QEIdentity *SignedDoc  `cbor:"qe_identity,omitempty"`
	PCKCRLs    []CRLDoc    `cbor:"pck_crls,omitempty"`
	RootCRL    *CRLDoc     `cbor:"root_crl,omitempty"`
}

// Collateral returns the policy's collateral.
func (p *Policy) Collateral() Collateral {
	return Collateral{TCBInfos: p.TCBInfos, QEIdentity: p.QEIdentity, PCKCRLs: p.PCKCRLs, RootCRL: p.RootCRL}
}

// ForQuote selects the collateral of the platform that produced quote (as
// registration does): nil when none fits. Nothing is verified here.
func (c *Collateral) ForQuote(quote []byte) (*pcs.Collateral, error) {
	p := Policy{TCBInfos: c.TCBInfos, QEIdentity: c.QEIdentity, PCKCRLs: c.PCKCRLs, RootCRL: c.RootCRL}
	return p.collateralFor(quote)
}

// collateralFor selects the stored collateral for the platform that
// produced quote: the TCB info of its PCK certificate's FMSPC, the QE
// identity, the PCK CRL of its issuer and the root CRL. It returns nil
// collateral when none fits, so that dcap.Verify reports the quote's own
// defects (untrusted root, bad signatures) before ErrNoCollateral.
func (p *Policy) collateralFor(quote []byte) (*pcs.Collateral, error) {
	q, err := dcap.ParseQuote(quote)
	if err != nil || len(q.PCKChain) == 0 || p.QEIdentity == nil {
		return nil, nil
	}
	pck := q.PCKChain[0]
	ext, err := dcap.ParsePCKExtensions(pck)
	if err != nil {
		return nil, nil
	}
	var c pcs.Collateral
	want := []byte(hex.EncodeToString(ext.FMSPC[:]))
	for _, d := range p.TCBInfos {
		// Cheap filter before parsing: the FMSPC appears in the body.
		if !bytes.Contains(bytes.ToLower(d.Envelope), want) {
			continue
		}
		s, err := parseTCBInfo(d)
		if err != nil {
			return nil, fmt.Errorf("%w: stored TCB info: %w", ErrInvalidPolicy, err)
		}
		if s.Info.FMSPC == ext.FMSPC {
			c.TCBInfo = s
			break
		}
	}
	if c.TCBInfo == nil {
		return nil, nil
	}
	if c.QEIdentity, err = parseQEIdentity(*p.QEIdentity); err != nil {
		return nil, fmt.Errorf("%w: stored QE identity: %w", ErrInvalidPolicy, err)
	}
	for _, d := range p.PCKCRLs {
		l, err := d.Parse()
		if err != nil {
			return nil, fmt.Errorf("%w: stored PCK CRL: %w", ErrInvalidPolicy, err)
		}
		if bytes.Equal(l.List.RawIssuer, pck.RawIssuer) {
			c.PCKCRL = l
			break
		}
	}
	if p.RootCRL != nil {
		if c.RootCRL, err = p.RootCRL.Parse(); err != nil {
			return nil, fmt.Errorf("%w: stored root CRL: %w", ErrInvalidPolicy, err)
		}
	}
	return &c, nil
}

// Classify wraps a verification or policy error from the attestation
// library in this module's error for its class, keeping the original for
// errors.Is and the log. Errors that already are this module's pass through.
func Classify(err error) error {
	var code error
	switch {
	case errors.Is(err, ErrInvalidPolicy), errors.Is(err, ErrMalformedEvidence):
		return err
	// DCAP collateral stages first: they run after the PCK chain was
	// anchored, and their own chains may wrap ErrUntrustedRoot.
	case errors.Is(err, dcap.ErrNoCollateral):
		code = ErrNoCollateral
	case errors.Is(err, dcap.ErrRevocation) && errors.Is(err, pcs.ErrRevoked):
		code = ErrRevoked
	case errors.Is(err, dcap.ErrRevocation), errors.Is(err, dcap.ErrCollateral):
		code = ErrInvalidCollateral
	case errors.Is(err, dcap.ErrQEIdentity), errors.Is(err, dcap.ErrTCB):
		code = ErrTCBNotEvaluable
	case errors.Is(err, attestation.ErrUntrustedRoot):
		code = ErrUntrustedRoot
	case errors.Is(err, dcap.ErrPCKChain), errors.Is(err, ias.ErrUntrustedSigner):
		code = ErrInvalidCertificate
	case errors.Is(err, dcap.ErrQEReportSignature), errors.Is(err, dcap.ErrAttestationKeyBinding),
		errors.Is(err, dcap.ErrQuoteSignature), errors.Is(err, ias.ErrSignature):
		code = ErrInvalidSignature
	case errors.Is(err, dcap.ErrUnsupportedVersion), errors.Is(err, dcap.ErrUnsupportedKeyType),
		errors.Is(err, dcap.ErrUnsupportedCertData), errors.Is(err, dcap.ErrUnsupportedTEE):
		code = ErrUnsupportedEvidence
	case errors.Is(err, dcap.ErrMalformed), errors.Is(err, dcap.ErrTrailingBytes),
		errors.Is(err, dcap.ErrPCKExtension), errors.Is(err, ias.ErrMalformed):
		code = ErrMalformedEvidence
	case errors.Is(err, ias.ErrQuoteStatus):
		code = ErrQuoteRejected
	case errors.Is(err, attestation.ErrFromFuture):
		code = ErrEvidenceFromFuture
	case errors.Is(err, attestation.ErrTooOld):
		code = ErrStaleEvidence
	case errors.Is(err, attestation.ErrDebugEnclave):
		code = ErrDebugEnclave
	case errors.Is(err, attestation.ErrMRENCLAVENotAllowed):
		code = ErrMRENCLAVENotAllowed
	case errors.Is(err, attestation.ErrTCBStatus):
		code = ErrTCBStatus
	default:
		code = ErrInvalidAttestation
	}
	return fmt.Errorf("%w: %w", code, err)
}
