package pcs

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/internal/testvectors"
)

// Fixed verification times from SOURCES.md.
var (
	today         = mustTime("2026-11-25T00:00:00Z")
	integriteeAt  = time.UnixMilli(1671606747000).UTC()
	qvlAt         = time.Unix(1752919277, 0).UTC()
	qvlTDXAt      = time.Unix(1752919234, 0).UTC()
	phalaAt       = time.Unix(1700528400, 0).UTC()
	oasisAt       = time.Unix(1671497404, 0).UTC()
	automataAt    = time.Unix(1755236700, 0).UTC()
	automataJunAt = time.Unix(1749095100, 0).UTC()
	fortanixAt    = mustTime("2020-06-05T12:00:00Z")
	tdxGuestAt    = mustTime("2023-07-01T01:00:00Z")
)

const (
	rootPEM    = "intel-roots/Intel_SGX_Root_CA.pem"
	signing18  = "intel-roots/Intel_SGX_TCB_Signing_2018-05-21_to_2025-05-21.pem"
	signing25  = "intel-roots/Intel_SGX_TCB_Signing_2025-05-06_to_2032-05-06.pem"
	platformCA = "intel-roots/Intel_SGX_PCK_Platform_CA.pem"
)

// qeMRSIGNER is the MRSIGNER of Intel's SGX QE (and TD_QE's differs).
const qeMRSIGNER = "8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff"

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func intelRoots(t *testing.T) []*x509.Certificate {
	t.Helper()
	return mustCerts(t, testvectors.Read(t, rootPEM))
}

func mustCerts(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	c, err := ParseCertificates(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func cat(t *testing.T, files ...string) []byte {
	t.Helper()
	var b []byte
	for _, f := range files {
		b = append(b, testvectors.Read(t, f)...)
		b = append(b, '\n')
	}
	return b
}

// must turns a (value, error) result into a check: must(f())(t).
func must[T any](v T, err error) func(testing.TB) T {
	return func(tb testing.TB) T {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// quotePCKChain cuts the PEM PCK chain out of a quote's certification data;
// the quote format itself is the dcap package's business.
func quotePCKChain(t *testing.T, quote []byte) []*x509.Certificate {
	t.Helper()
	begin := bytes.Index(quote, []byte("-----BEGIN CERTIFICATE-----"))
	end := bytes.LastIndex(quote, []byte("-----END CERTIFICATE-----"))
	if begin < 0 || end < 0 {
		t.Fatal("no PEM chain in quote")
	}
	return mustCerts(t, quote[begin:end+len("-----END CERTIFICATE-----")])
}

func comps(v ...uint8) (c [16]uint8) {
	copy(c[:], v)
	return c
}

func fmspc(t *testing.T, s string) (f [6]byte) {
	copy(f[:], unhex(t, s))
	return f
}

func mrsigner(t *testing.T, s string) (m [32]byte) {
	copy(m[:], unhex(t, s))
	return m
}

// collateralSet is one real collateral set of the vectors with the facts
// SOURCES.md states for it.
type collateralSet struct {
	name  string
	load  func(t *testing.T) *Collateral
	at    time.Time
	quote func(t *testing.T) []byte // for the PCK path; nil if none

	fmspc      string
	comps      [16]uint8
	pceSVN     uint16
	status     attestation.TCBStatus
	advisories []string

	qe       QEReport
	qeStatus attestation.TCBStatus

	negatives []negative
}

type negative struct {
	at   time.Time
	want error
}

func signed(t *testing.T, tcb, tcbChain, qe, qeChain string) *Collateral {
	t.Helper()
	return &Collateral{
		TCBInfo:    must(ParseTCBInfo(testvectors.Read(t, tcb), testvectors.Read(t, tcbChain)))(t),
		QEIdentity: must(ParseQEIdentity(testvectors.Read(t, qe), testvectors.Read(t, qeChain)))(t),
	}
}

func sgxQE(t *testing.T, isvsvn uint16) QEReport {
	// Real QE reports carry attributes 0x15 (INIT|MODE64|PROVISIONKEY); the
	// identity masks MODE64 out.
	var attr [16]byte
	attr[0] = 0x15
	return QEReport{MRSIGNER: mrsigner(t, qeMRSIGNER), ISVProdID: 1, Attributes: attr, ISVSVN: isvsvn}
}

func collateralSets(t *testing.T) []collateralSet {
	automataChain := func(t *testing.T) []byte { return cat(t, signing25, rootPEM) }
	return []collateralSet{
		{
			name: "integritee-pallets",
			load: func(t *testing.T) *Collateral {
				c := signed(t, "integritee-pallets/dcap/tcb_info.json", "integritee-pallets/dcap/tcb_info_issuer_chain.pem",
					"integritee-pallets/dcap/qe_identity.json", "integritee-pallets/dcap/qe_identity_issuer_chain.pem")
				c.RootCRL = must(ParseCRL(testvectors.Read(t, "integritee-pallets/dcap/root_ca_crl.der"), nil))(t)
				return c
			},
			at:    integriteeAt,
			quote: func(t *testing.T) []byte { return testvectors.Read(t, "integritee-pallets/ra_dcap_dump_quote.ra") },
			fmspc: "00906ea10000",
			// SOURCES.md gives the CPUSVN as hex 11110204018007…
			comps: comps(0x11, 0x11, 2, 4, 1, 128, 7), pceSVN: 11,
			status: attestation.StatusSWHardeningNeeded, advisories: []string{"INTEL-SA-00334"},
			qe: sgxQE(t, 8), qeStatus: attestation.StatusUpToDate,
			negatives: []negative{
				{at: mustTime("2022-11-17T12:45:31Z"), want: ErrNotYetValid},
				{at: mustTime("2023-01-03T22:45:33Z"), want: ErrExpired},
				{at: today, want: ErrExpired},
			},
		},
		{
			name: "dcap-qvl",
			load: func(t *testing.T) *Collateral {
				return must(ParseQVLCollateral(testvectors.Read(t, "dcap-qvl/sgx_quote_collateral.json")))(t)
			},
			at:    qvlAt,
			quote: func(t *testing.T) []byte { return testvectors.Read(t, "dcap-qvl/sgx_quote") },
			fmspc: "00a067110000", comps: comps(11, 11, 2, 2, 255, 1), pceSVN: 13,
			status: attestation.StatusConfigurationAndSWHardeningNeeded, advisories: []string{"INTEL-SA-00289", "INTEL-SA-00615"},
			qe: sgxQE(t, 10), qeStatus: attestation.StatusUpToDate,
			negatives: []negative{
				{at: mustTime("2025-06-19T10:56:10Z"), want: ErrNotYetValid},
				{at: mustTime("2025-07-19T10:56:11Z"), want: ErrExpired},
				{at: today, want: ErrExpired},
			},
		},
		{
			name: "phala",
			load: func(t *testing.T) *Collateral {
				c := signed(t, "phala/derived/tcb_info.json", "phala/derived/tcb_info_issuer_chain.pem",
					"phala/derived/qe_identity.json", "phala/derived/qe_identity_issuer_chain.pem")
				c.PCKCRL = must(ParseCRL(testvectors.Read(t, "phala/derived/pck_crl.hex"), testvectors.Read(t, "phala/derived/pck_crl_issuer_chain.pem")))(t)
				c.RootCRL = must(ParseCRL(testvectors.Read(t, "phala/derived/root_ca_crl.hex"), testvectors.Read(t, "phala/derived/pck_crl_issuer_chain.pem")))(t)
				return c
			},
			at:    phalaAt,
			quote: func(t *testing.T) []byte { return testvectors.Read(t, "phala/dcap_quote") },
			fmspc: "00a067110000", comps: comps(11, 11, 2, 2, 255, 1), pceSVN: 13,
			status: attestation.StatusConfigurationAndSWHardeningNeeded, advisories: []string{"INTEL-SA-00289", "INTEL-SA-00615"},
			qe: sgxQE(t, 10), qeStatus: attestation.StatusUpToDate,
			negatives: []negative{
				{at: time.Unix(1699301000, 0), want: ErrNotYetValid}, // Phala's own test time
				{at: today, want: ErrExpired},
			},
		},
		{
			name: "oasis-core",
			load: func(t *testing.T) *Collateral {
				return signed(t, "oasis-core/pcs/tcb_info_v3_fmspc_00606A000000.json", "oasis-core/pcs/tcb_info_v3_fmspc_00606A000000_certs.pem",
					"oasis-core/pcs/qe_identity_v2.json", "oasis-core/pcs/tcb_info_v3_fmspc_00606A000000_certs.pem")
			},
			at: oasisAt,
			quote: func(t *testing.T) []byte {
				return testvectors.Read(t, "oasis-core/pcs/quote_v3_ecdsa_p256_pck_chain.bin")
			},
			fmspc: "00606a000000", comps: comps(7, 9, 3, 3, 255, 255, 1), pceSVN: 13,
			status: attestation.StatusSWHardeningNeeded, advisories: []string{"INTEL-SA-00615", "INTEL-SA-00657"},
			qe: sgxQE(t, 9), qeStatus: attestation.StatusUpToDate,
			negatives: []negative{
				{at: time.Unix(1671194735, 0), want: ErrNotYetValid},
				{at: time.Unix(1673786737, 0), want: ErrExpired},
			},
		},
		{
			name: "automata-2025-08",
			load: func(t *testing.T) *Collateral {
				c := &Collateral{
					TCBInfo:    must(ParseTCBInfo(testvectors.Read(t, "automata-dcap-attestation/collateral-2025-08/sgx_tcbinfov3_00606a000000.json"), automataChain(t)))(t),
					QEIdentity: must(ParseQEIdentity(testvectors.Read(t, "automata-dcap-attestation/collateral-2025-08/sgx_qeidentity_v4.json"), automataChain(t)))(t),
				}
				c.PCKCRL = must(ParseCRL(testvectors.Read(t, "automata-dcap-attestation/collateral-2025-08/platform_crl.der"), cat(t, platformCA, rootPEM)))(t)
				c.RootCRL = must(ParseCRL(testvectors.Read(t, "automata-dcap-attestation/pcs-certs-derived/intel_sgx_root_ca_crl_2025-03-20.der"),
					testvectors.Read(t, "automata-dcap-attestation/pcs-certs-derived/intel_sgx_root_ca.der")))(t)
				return c
			},
			at: automataAt,
			quote: func(t *testing.T) []byte {
				return unhex(t, string(bytes.TrimSpace(testvectors.Read(t, "automata-dcap-attestation/quotes/quotev3.hex"))))
			},
			fmspc: "00606a000000", comps: comps(14, 14, 3, 3, 255, 255, 1), pceSVN: 13,
			status: attestation.StatusSWHardeningNeeded, advisories: []string{"INTEL-SA-00615"},
			qe: sgxQE(t, 9), qeStatus: attestation.StatusUpToDate,
			negatives: []negative{
				{at: mustTime("2025-08-15T05:08:17Z"), want: ErrNotYetValid},
				{at: today, want: ErrExpired},
			},
		},
		{
			name: "automata-2025-06-tcbinfo-v2",
			load: func(t *testing.T) *Collateral {
				c := &Collateral{
					TCBInfo:    must(ParseTCBInfo(testvectors.Read(t, "automata-dcap-attestation/collateral-2025-06/tcbinfo.json"), automataChain(t)))(t),
					QEIdentity: must(ParseQEIdentity(testvectors.Read(t, "automata-dcap-attestation/collateral-2025-06/identity.json"), automataChain(t)))(t),
				}
				c.PCKCRL = must(ParseCRL(testvectors.Read(t, "automata-dcap-attestation/collateral-2025-06/platform_crl_2025-06-04.der"), cat(t, platformCA, rootPEM)))(t)
				return c
			},
			at: automataJunAt,
			quote: func(t *testing.T) []byte {
				return unhex(t, string(bytes.TrimSpace(testvectors.Read(t, "automata-dcap-attestation/quotes/quotev3.hex"))))
			},
			fmspc: "00606a000000", comps: comps(14, 14, 3, 3, 255, 255, 1), pceSVN: 13,
			status: attestation.StatusSWHardeningNeeded, // v2 carries no advisory IDs
			qe:     sgxQE(t, 9), qeStatus: attestation.StatusUpToDate,
			negatives: []negative{{at: mustTime("2025-07-04T09:25:11Z"), want: ErrExpired}},
		},
		{
			name: "fortanix-pcs",
			load: func(t *testing.T) *Collateral {
				return &Collateral{
					TCBInfo:    must(ParseFortanixTCBInfo(testvectors.Read(t, "fortanix-pcs/00906ea10000.tcb")))(t),
					QEIdentity: must(ParseFortanixQEIdentity(testvectors.Read(t, "fortanix-pcs/qe3_identity.id")))(t),
					PCKCRL:     must(ParseFortanixCRL(testvectors.Read(t, "fortanix-pcs/processor.crl")))(t),
					// The root CRL shipped here is from 2026 and cannot
					// accompany the 2020 collateral.
				}
			},
			at:    fortanixAt,
			quote: func(t *testing.T) []byte { return testvectors.Read(t, "fortanix-pcs/quote.bin") },
			fmspc: "00906ea10000", comps: comps(14, 14, 2, 4, 1, 128, 7), pceSVN: 10,
			status: attestation.StatusSWHardeningNeeded,
			qe:     sgxQE(t, 5), qeStatus: attestation.StatusUpToDate,
			negatives: []negative{
				{at: mustTime("2020-06-17T17:49:24Z"), want: ErrExpired},
				{at: today, want: ErrExpired},
			},
		},
	}
}

func TestCollateralVectors(t *testing.T) {
	roots := intelRoots(t)
	for _, s := range collateralSets(t) {
		t.Run(s.name, func(t *testing.T) {
			c := s.load(t)
			if err := c.Verify(roots, s.at); err != nil {
				t.Fatalf("Verify at %s: %v", s.at, err)
			}
			for _, n := range s.negatives {
				if err := c.Verify(roots, n.at); !errors.Is(err, n.want) {
					t.Errorf("Verify at %s: got %v, want %v", n.at, err, n.want)
				}
			}

			level, err := c.TCBInfo.Info.Evaluate(fmspc(t, s.fmspc), [2]byte{}, s.comps, s.pceSVN)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if level.Status != s.status || !slices.Equal(level.AdvisoryIDs, s.advisories) {
				t.Errorf("Evaluate: %s %v, want %s %v", level.Status, level.AdvisoryIDs, s.status, s.advisories)
			}
			qe, err := c.QEIdentity.Identity.Evaluate(s.qe)
			if err != nil {
				t.Fatalf("QE Evaluate: %v", err)
			}
			if qe.Status != s.qeStatus {
				t.Errorf("QE Evaluate: %s, want %s", qe.Status, s.qeStatus)
			}
			if err := c.QEIdentity.Identity.CheckID(IDQE); err != nil {
				t.Errorf("CheckID: %v", err)
			}

			if s.quote != nil {
				path, err := attestation.VerifyChain(quotePCKChain(t, s.quote(t)), roots, s.at)
				if err != nil {
					t.Fatalf("PCK chain: %v", err)
				}
				if err := c.CheckRevocation(path); err != nil {
					t.Errorf("CheckRevocation: %v", err)
				}
			}
		})
	}
}

func TestTCBInfoFacts(t *testing.T) {
	tests := []struct {
		name, file, chain string
		id                string
		version, eval     int
		fmspc             string
		issue, next       string
	}{
		{"integritee v3", "integritee-pallets/dcap/tcb_info.json", "integritee-pallets/dcap/tcb_info_issuer_chain.pem", "SGX", 3, 12, "00906ea10000", "2022-11-17T12:45:32Z", "2023-04-16T12:45:32Z"},
		{"automata v2", "automata-dcap-attestation/collateral-2025-06/tcbinfo.json", "", "", 2, 17, "00606a000000", "2025-06-04T09:25:11Z", "2025-07-04T09:25:11Z"},
		{"go-tdx-guest TDX", "go-tdx-guest/sample_tcbInfo_response", "go-tdx-guest/tcb_info_issuer_chain.pem", "TDX", 3, 15, "50806f000000", "2023-06-18T08:42:58Z", "2023-07-18T08:42:58Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var chain []byte
			if tt.chain != "" {
				chain = testvectors.Read(t, tt.chain)
			}
			s := must(ParseTCBInfo(testvectors.Read(t, tt.file), chain))(t)
			i := s.Info
			if i.ID != tt.id || i.Version != tt.version || i.TCBEvaluationDataNumber != tt.eval ||
				hex.EncodeToString(i.FMSPC[:]) != tt.fmspc || !i.IssueDate.Equal(mustTime(tt.issue)) || !i.NextUpdate.Equal(mustTime(tt.next)) {
				t.Errorf("got id %q v%d eval %d fmspc %x %s..%s", i.ID, i.Version, i.TCBEvaluationDataNumber, i.FMSPC, i.IssueDate, i.NextUpdate)
			}
			if len(s.Signature) != 64 || len(i.Levels) == 0 {
				t.Errorf("signature %d bytes, %d levels", len(s.Signature), len(i.Levels))
			}
			// Body is the exact value from the file, not a re-serialisation.
			if !bytes.Contains(testvectors.Read(t, tt.file), s.Body) || s.Body[0] != '{' || s.Body[len(s.Body)-1] != '}' {
				t.Error("Body is not a verbatim slice of the file")
			}
			if tt.id == IDTDX {
				if i.TDXModule == nil || i.Levels[0].TDXCompSVN[0] != 3 {
					t.Errorf("TDX fields not parsed: module %v, first level %v", i.TDXModule, i.Levels[0].TDXCompSVN)
				}
				if _, err := i.Evaluate(i.FMSPC, i.PCEID, [16]uint8{}, 0); !errors.Is(err, ErrWrongTEE) {
					t.Errorf("Evaluate of TDX TCB info: %v, want ErrWrongTEE", err)
				}
			}
		})
	}
}

// TestTDXCollateral checks the TDX sets verify and carry TD_QE identities;
// SGX evaluation must refuse them.
func TestTDXCollateral(t *testing.T) {
	roots := intelRoots(t)
	guest := &Collateral{
		TCBInfo:    must(ParseTCBInfo(testvectors.Read(t, "go-tdx-guest/sample_tcbInfo_response"), testvectors.Read(t, "go-tdx-guest/tcb_info_issuer_chain.pem")))(t),
		QEIdentity: must(ParseQEIdentity(testvectors.Read(t, "go-tdx-guest/sample_qeIdentity_response"), testvectors.Read(t, "go-tdx-guest/qe_identity_issuer_chain.pem")))(t),
		PCKCRL:     must(ParseCRL(testvectors.Read(t, "go-tdx-guest/pckcrl"), testvectors.Read(t, "go-tdx-guest/pck_crl_issuer_chain.pem")))(t),
		RootCRL:    must(ParseCRL(testvectors.Read(t, "go-tdx-guest/rootcrl.der"), testvectors.Read(t, "go-tdx-guest/trusted_root.pem")))(t),
	}
	qvl := must(ParseQVLCollateral(testvectors.Read(t, "dcap-qvl/tdx_quote_collateral.json")))(t)
	tests := []struct {
		name string
		c    *Collateral
		at   time.Time
	}{
		{"go-tdx-guest", guest, tdxGuestAt},
		{"dcap-qvl", qvl, qvlTDXAt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.c.Verify(roots, tt.at); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if err := tt.c.Verify(roots, mustTime("2053-07-01T00:00:00Z")); !errors.Is(err, ErrExpired) {
				t.Errorf("Verify in 2053: %v, want ErrExpired", err)
			}
			if tt.c.TCBInfo.Info.ID != IDTDX {
				t.Errorf("TCB info id %q", tt.c.TCBInfo.Info.ID)
			}
			if err := tt.c.QEIdentity.Identity.CheckID(IDTDQE); err != nil {
				t.Errorf("CheckID(TD_QE): %v", err)
			}
			if err := tt.c.QEIdentity.Identity.CheckID(IDQE); !errors.Is(err, ErrQEIdentityMismatch) {
				t.Errorf("CheckID(QE): %v, want ErrQEIdentityMismatch", err)
			}
		})
	}

	// The v4 quote's QE matches the TD_QE identity at ISVSVN 4.
	var attr [16]byte
	attr[0] = 0x15
	lvl, err := guest.QEIdentity.Identity.Evaluate(QEReport{
		MRSIGNER: mrsigner(t, "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5"), ISVProdID: 2, Attributes: attr, ISVSVN: 4,
	})
	if err != nil || lvl.Status != attestation.StatusUpToDate {
		t.Errorf("TD_QE Evaluate: %v %v, want UpToDate", lvl.Status, err)
	}
	path := must(attestation.VerifyChain(quotePCKChain(t, testvectors.Read(t, "go-tdx-guest/tdx_prod_quote_SPR_E4.dat")), roots, tdxGuestAt))(t)
	if err := guest.CheckRevocation(path); err != nil {
		t.Errorf("CheckRevocation: %v", err)
	}
}

// TestTCBSigningReissue: Intel re-issued its TCB signing certificate with the
// same key; a document verifies under whichever issue is valid at the time.
func TestTCBSigningReissue(t *testing.T) {
	roots := intelRoots(t)
	v5 := testvectors.Read(t, "go-tdx-guest/sample_tcbinfo_response_v5")
	at := mustTime("2026-02-03T01:00:00Z")
	tests := []struct {
		name  string
		chain []byte
		want  error
	}{
		{"2018 issue expired", cat(t, signing18, rootPEM), ErrChain},
		{"2025 re-issue", cat(t, signing25, rootPEM), nil},
		{"2025 re-issue without root", cat(t, signing25), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := must(ParseTCBInfo(v5, tt.chain))(t)
			if err := s.Verify(roots, at); !errors.Is(err, tt.want) {
				t.Errorf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
	// And 2022 collateral under the 2025 issue fails: that issue was not yet valid.
	s := must(ParseTCBInfo(testvectors.Read(t, "integritee-pallets/dcap/tcb_info.json"), cat(t, signing25, rootPEM)))(t)
	if err := s.Verify(roots, integriteeAt); !errors.Is(err, ErrChain) {
		t.Errorf("2022 TCB info under 2025 issue: %v, want ErrChain", err)
	}
}

func TestVerifyNegatives(t *testing.T) {
	roots := intelRoots(t)
	oasisTCB := testvectors.Read(t, "oasis-core/pcs/tcb_info_v3_fmspc_00606A000000.json")
	oasisQE := testvectors.Read(t, "oasis-core/pcs/qe_identity_v2.json")
	oasisChain := testvectors.Read(t, "oasis-core/pcs/tcb_info_v3_fmspc_00606A000000_certs.pem")
	fresh := selfSigned(t)

	// flip changes one byte of the signed body in place (a date digit, so
	// the document still parses and only the signature can catch it).
	flip := func(b []byte, find string) []byte {
		b = bytes.Clone(b)
		i := bytes.Index(b, []byte(find))
		if i < 0 {
			t.Fatalf("%q not found", find)
		}
		b[i+len(find)] ^= 1
		return b
	}
	tests := []struct {
		name string
		c    func(t *testing.T) (*Collateral, error)
		at   time.Time
		want error
	}{
		{"oasis bad certs", func(t *testing.T) (*Collateral, error) {
			bad := testvectors.Read(t, "oasis-core/pcs/tcb_info_v3_fmspc_00606A000000_certs_bad.pem")
			return collateral(ParseTCBInfo(oasisTCB, bad))(ParseQEIdentity(oasisQE, oasisChain))
		}, oasisAt, ErrSignature},
		{"oasis no certs", func(t *testing.T) (*Collateral, error) {
			return collateral(ParseTCBInfo(oasisTCB, nil))(ParseQEIdentity(oasisQE, oasisChain))
		}, oasisAt, ErrChain},
		{"TCB body byte flipped", func(t *testing.T) (*Collateral, error) {
			return collateral(ParseTCBInfo(flip(oasisTCB, `"issueDate":"2022-12-1`), oasisChain))(ParseQEIdentity(oasisQE, oasisChain))
		}, oasisAt, ErrSignature},
		{"QE body byte flipped", func(t *testing.T) (*Collateral, error) {
			return collateral(ParseTCBInfo(oasisTCB, oasisChain))(ParseQEIdentity(flip(oasisQE, `"tcbDate":"20`), oasisChain))
		}, oasisAt, ErrSignature},
		{"wrong root", func(t *testing.T) (*Collateral, error) {
			return collateral(ParseTCBInfo(oasisTCB, oasisChain))(ParseQEIdentity(oasisQE, oasisChain))
		}, oasisAt, attestation.ErrUntrustedRoot},
		{"fortanix corrupted TCB info", func(t *testing.T) (*Collateral, error) {
			return collateral(ParseFortanixTCBInfo(testvectors.Read(t, "fortanix-pcs/corrupted/00906ea10000.tcb")))(ParseFortanixQEIdentity(testvectors.Read(t, "fortanix-pcs/qe3_identity.id")))
		}, fortanixAt, ErrSignature},
		{"fortanix corrupted QE identity", func(t *testing.T) (*Collateral, error) {
			return collateral(ParseFortanixTCBInfo(testvectors.Read(t, "fortanix-pcs/00906ea10000.tcb")))(ParseFortanixQEIdentity(testvectors.Read(t, "fortanix-pcs/corrupted/qe3_identity.id")))
		}, fortanixAt, ErrSignature},
		{"missing QE identity", func(t *testing.T) (*Collateral, error) {
			tcb, err := ParseTCBInfo(oasisTCB, oasisChain)
			return &Collateral{TCBInfo: tcb}, err
		}, oasisAt, ErrMissing},
		{"integritee PCK CRL of the wrong CA", func(t *testing.T) (*Collateral, error) {
			c := signed(t, "integritee-pallets/dcap/tcb_info.json", "integritee-pallets/dcap/tcb_info_issuer_chain.pem",
				"integritee-pallets/dcap/qe_identity.json", "integritee-pallets/dcap/qe_identity_issuer_chain.pem")
			var err error
			c.PCKCRL, err = ParseCRL(testvectors.Read(t, "integritee-pallets/dcap/pck_crl.der"), testvectors.Read(t, "integritee-pallets/dcap/pck_crl_issuer_chain.pem"))
			return c, err
		}, integriteeAt, ErrCRLIssuer},
		{"integritee PCK CRL expired", func(t *testing.T) (*Collateral, error) {
			c := signed(t, "integritee-pallets/dcap/tcb_info.json", "integritee-pallets/dcap/tcb_info_issuer_chain.pem",
				"integritee-pallets/dcap/qe_identity.json", "integritee-pallets/dcap/qe_identity_issuer_chain.pem")
			var err error
			c.PCKCRL, err = ParseCRL(testvectors.Read(t, "integritee-pallets/dcap/pck_crl.der"), cat(t, platformCA, rootPEM))
			return c, err
		}, integriteeAt, ErrExpired},
		{"fortanix root CRL from 2026 with 2020 collateral", func(t *testing.T) (*Collateral, error) {
			c, err := collateral(ParseFortanixTCBInfo(testvectors.Read(t, "fortanix-pcs/00906ea10000.tcb")))(ParseFortanixQEIdentity(testvectors.Read(t, "fortanix-pcs/qe3_identity.id")))
			if err != nil {
				return nil, err
			}
			c.RootCRL, err = ParseCRL(testvectors.Read(t, "fortanix-pcs/IntelSGXRootCA.der"), nil)
			return c, err
		}, fortanixAt, ErrNotYetValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.c(t)
			if err != nil {
				t.Fatal(err)
			}
			r := roots
			if tt.want == attestation.ErrUntrustedRoot {
				r = []*x509.Certificate{fresh.cert}
			}
			if err := c.Verify(r, tt.at); !errors.Is(err, tt.want) {
				t.Errorf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
}

func collateral(tcb *SignedTCBInfo, err1 error) func(*SignedQEIdentity, error) (*Collateral, error) {
	return func(qe *SignedQEIdentity, err2 error) (*Collateral, error) {
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		return &Collateral{TCBInfo: tcb, QEIdentity: qe}, nil
	}
}

func TestFortanixExtras(t *testing.T) {
	roots := intelRoots(t)
	// The v3 TCB info under the renewed signing cert.
	s := must(ParseFortanixTCBInfo(testvectors.Read(t, "fortanix-pcs/00906ed50000-19.tcb")))(t)
	if s.Info.Version != 3 || s.Info.TCBEvaluationDataNumber != 19 {
		t.Errorf("v%d eval %d", s.Info.Version, s.Info.TCBEvaluationDataNumber)
	}
	if err := s.Verify(roots, mustTime("2025-06-05T12:00:00Z")); err != nil {
		t.Errorf("Verify: %v", err)
	}
	// The QE identity is not a TD_QE identity.
	qe := must(ParseFortanixQEIdentity(testvectors.Read(t, "fortanix-pcs/qe3_identity.id")))(t)
	if err := qe.Identity.CheckID(IDTDQE); !errors.Is(err, ErrQEIdentityMismatch) {
		t.Errorf("CheckID(TD_QE): %v", err)
	}
	// The standalone PCK cert is not on the processor CRL.
	crl := must(ParseFortanixCRL(testvectors.Read(t, "fortanix-pcs/processor.crl")))(t)
	chain := must(ParseFortanixPCKCert(testvectors.Read(t, "fortanix-pcs/5d39f104e642e51c91507932..71b719-0f0f0205ff8007000000000000000000-0900-0000.pckcert")))(t)
	path := must(attestation.VerifyChain(chain, roots, fortanixAt))(t)
	if err := (&Collateral{PCKCRL: crl}).CheckRevocation(path); err != nil {
		t.Errorf("CheckRevocation: %v", err)
	}
	// The platform CRL is for the other CA.
	platform := must(ParseFortanixCRL(testvectors.Read(t, "fortanix-pcs/platform.crl")))(t)
	if err := (&Collateral{PCKCRL: platform}).CheckRevocation(path); !errors.Is(err, ErrCRLIssuer) {
		t.Errorf("CheckRevocation with the platform CRL: %v, want ErrCRLIssuer", err)
	}
	if n := len(platform.List.RevokedCertificateEntries); n != 44 {
		t.Errorf("platform CRL has %d entries, want 44", n)
	}
	// PEM root CRL and its DER twin parse alike.
	pemCRL := must(ParseCRL(testvectors.Read(t, "fortanix-pcs/IntelSGXRootCA.crl"), nil))(t)
	if err := pemCRL.Verify(roots, mustTime("2026-06-01T00:00:00Z")); err != nil {
		t.Errorf("root CRL Verify: %v", err)
	}
}

func TestIntegriteeRevocationNegative(t *testing.T) {
	// pck_crl.der is the Platform CA's list; the quote's PCK is under the
	// Processor CA. Using it must fail, not pass silently.
	roots := intelRoots(t)
	crl := must(ParseCRL(testvectors.Read(t, "integritee-pallets/dcap/pck_crl.der"), nil))(t)
	if n := len(crl.List.RevokedCertificateEntries); n != 3 {
		t.Errorf("%d revoked serials, want 3", n)
	}
	path := must(attestation.VerifyChain(quotePCKChain(t, testvectors.Read(t, "integritee-pallets/ra_dcap_dump_quote.ra")), roots, integriteeAt))(t)
	if err := (&Collateral{PCKCRL: crl}).CheckRevocation(path); !errors.Is(err, ErrCRLIssuer) {
		t.Errorf("CheckRevocation: %v, want ErrCRLIssuer", err)
	}
	// dcap_quote_cert.der (base64 without armour) is the quote's PCK leaf.
	leaf := mustCerts(t, testvectors.Read(t, "integritee-pallets/dcap/dcap_quote_cert.der"))
	if len(leaf) != 1 || !leaf[0].Equal(path[0]) {
		t.Error("dcap_quote_cert.der is not the quote's PCK leaf")
	}
}

func TestEvaluateErrors(t *testing.T) {
	info := must(ParseTCBInfo(testvectors.Read(t, "integritee-pallets/dcap/tcb_info.json"), nil))(t).Info
	qe := must(ParseQEIdentity(testvectors.Read(t, "integritee-pallets/dcap/qe_identity.json"), nil))(t).Identity
	good := comps(0x11, 0x11, 2, 4, 1, 128, 7)
	fm := fmspc(t, "00906ea10000")
	tcbTests := []struct {
		name  string
		fmspc [6]byte
		pceID [2]byte
		comps [16]uint8
		pce   uint16
		want  error
	}{
		{"match", fm, [2]byte{}, good, 11, nil},
		{"FMSPC mismatch", fmspc(t, "00906ea10001"), [2]byte{}, good, 11, ErrFMSPCMismatch},
		{"PCEID mismatch", fm, [2]byte{0, 1}, good, 11, ErrPCEIDMismatch},
		{"below every level", fm, [2]byte{}, comps(1, 1, 1, 1, 1, 1, 1), 11, ErrTCBLevelNotFound},
		{"PCESVN below every level", fm, [2]byte{}, good, 1, ErrTCBLevelNotFound},
	}
	for _, tt := range tcbTests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := info.Evaluate(tt.fmspc, tt.pceID, tt.comps, tt.pce); !errors.Is(err, tt.want) {
				t.Errorf("Evaluate: %v, want %v", err, tt.want)
			}
		})
	}
	// A lower PCESVN falls through to the OutOfDate level below.
	if l, err := info.Evaluate(fm, [2]byte{}, good, 10); err != nil || l.Status != attestation.StatusOutOfDate {
		t.Errorf("PCESVN 10: %v %v, want OutOfDate", l.Status, err)
	}

	base := sgxQE(t, 8)
	qeTests := []struct {
		name   string
		mutate func(*QEReport)
		want   error
		status attestation.TCBStatus
	}{
		{"UpToDate", func(*QEReport) {}, nil, attestation.StatusUpToDate},
		{"OutOfDate ISVSVN 5", func(r *QEReport) { r.ISVSVN = 5 }, nil, attestation.StatusOutOfDate},
		{"ISVSVN 0", func(r *QEReport) { r.ISVSVN = 0 }, ErrTCBLevelNotFound, ""},
		{"MRSIGNER", func(r *QEReport) { r.MRSIGNER[0] ^= 1 }, ErrQEIdentityMismatch, ""},
		{"ISVPRODID", func(r *QEReport) { r.ISVProdID = 2 }, ErrQEIdentityMismatch, ""},
		{"MISCSELECT", func(r *QEReport) { r.MiscSelect = 1 }, ErrQEIdentityMismatch, ""},
		{"ATTRIBUTES debug", func(r *QEReport) { r.Attributes[0] |= 0x02 }, ErrQEIdentityMismatch, ""},
		{"masked-out attribute bit", func(r *QEReport) { r.Attributes[8] = 0xff }, nil, attestation.StatusUpToDate},
	}
	for _, tt := range qeTests {
		t.Run("QE "+tt.name, func(t *testing.T) {
			r := base
			tt.mutate(&r)
			l, err := qe.Evaluate(r)
			if !errors.Is(err, tt.want) || l.Status != tt.status {
				t.Errorf("Evaluate: %q %v, want %q %v", l.Status, err, tt.status, tt.want)
			}
		})
	}
}

// TestMarshalMatchesIntel: for documents Intel served without optional
// fields, marshalling the parsed form reproduces the signed bytes, so
// SignTCBInfo/SignQEIdentity emit Intel's layout.
func TestMarshalMatchesIntel(t *testing.T) {
	for _, f := range []string{"integritee-pallets/dcap/tcb_info.json", "phala/derived/tcb_info.json", "automata-dcap-attestation/collateral-2025-06/tcbinfo.json"} {
		s := must(ParseTCBInfo(testvectors.Read(t, f), nil))(t)
		if got := must(marshalTCBInfo(&s.Info))(t); !bytes.Equal(got, s.Body) {
			t.Errorf("%s: marshal differs:\n got %s\nwant %s", f, got, s.Body)
		}
		env := must(s.MarshalEnvelope())(t)
		if !bytes.Equal(bytes.TrimSpace(testvectors.Read(t, f)), env) {
			t.Errorf("%s: envelope differs from the file", f)
		}
	}
	for _, f := range []string{"integritee-pallets/dcap/qe_identity.json", "oasis-core/pcs/qe_identity_v2_tdx.json", "automata-dcap-attestation/collateral-2025-08/sgx_qeidentity_v4.json"} {
		s := must(ParseQEIdentity(testvectors.Read(t, f), nil))(t)
		if got := must(marshalQEIdentity(&s.Identity))(t); !bytes.Equal(got, s.Body) {
			t.Errorf("%s: marshal differs:\n got %s\nwant %s", f, got, s.Body)
		}
	}
}

// TestPhalaSCALE: the SCALE container decodes to the same documents as the
// derived split files, and verifies at the same time.
func TestPhalaSCALE(t *testing.T) {
	raw := testvectors.Read(t, "phala/dcap_quote_collateral")
	c := must(ParsePhalaCollateral(raw))(t)
	if err := c.Verify(intelRoots(t), phalaAt); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	derived := must(ParseTCBInfo(testvectors.Read(t, "phala/derived/tcb_info.json"), nil))(t)
	if !bytes.Equal(c.TCBInfo.Body, derived.Body) || !bytes.Equal(c.TCBInfo.Signature, derived.Signature) {
		t.Error("SCALE TCB info differs from the derived envelope")
	}
	for _, cut := range []int{0, 1, 100, len(raw) - 1} {
		if _, err := ParsePhalaCollateral(raw[:cut]); !errors.Is(err, ErrMalformed) {
			t.Errorf("truncated to %d: %v, want ErrMalformed", cut, err)
		}
	}
	if _, err := ParsePhalaCollateral(append(bytes.Clone(raw), 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: %v, want ErrMalformed", err)
	}
}

// TestOasisTamperedBodies replays oasis-core's negative cases: one byte of
// the signed body replaced by 'x'. Here the change breaks the document
// before the signature is even looked at.
func TestOasisTamperedBodies(t *testing.T) {
	chain := testvectors.Read(t, "oasis-core/pcs/tcb_info_v3_fmspc_00606A000000_certs.pem")
	tamper := func(doc []byte, key string, off int) []byte {
		doc = bytes.Clone(doc)
		i := bytes.Index(doc, []byte(key))
		doc[i+len(key)+off] = 'x'
		return doc
	}
	tcb := tamper(testvectors.Read(t, "oasis-core/pcs/tcb_info_v3_fmspc_00606A000000.json"), `"tcbInfo":`, 16)
	if _, err := ParseTCBInfo(tcb, chain); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("tcbInfo byte 16: %v, want ErrUnsupportedVersion", err)
	}
	qe := tamper(testvectors.Read(t, "oasis-core/pcs/qe_identity_v2.json"), `"enclaveIdentity":`, 22)
	if _, err := ParseQEIdentity(qe, chain); !errors.Is(err, ErrMalformed) {
		t.Errorf("enclaveIdentity byte 22: %v, want ErrMalformed", err)
	}
}
