package dcap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/pcs"
)

// devAt is the verification time of the dev-PKI tests.
var devAt = pkiNotBefore.Add(30 * 24 * time.Hour)

// devInputs are the unsigned collateral documents of a dev PKI; tests edit
// them before signing.
type devInputs struct {
	tcb pcs.TCBInfo
	qe  pcs.QEIdentity
}

func devDocs(p *testPKI) devInputs {
	day := func(n int) time.Time { return pkiNotBefore.AddDate(0, 0, n) }
	comps := p.ext.CompSVN
	higher := comps
	higher[0]++
	var mrsigner [32]byte
	mrsigner[0] = 0x8c
	return devInputs{
		tcb: pcs.TCBInfo{
			ID: pcs.IDSGX, Version: 3, IssueDate: devAt.Add(-time.Hour), NextUpdate: devAt.Add(time.Hour),
			FMSPC: p.ext.FMSPC, PCEID: p.ext.PCEID, TCBEvaluationDataNumber: 17,
			Levels: []pcs.TCBLevel{
				{CompSVN: higher, PCESVN: p.ext.PCESVN, TCBDate: day(20), Status: attestation.StatusUpToDate},
				{CompSVN: comps, PCESVN: p.ext.PCESVN, TCBDate: day(10), Status: attestation.StatusSWHardeningNeeded, AdvisoryIDs: []string{"INTEL-SA-00001"}},
				{TCBDate: day(1), Status: attestation.StatusOutOfDate, AdvisoryIDs: []string{"INTEL-SA-00001", "INTEL-SA-00002"}},
			},
		},
		qe: pcs.QEIdentity{
			ID: pcs.IDQE, Version: 2, IssueDate: devAt.Add(-time.Hour), NextUpdate: devAt.Add(time.Hour),
			TCBEvaluationDataNumber: 17,
			MiscSelectMask:          0xffffffff,
			AttributesMask:          [16]byte{0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			MRSIGNER:                mrsigner, ISVProdID: 1,
			Levels: []pcs.QELevel{
				{ISVSVN: 10, TCBDate: day(10), Status: attestation.StatusUpToDate},
				{ISVSVN: 5, TCBDate: day(1), Status: attestation.StatusOutOfDate, AdvisoryIDs: []string{"INTEL-SA-00003"}},
			},
		},
	}
}

func (p *testPKI) collateral(tb testing.TB, d devInputs) *pcs.Collateral {
	tb.Helper()
	chain := []*x509.Certificate{p.tcb, p.root}
	tcb, err := pcs.SignTCBInfo(d.tcb, p.tcbKey, chain)
	if err != nil {
		tb.Fatal(err)
	}
	qe, err := pcs.SignQEIdentity(d.qe, p.tcbKey, chain)
	if err != nil {
		tb.Fatal(err)
	}
	return &pcs.Collateral{TCBInfo: tcb, QEIdentity: qe}
}

// crl issues a CRL valid at devAt listing serials.
func (p *testPKI) crl(tb testing.TB, issuer *x509.Certificate, key *ecdsa.PrivateKey, chain []*x509.Certificate, serials ...*big.Int) *pcs.CRL {
	tb.Helper()
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(1),
		ThisUpdate: devAt.Add(-time.Hour),
		NextUpdate: devAt.Add(time.Hour),
	}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: devAt.Add(-2 * time.Hour)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
	if err != nil {
		tb.Fatal(err)
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &pcs.CRL{List: l, Chain: chain}
}

func TestVerifyDevPKI(t *testing.T) {
	p := newTestPKI(t)
	other := newTestPKI(t)
	type tc struct {
		name       string
		params     func(q *QuoteParams)
		docs       func(d *devInputs)
		collateral func(c *pcs.Collateral) // after signing
		want       []error
		// on success
		status, qeStatus, raw attestation.TCBStatus
		advisories            []string
	}
	tests := []tc{
		{name: "ok", status: attestation.StatusSWHardeningNeeded, qeStatus: attestation.StatusUpToDate,
			raw: attestation.StatusSWHardeningNeeded, advisories: []string{"INTEL-SA-00001"}},
		{name: "out-of-date QE makes the platform out of date",
			params: func(q *QuoteParams) { q.QEReport.ISVSVN = 6 },
			status: attestation.StatusOutOfDate, qeStatus: attestation.StatusOutOfDate,
			raw: attestation.StatusSWHardeningNeeded, advisories: []string{"INTEL-SA-00001", "INTEL-SA-00003"}},
		{name: "lowest TCB level", params: func(q *QuoteParams) {}, docs: func(d *devInputs) {
			d.tcb.Levels = d.tcb.Levels[2:]
		}, status: attestation.StatusOutOfDate, qeStatus: attestation.StatusUpToDate, raw: attestation.StatusOutOfDate,
			advisories: []string{"INTEL-SA-00001", "INTEL-SA-00002"}},
		{name: "PCK CRL not listing the leaf", collateral: func(c *pcs.Collateral) {
			c.PCKCRL = p.crl(t, p.ca, p.caKey, []*x509.Certificate{p.ca, p.root}, big.NewInt(99))
			c.RootCRL = p.crl(t, p.root, p.rootKey, nil, big.NewInt(98))
		}, status: attestation.StatusSWHardeningNeeded, qeStatus: attestation.StatusUpToDate,
			raw: attestation.StatusSWHardeningNeeded, advisories: []string{"INTEL-SA-00001"}},

		{name: "QE below every level", params: func(q *QuoteParams) { q.QEReport.ISVSVN = 4 }, want: []error{ErrQEIdentity}},
		{name: "QE from another signer", params: func(q *QuoteParams) { q.QEReport.MRSIGNER[1] = 1 }, want: []error{ErrQEIdentity, pcs.ErrQEIdentityMismatch}},
		{name: "QE of another product", params: func(q *QuoteParams) { q.QEReport.ISVProdID = 2 }, want: []error{ErrQEIdentity, pcs.ErrQEIdentityMismatch}},
		{name: "QE in debug mode", params: func(q *QuoteParams) { q.QEReport.Attributes[0] = 0x02 }, want: []error{ErrQEIdentity, pcs.ErrQEIdentityMismatch}},
		{name: "TD_QE identity for an SGX quote", docs: func(d *devInputs) { d.qe.ID = pcs.IDTDQE }, want: []error{ErrQEIdentity}},
		{name: "platform below every TCB level", docs: func(d *devInputs) { d.tcb.Levels = d.tcb.Levels[:1] }, want: []error{ErrTCB, pcs.ErrTCBLevelNotFound}},
		{name: "TCB info for another FMSPC", docs: func(d *devInputs) { d.tcb.FMSPC[0] ^= 1 }, want: []error{ErrTCB, pcs.ErrFMSPCMismatch}},
		{name: "TCB info for another PCE", docs: func(d *devInputs) { d.tcb.PCEID[0] ^= 1 }, want: []error{ErrTCB}},
		{name: "TCB info expired", docs: func(d *devInputs) { d.tcb.NextUpdate = devAt }, want: []error{ErrCollateral, pcs.ErrExpired}},
		{name: "QE identity not yet valid", docs: func(d *devInputs) { d.qe.IssueDate = devAt.Add(time.Second) }, want: []error{ErrCollateral, pcs.ErrNotYetValid}},
		{name: "collateral signed by another PKI", collateral: func(c *pcs.Collateral) {
			*c = *other.collateral(t, devDocs(p))
		}, want: []error{ErrCollateral}},
		{name: "TCB info missing", collateral: func(c *pcs.Collateral) { c.TCBInfo = nil }, want: []error{ErrCollateral, pcs.ErrMissing}},
		{name: "PCK revoked", collateral: func(c *pcs.Collateral) {
			c.PCKCRL = p.crl(t, p.ca, p.caKey, []*x509.Certificate{p.ca, p.root}, big.NewInt(99), p.leaf.SerialNumber)
		}, want: []error{ErrRevocation, pcs.ErrRevoked}},
		{name: "PCK CA revoked", collateral: func(c *pcs.Collateral) {
			c.RootCRL = p.crl(t, p.root, p.rootKey, nil, p.ca.SerialNumber)
		}, want: []error{ErrRevocation, pcs.ErrRevoked}},
		{name: "root CRL given as PCK CRL", collateral: func(c *pcs.Collateral) {
			c.PCKCRL = p.crl(t, p.root, p.rootKey, nil)
		}, want: []error{ErrRevocation, pcs.ErrCRLIssuer}},
		{name: "PCK CRL of another PKI", collateral: func(c *pcs.Collateral) {
			c.PCKCRL = other.crl(t, other.ca, other.caKey, []*x509.Certificate{other.ca, other.root})
		}, want: []error{ErrCollateral}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := p.params(t)
			if tt.params != nil {
				tt.params(&params)
			}
			raw, err := BuildQuoteV3(params)
			if err != nil {
				t.Fatal(err)
			}
			docs := devDocs(p)
			if tt.docs != nil {
				tt.docs(&docs)
			}
			c := p.collateral(t, docs)
			if tt.collateral != nil {
				tt.collateral(c)
			}
			r, err := Verify(raw, Options{Roots: []*x509.Certificate{p.root}, Collateral: c, Time: devAt})
			if tt.want != nil {
				if err == nil {
					t.Fatalf("accepted: %+v", r)
				}
				for _, w := range tt.want {
					if !errors.Is(err, w) {
						t.Errorf("err = %v, want %v", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.TCBStatus != tt.status || r.QETCBStatus != tt.qeStatus || r.RawStatus != string(tt.raw) || !slices.Equal(r.AdvisoryIDs, tt.advisories) {
				t.Errorf("status %s QE %s raw %s advisories %v; want %s %s %s %v",
					r.TCBStatus, r.QETCBStatus, r.RawStatus, r.AdvisoryIDs, tt.status, tt.qeStatus, tt.raw, tt.advisories)
			}
			b := params.Body
			if r.MRENCLAVE != b.MRENCLAVE || r.MRSIGNER != b.MRSIGNER || r.ISVProdID != b.ISVProdID || r.ISVSVN != b.ISVSVN ||
				r.ReportData != b.ReportData || r.Attributes != b.Attributes || !r.Timestamp.Equal(devAt) ||
				string(r.FMSPC) != string(p.ext.FMSPC[:]) || r.Kind != attestation.KindDCAP {
				t.Errorf("result %+v does not describe the quoted enclave", r)
			}
		})
	}
}

func TestVerifyDevPKIMisuse(t *testing.T) {
	p := newTestPKI(t)
	raw, err := BuildQuoteV3(p.params(t))
	if err != nil {
		t.Fatal(err)
	}
	c := p.collateral(t, devDocs(p))
	if _, err := Verify(raw, Options{Roots: []*x509.Certificate{p.root}, Collateral: c}); err == nil {
		t.Error("zero time accepted")
	}
	if _, err := Verify(raw, Options{Collateral: c, Time: devAt}); !errors.Is(err, ErrPCKChain) {
		t.Errorf("no roots: err = %v, want ErrPCKChain", err)
	}
	// A quote built on a PCK certificate without the SGX extension passes the
	// signature checks but cannot be evaluated.
	noExt := *p
	noExt.ext = PCKExtensions{}
	leaf, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(5), NotBefore: pkiNotBefore, NotAfter: pkiNotBefore.AddDate(1, 0, 0),
	}, p.ca, &p.leafKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if noExt.leaf, err = x509.ParseCertificate(leaf); err != nil {
		t.Fatal(err)
	}
	raw, err = BuildQuoteV3(noExt.params(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(raw, Options{Roots: []*x509.Certificate{p.root}, Collateral: c, Time: devAt}); !errors.Is(err, ErrPCKExtension) {
		t.Errorf("leaf without SGX extension: err = %v, want ErrPCKExtension", err)
	}
}

func TestConvergeStatus(t *testing.T) {
	s := func(x attestation.TCBStatus) attestation.TCBStatus { return x }
	tests := []struct {
		platform, qe, want attestation.TCBStatus
	}{
		{attestation.StatusUpToDate, attestation.StatusUpToDate, attestation.StatusUpToDate},
		{attestation.StatusSWHardeningNeeded, attestation.StatusUpToDate, attestation.StatusSWHardeningNeeded},
		{attestation.StatusUpToDate, attestation.StatusOutOfDate, attestation.StatusOutOfDate},
		{attestation.StatusSWHardeningNeeded, attestation.StatusOutOfDate, attestation.StatusOutOfDate},
		{attestation.StatusConfigurationNeeded, attestation.StatusOutOfDate, attestation.StatusOutOfDateConfigurationNeeded},
		{attestation.StatusConfigurationAndSWHardeningNeeded, attestation.StatusOutOfDate, attestation.StatusOutOfDateConfigurationNeeded},
		{attestation.StatusOutOfDate, attestation.StatusOutOfDate, attestation.StatusOutOfDate},
		{attestation.StatusRevoked, attestation.StatusOutOfDate, attestation.StatusRevoked},
		{attestation.StatusUpToDate, attestation.StatusRevoked, attestation.StatusRevoked},
		{attestation.StatusConfigurationNeeded, attestation.StatusUpToDate, attestation.StatusConfigurationNeeded},
	}
	for _, tt := range tests {
		if got := convergeStatus(s(tt.platform), s(tt.qe)); got != tt.want {
			t.Errorf("converge(%s, %s) = %s, want %s", tt.platform, tt.qe, got, tt.want)
		}
	}
}

// TestAttestationKeyNotOnCurve binds invalid attestation keys properly (the
// QE report re-signed by the PCK key): they must be rejected, not panic.
func TestAttestationKeyNotOnCurve(t *testing.T) {
	p := newTestPKI(t)
	raw, err := BuildQuoteV3(p.params(t))
	if err != nil {
		t.Fatal(err)
	}
	authLen := int(binary.LittleEndian.Uint16(raw[offAuthLen:]))
	auth := raw[offAuth : offAuth+authLen]
	valid := raw[offAK:offQEReport]
	offCurve := bytes.Clone(valid)
	offCurve[63] ^= 1
	for _, tt := range []struct {
		name string
		ak   []byte
		want error
	}{
		{"valid key (control)", valid, nil},
		{"zero", make([]byte, 64), ErrQuoteSignature},
		{"off the curve", offCurve, ErrQuoteSignature},
		{"coordinates >= p", bytes.Repeat([]byte{0xff}, 64), ErrQuoteSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(raw)
			copy(b[offAK:], tt.ak)
			binding := sha256.Sum256(append(bytes.Clone(tt.ak), auth...))
			copy(b[offQEReport+320:], binding[:])
			sig, err := signRaw(p.leafKey, b[offQEReport:offQESig])
			if err != nil {
				t.Fatal(err)
			}
			copy(b[offQESig:], sig)
			q, err := ParseQuote(b)
			if err != nil {
				t.Fatal(err)
			}
			_, err = VerifySignatures(q, []*x509.Certificate{p.root}, devAt)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
