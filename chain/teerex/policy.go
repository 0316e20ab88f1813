package teerex

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/attestation/roots"
)

// Defaults of a new policy.
const (
	DefaultRenewalPeriod = 24 * time.Hour
	DefaultIASMaxAge     = 24 * time.Hour
	// DefaultLiveness is how long a production enclave stays active
	// without a keep_alive: a shard that lost a machine reconfigures after
	// it. Workers keep alive every third of it.
	DefaultLiveness = 10 * time.Minute
	// MinLiveness bounds the liveness period from below, so that a worker
	// has several block times to keep alive.
	MinLiveness = 10 * time.Second
)

// Bounds of a policy, so that a registration never has to parse an
// unbounded amount of state.
const (
	maxRoots    = 8
	maxTCBInfos = 256
	maxPCKCRLs  = 8
	maxDocBytes = 64 << 10
)

// SignedDoc is a signed Intel collateral document as PCS serves it. The
// bytes are kept as they were signed and verified again, at block time, by
// every registration that uses them.
type SignedDoc struct {
	// Envelope is the PCS response body: {"tcbInfo":{...},"signature":"hex"}
	// or {"enclaveIdentity":{...},"signature":"hex"}.
	Envelope []byte `cbor:"envelope" json:"envelope"`
	// Chain is the issuer chain, signer first: PEM or concatenated DER.
	Chain []byte `cbor:"chain" json:"chain"`
}

// CRLDoc is a certificate revocation list with its issuer chain.
type CRLDoc struct {
	// CRL is DER (PEM and hex text of DER are accepted too).
	CRL []byte `cbor:"crl" json:"crl"`
	// Chain is the issuer chain, issuer first (may be empty for the root's
	// own list).
	Chain []byte `cbor:"chain" json:"chain"`
}

// Policy is the on-chain attestation policy. Registrations are verified
// against it at their block time; collateral is stored as signed bytes so
// that its signatures and validity windows are checked anew each time.
type Policy struct {
	// DCAPRoots anchor PCK chains and collateral (DER certificates): the
	// Intel SGX Root CA in production, the sim dev root on a dev chain.
	DCAPRoots [][]byte `cbor:"dcap_roots" json:"dcap_roots"`
	// IASRoots anchor IAS report signing certificates (DER).
	IASRoots [][]byte `cbor:"ias_roots" json:"ias_roots"`
	// TCBInfos holds one signed SGX TCB info per FMSPC; a DCAP quote is
	// judged by the one for its PCK certificate's FMSPC.
	TCBInfos []SignedDoc `cbor:"tcb_infos" json:"tcb_infos"`
	// QEIdentity is the signed identity of Intel's quoting enclave.
	QEIdentity *SignedDoc `cbor:"qe_identity,omitempty" json:"qe_identity,omitempty"`
	// PCKCRLs are the optional CRLs of the PCK CAs (processor, platform);
	// a quote is checked against the one its PCK certificate's issuer
	// signed, if present.
	PCKCRLs []CRLDoc `cbor:"pck_crls,omitempty" json:"pck_crls,omitempty"`
	// RootCRL is the optional CRL of the root CA.
	RootCRL *CRLDoc `cbor:"root_crl,omitempty" json:"root_crl,omitempty"`
	// AcceptedStatuses are the TCB statuses that may register.
	AcceptedStatuses []attestation.TCBStatus `cbor:"accepted_statuses" json:"accepted_statuses"`
	// AllowDebug admits debug enclaves; AllowAnyMRENCLAVE admits every
	// measurement instead of only the allowlisted ones. Both are for dev
	// chains only and refused elsewhere.
	AllowDebug        bool `cbor:"allow_debug" json:"allow_debug"`
	AllowAnyMRENCLAVE bool `cbor:"allow_any_mrenclave" json:"allow_any_mrenclave"`
	// RenewalPeriodSecs is how long a registration stays active.
	RenewalPeriodSecs uint64 `cbor:"renewal_period_secs" json:"renewal_period_secs"`
	// IASMaxAgeSecs bounds the age of an IAS report at registration.
	IASMaxAgeSecs uint64 `cbor:"ias_max_age_secs" json:"ias_max_age_secs"`
	// LivenessSecs, if not zero, is how long an enclave stays active
	// after its latest registration or keep_alive: a worker that stops
	// (its machine lost) leaves its shard's membership after it, rather
	// than at the end of the renewal period. Zero: registration only.
	LivenessSecs uint64 `cbor:"liveness_secs,omitempty" json:"liveness_secs,omitempty"`
}

// RenewalPeriod returns the renewal period.
func (p *Policy) RenewalPeriod() time.Duration {
	return time.Duration(p.RenewalPeriodSecs) * time.Second
}

// Liveness returns the liveness period (zero: none).
func (p *Policy) Liveness() time.Duration { return time.Duration(p.LivenessSecs) * time.Second }

// IASMaxAge returns the maximum IAS report age.
func (p *Policy) IASMaxAge() time.Duration { return time.Duration(p.IASMaxAgeSecs) * time.Second }

// ProductionPolicy is the policy of a production genesis: Intel's roots, no
// collateral yet (sudo adds it with set_attestation_policy or
// set_tcb_info), no debug enclaves, only allowlisted measurements, TCB
// statuses UpToDate and SWHardeningNeeded.
func ProductionPolicy() Policy {
	return Policy{
		DCAPRoots:         [][]byte{roots.SGXRootCA().Raw},
		IASRoots:          [][]byte{roots.IASRootCA().Raw},
		AcceptedStatuses:  []attestation.TCBStatus{attestation.StatusUpToDate, attestation.StatusSWHardeningNeeded},
		RenewalPeriodSecs: uint64(DefaultRenewalPeriod / time.Second),
		IASMaxAgeSecs:     uint64(DefaultIASMaxAge / time.Second),
		LivenessSecs:      uint64(DefaultLiveness / time.Second),
	}
}

// AddCollateral stores c in p: its TCB info replaces the one of the same
// FMSPC, its QE identity and root CRL replace p's, its PCK CRL replaces the
// one of the same issuer.
func (p *Policy) AddCollateral(c *pcs.Collateral) error {
	if c == nil || c.TCBInfo == nil || c.QEIdentity == nil {
		return errors.New("add collateral: TCB info and QE identity required")
	}
	tcb, err := c.TCBInfo.MarshalEnvelope()
	if err != nil {
		return fmt.Errorf("add collateral: %w", err)
	}
	qe, err := c.QEIdentity.MarshalEnvelope()
	if err != nil {
		return fmt.Errorf("add collateral: %w", err)
	}
	if err := p.SetTCBInfo(SignedDoc{Envelope: tcb, Chain: chainPEM(c.TCBInfo.Chain)}); err != nil {
		return fmt.Errorf("add collateral: %w", err)
	}
	p.QEIdentity = &SignedDoc{Envelope: qe, Chain: chainPEM(c.QEIdentity.Chain)}
	if c.PCKCRL != nil {
		doc := CRLDoc{CRL: c.PCKCRL.List.Raw, Chain: chainPEM(c.PCKCRL.Chain)}
		p.PCKCRLs = slices.DeleteFunc(slices.Clone(p.PCKCRLs), func(d CRLDoc) bool {
			l, err := pcs.ParseCRL(d.CRL, nil)
			return err == nil && bytes.Equal(l.List.RawIssuer, c.PCKCRL.List.RawIssuer)
		})
		p.PCKCRLs = append(p.PCKCRLs, doc)
	}
	if c.RootCRL != nil {
		// The root signs its own list: the policy's root is its issuer, and
		// carrying another issue of the root certificate (same key, other
		// signature bytes, as sim PKIs made at different times have) would
		// only make crypto/x509 refuse the pair.
		p.RootCRL = &CRLDoc{CRL: c.RootCRL.List.Raw}
	}
	return nil
}

// SetTCBInfo adds doc to p, replacing the TCB info of the same FMSPC.
func (p *Policy) SetTCBInfo(doc SignedDoc) error {
	info, err := parseTCBInfo(doc)
	if err != nil {
		return err
	}
	p.TCBInfos = slices.DeleteFunc(slices.Clone(p.TCBInfos), func(d SignedDoc) bool {
		other, err := parseTCBInfo(d)
		return err == nil && other.Info.FMSPC == info.Info.FMSPC
	})
	p.TCBInfos = append(p.TCBInfos, doc)
	return nil
}

// chainPEM encodes a chain as PEM. (Concatenated DER is accepted too, but
// pcs.ParseCertificates trims surrounding white space first, which corrupts
// DER whose last signature byte happens to be a space or newline.)
func chainPEM(chain []*x509.Certificate) []byte {
	var out []byte
	for _, c := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func parseTCBInfo(d SignedDoc) (*pcs.SignedTCBInfo, error) {
	s, err := pcs.ParseTCBInfo(d.Envelope, d.Chain)
	if err != nil {
		return nil, err
	}
	if s.Info.ID != pcs.IDSGX && !(s.Info.ID == "" && s.Info.Version == 2) {
		return nil, fmt.Errorf("TCB info id %q: only SGX TCB infos are used", s.Info.ID)
	}
	return s, nil
}

func parseQEIdentity(d SignedDoc) (*pcs.SignedQEIdentity, error) {
	s, err := pcs.ParseQEIdentity(d.Envelope, d.Chain)
	if err != nil {
		return nil, err
	}
	if err := s.Identity.CheckID(pcs.IDQE); err != nil {
		return nil, err
	}
	return s, nil
}

// Parse parses and verifies the CRL under its issuer chain.
func (d CRLDoc) Parse() (*pcs.CRL, error) { return pcs.ParseCRL(d.CRL, d.Chain) }

func parseRoots(ders [][]byte) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, 0, len(ders))
	for i, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("root %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// Validate checks that p is usable at time at on a chain in dev mode or
// not: bounded, every document parses, collateral signatures and windows
// verify under p's DCAP roots, FMSPCs and CRL issuers are unique, statuses
// known, and the dev-only switches are off outside dev mode. Errors wrap
// ErrInvalidPolicy or ErrDevOnly.
func (p *Policy) Validate(dev bool, at time.Time) error {
	if !dev && (p.AllowDebug || p.AllowAnyMRENCLAVE) {
		return fmt.Errorf("%w: allow_debug and allow_any_mrenclave", ErrDevOnly)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...))
	}
	switch {
	case len(p.DCAPRoots) > maxRoots || len(p.IASRoots) > maxRoots:
		return bad("more than %d roots", maxRoots)
	case len(p.TCBInfos) > maxTCBInfos:
		return bad("more than %d TCB infos", maxTCBInfos)
	case len(p.PCKCRLs) > maxPCKCRLs:
		return bad("more than %d PCK CRLs", maxPCKCRLs)
	case p.RenewalPeriodSecs == 0 || p.RenewalPeriodSecs > uint64(100*365*24*time.Hour/time.Second):
		return bad("renewal period %ds out of range", p.RenewalPeriodSecs)
	case p.IASMaxAgeSecs == 0 || p.IASMaxAgeSecs > uint64(100*365*24*time.Hour/time.Second):
		return bad("IAS max age %ds out of range", p.IASMaxAgeSecs)
	case p.LivenessSecs != 0 && (p.LivenessSecs < uint64(MinLiveness/time.Second) || p.LivenessSecs > p.RenewalPeriodSecs):
		return bad("liveness period %ds: zero, or from %s to the renewal period", p.LivenessSecs, MinLiveness)
	}
	seen := make(map[attestation.TCBStatus]bool)
	for _, s := range p.AcceptedStatuses {
		if !s.Known() || seen[s] {
			return bad("accepted status %q unknown or repeated", s)
		}
		seen[s] = true
	}
	dcapRoots, err := parseRoots(p.DCAPRoots)
	if err != nil {
		return bad("DCAP %v", err)
	}
	if _, err := parseRoots(p.IASRoots); err != nil {
		return bad("IAS %v", err)
	}
	tooLarge := func(d SignedDoc) bool { return len(d.Envelope) > maxDocBytes || len(d.Chain) > maxDocBytes }
	fmspcs := make(map[[6]byte]bool)
	for i, d := range p.TCBInfos {
		if tooLarge(d) {
			return bad("TCB info %d too large", i)
		}
		s, err := parseTCBInfo(d)
		if err != nil {
			return bad("TCB info %d: %v", i, err)
		}
		if fmspcs[s.Info.FMSPC] {
			return bad("TCB info %d: FMSPC %x repeated", i, s.Info.FMSPC)
		}
		fmspcs[s.Info.FMSPC] = true
		if err := s.Verify(dcapRoots, at); err != nil {
			return fmt.Errorf("%w: TCB info %d: %w", ErrInvalidPolicy, i, err)
		}
	}
	if d := p.QEIdentity; d != nil {
		if tooLarge(*d) {
			return bad("QE identity too large")
		}
		s, err := parseQEIdentity(*d)
		if err != nil {
			return bad("QE identity: %v", err)
		}
		if err := s.Verify(dcapRoots, at); err != nil {
			return fmt.Errorf("%w: QE identity: %w", ErrInvalidPolicy, err)
		}
	}
	crls := p.PCKCRLs
	if p.RootCRL != nil {
		crls = append(slices.Clip(crls), *p.RootCRL)
	}
	issuers := make(map[string]bool)
	for i, d := range crls {
		if len(d.CRL) > maxDocBytes || len(d.Chain) > maxDocBytes {
			return bad("CRL %d too large", i)
		}
		c, err := d.Parse()
		if err != nil {
			return bad("CRL %d: %v", i, err)
		}
		if issuers[string(c.List.RawIssuer)] {
			return bad("CRL %d: issuer repeated", i)
		}
		issuers[string(c.List.RawIssuer)] = true
		if err := c.Verify(dcapRoots, at); err != nil {
			return fmt.Errorf("%w: CRL %d: %w", ErrInvalidPolicy, i, err)
		}
	}
	return nil
}

// attestationPolicy is the part of p that attestation.Policy.Check
// enforces. Measurements are checked separately against the allowlist,
// because there an empty list means none, not any; the IAS report age is
// checked with the evidence.
func (p *Policy) attestationPolicy() attestation.Policy {
	return attestation.Policy{
		AllowDebug:          p.AllowDebug,
		AcceptedTCBStatuses: p.AcceptedStatuses,
	}
}

// Accept applies the policy's acceptance rules but the allowlist (debug,
// TCB status) to a verified attestation at time at; the error is this
// module's class of the rejection.
func (p *Policy) Accept(res *attestation.Result, at time.Time) error {
	ap := p.attestationPolicy()
	if err := ap.Check(res, at); err != nil {
		return Classify(err)
	}
	return nil
}
