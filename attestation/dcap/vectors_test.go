package dcap

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/internal/testvectors"
)

// Collateral loaders, one per vector source. Each returns the collateral as
// the source ships it; tests edit copies for negative cases.

func integriteeCollateral(tb testing.TB) *pcs.Collateral {
	tb.Helper()
	const d = "integritee-pallets/dcap/"
	tcb, err := pcs.ParseTCBInfo(testvectors.Read(tb, d+"tcb_info.json"), testvectors.Read(tb, d+"tcb_info_issuer_chain.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	qe, err := pcs.ParseQEIdentity(testvectors.Read(tb, d+"qe_identity.json"), testvectors.Read(tb, d+"qe_identity_issuer_chain.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	rootCRL, err := pcs.ParseCRL(testvectors.Read(tb, d+"root_ca_crl.der"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	// No PCK CRL: the only one shipped is the Platform CA's (wrong CA).
	return &pcs.Collateral{TCBInfo: tcb, QEIdentity: qe, RootCRL: rootCRL}
}

func qvlCollateral(tb testing.TB) *pcs.Collateral {
	tb.Helper()
	c, err := pcs.ParseQVLCollateral(testvectors.Read(tb, "dcap-qvl/sgx_quote_collateral.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func phalaCollateral(tb testing.TB) *pcs.Collateral {
	tb.Helper()
	const d = "phala/derived/"
	tcb, err := pcs.ParseTCBInfo(testvectors.Read(tb, d+"tcb_info.json"), testvectors.Read(tb, d+"tcb_info_issuer_chain.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	qe, err := pcs.ParseQEIdentity(testvectors.Read(tb, d+"qe_identity.json"), testvectors.Read(tb, d+"qe_identity_issuer_chain.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	pckCRL, err := pcs.ParseCRL(testvectors.Read(tb, d+"pck_crl.hex"), testvectors.Read(tb, d+"pck_crl_issuer_chain.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	rootCRL, err := pcs.ParseCRL(testvectors.Read(tb, d+"root_ca_crl.hex"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &pcs.Collateral{TCBInfo: tcb, QEIdentity: qe, PCKCRL: pckCRL, RootCRL: rootCRL}
}

func oasisCollateral(tb testing.TB) *pcs.Collateral {
	tb.Helper()
	const d = "oasis-core/pcs/"
	chain := testvectors.Read(tb, d+"tcb_info_v3_fmspc_00606A000000_certs.pem")
	tcb, err := pcs.ParseTCBInfo(testvectors.Read(tb, d+"tcb_info_v3_fmspc_00606A000000.json"), chain)
	if err != nil {
		tb.Fatal(err)
	}
	qe, err := pcs.ParseQEIdentity(testvectors.Read(tb, d+"qe_identity_v2.json"), chain)
	if err != nil {
		tb.Fatal(err)
	}
	return &pcs.Collateral{TCBInfo: tcb, QEIdentity: qe}
}

func automataCollateral(tb testing.TB) *pcs.Collateral {
	tb.Helper()
	const d = "automata-dcap-attestation/"
	root := testvectors.Read(tb, d+"pcs-certs-derived/intel_sgx_root_ca.der")
	signing := append(testvectors.Read(tb, d+"pcs-certs-derived/intel_sgx_tcb_signing_2025-05-06_reissue.der"), root...)
	tcb, err := pcs.ParseTCBInfo(testvectors.Read(tb, d+"collateral-2025-08/sgx_tcbinfov3_00606a000000.json"), signing)
	if err != nil {
		tb.Fatal(err)
	}
	qe, err := pcs.ParseQEIdentity(testvectors.Read(tb, d+"collateral-2025-08/sgx_qeidentity_v4.json"), signing)
	if err != nil {
		tb.Fatal(err)
	}
	platform := append(testvectors.Read(tb, d+"pcs-certs-derived/intel_sgx_pck_platform_ca.der"), root...)
	pckCRL, err := pcs.ParseCRL(testvectors.Read(tb, d+"collateral-2025-08/platform_crl.der"), platform)
	if err != nil {
		tb.Fatal(err)
	}
	rootCRL, err := pcs.ParseCRL(testvectors.Read(tb, d+"pcs-certs-derived/intel_sgx_root_ca_crl_2025-03-20.der"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &pcs.Collateral{TCBInfo: tcb, QEIdentity: qe, PCKCRL: pckCRL, RootCRL: rootCRL}
}

func fortanixCollateral(tb testing.TB) *pcs.Collateral {
	tb.Helper()
	tcb, err := pcs.ParseFortanixTCBInfo(testvectors.Read(tb, "fortanix-pcs/00906ea10000.tcb"))
	if err != nil {
		tb.Fatal(err)
	}
	qe, err := pcs.ParseFortanixQEIdentity(testvectors.Read(tb, "fortanix-pcs/qe3_identity.id"))
	if err != nil {
		tb.Fatal(err)
	}
	crl, err := pcs.ParseFortanixCRL(testvectors.Read(tb, "fortanix-pcs/processor.crl"))
	if err != nil {
		tb.Fatal(err)
	}
	// The root CRL shipped is from 2026 and cannot be valid in 2020.
	return &pcs.Collateral{TCBInfo: tcb, QEIdentity: qe, PCKCRL: crl}
}

// sgxVector is a real SGX quote that must verify at a fixed time with the
// values SOURCES.md states.
type sgxVector struct {
	name       string
	quote      string
	collateral func(testing.TB) *pcs.Collateral
	at         string

	qeSVN, pceSVN      uint16
	qeISVSVN           uint16
	mrenclave          string
	mrsigner           string
	isvProdID, isvSVN  uint16
	debug              bool
	reportData         string // hex, zero-padded to 64 bytes
	fmspc              string
	status             attestation.TCBStatus
	advisories         []string
	tcbDate            string
	attributes, cpuSVN string // "" when not asserted
}

var sgxVectors = []sgxVector{
	{
		name: "integritee", quote: "integritee-pallets/ra_dcap_dump_quote.ra", collateral: integriteeCollateral,
		at:    "2022-12-21T07:12:27Z",
		qeSVN: 8, pceSVN: 13, qeISVSVN: 8,
		mrenclave:  "6f90120b5c1f03619112eac855e29d6e0be4f35b2902aa169affff7719277ebc",
		mrsigner:   "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e",
		debug:      true,
		reportData: "4159c17656ac1195cea0ae4bdb9733eb6e87143793a26a6e8fcf3940433fcb5f",
		fmspc:      "00906ea10000",
		status:     attestation.StatusSWHardeningNeeded, advisories: []string{"INTEL-SA-00334"}, tcbDate: "2021-11-10T00:00:00Z",
	},
	{
		name: "dcap-qvl", quote: "dcap-qvl/sgx_quote", collateral: qvlCollateral,
		at:    "2025-07-19T10:01:17Z",
		qeSVN: 10, pceSVN: 15, qeISVSVN: 10,
		mrenclave:  "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb",
		mrsigner:   "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6",
		reportData: "48656c6c6f2c20776f726c6421",
		fmspc:      "00a067110000",
		status:     attestation.StatusConfigurationAndSWHardeningNeeded, advisories: []string{"INTEL-SA-00289", "INTEL-SA-00615"},
		tcbDate:    "2024-03-13T00:00:00Z",
		attributes: "0500000000000000e700000000000000", cpuSVN: "0b0b1a18ffff04000000000000000000",
	},
	{
		name: "phala", quote: "phala/dcap_quote", collateral: phalaCollateral,
		at:    "2023-11-21T01:00:00Z",
		qeSVN: 10, pceSVN: 15, qeISVSVN: 10,
		mrenclave:  "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb",
		mrsigner:   "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6",
		reportData: "48656c6c6f2c20776f726c6421",
		fmspc:      "00a067110000",
		status:     attestation.StatusConfigurationAndSWHardeningNeeded, advisories: []string{"INTEL-SA-00289", "INTEL-SA-00615"},
		tcbDate: "2023-08-09T00:00:00Z",
	},
	{
		name: "oasis", quote: "oasis-core/pcs/quote_v3_ecdsa_p256_pck_chain.bin", collateral: oasisCollateral,
		at:    "2022-12-20T00:50:04Z",
		qeSVN: 9, pceSVN: 13, qeISVSVN: 9,
		mrenclave:  "68823bc62f409ee33a32ea270cfe45d4b19a6fb3c8570d7bc186cbe062398e8f",
		mrsigner:   "9affcfae47b848ec2caf1c49b4b283531e1cc425f93582b36806e52a43d78d1a",
		reportData: "026a69ced96c3e0295d16d6b388e057a137a14319671662a5844c7472f3c62ae0e3d3f99b77dd89b0fc1436c4fe96828391a52588a0f883455a18b8f5872e3f0",
		fmspc:      "00606a000000",
		status:     attestation.StatusSWHardeningNeeded, advisories: []string{"INTEL-SA-00615", "INTEL-SA-00657"}, tcbDate: "2022-08-10T00:00:00Z",
		attributes: "05000000000000000300000000000000",
	},
	{
		name: "automata", quote: "automata-dcap-attestation/quotes/quotev3.hex", collateral: automataCollateral,
		at:    "2025-08-15T05:45:00Z",
		qeSVN: 9, pceSVN: 14, qeISVSVN: 9,
		mrenclave: "a4f45c39dac622cb1dd32ddb35a52ec92db41d0fa88a1c911c49e59c534f61cd",
		mrsigner:  "8f2dbc0f9c5d3378d596974b2deed1f93223cc49242899f83809bcc92546132c",
		fmspc:     "00606a000000",
		status:    attestation.StatusSWHardeningNeeded, advisories: []string{"INTEL-SA-00615"}, tcbDate: "2024-03-13T00:00:00Z",
		attributes: "0500000000000000e700000000000000",
	},
	{
		name: "fortanix", quote: "fortanix-pcs/quote.bin", collateral: fortanixCollateral,
		at:    "2020-06-05T12:00:00Z",
		qeSVN: 5, pceSVN: 10, qeISVSVN: 5,
		mrenclave:  "2531fd89facb97c6bab5f343805afe4dc051c2bef0d11309ac553c404326dda2",
		mrsigner:   "9affcfae47b848ec2caf1c49b4b283531e1cc425f93582b36806e52a43d78d1a",
		debug:      true,
		reportData: "240aebbc42245d152a01d2aa755750dae361dd19ffcaf7eb0c14deab93d59820",
		fmspc:      "00906ea10000",
		status:     attestation.StatusSWHardeningNeeded, tcbDate: "2019-12-11T00:00:00Z",
		attributes: "07000000000000001f00000000000000", cpuSVN: "0f0f0205ff8007000000000000000000",
	},
}

func TestVerifyVectors(t *testing.T) {
	roots := []*x509.Certificate{intelRoot(t)}
	for _, v := range sgxVectors {
		t.Run(v.name, func(t *testing.T) {
			raw := readQuote(t, v.quote)
			q, err := ParseQuote(raw)
			if err != nil {
				t.Fatal(err)
			}
			if q.Header.Version != 3 || q.Header.QESVN != v.qeSVN || q.Header.PCESVN != v.pceSVN || q.QEReport.ISVSVN != v.qeISVSVN {
				t.Errorf("version %d QE SVN %d PCE SVN %d QE ISVSVN %d, want 3 %d %d %d",
					q.Header.Version, q.Header.QESVN, q.Header.PCESVN, q.QEReport.ISVSVN, v.qeSVN, v.pceSVN, v.qeISVSVN)
			}
			at := mustTime(t, v.at)
			r, err := Verify(raw, Options{Roots: roots, Collateral: v.collateral(t), Time: at})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			var rd [64]byte
			copy(rd[:], mustHex(t, v.reportData))
			checks := []struct {
				what      string
				got, want any
			}{
				{"kind", r.Kind, attestation.KindDCAP},
				{"MRENCLAVE", r.MRENCLAVE[:], mustHex(t, v.mrenclave)},
				{"MRSIGNER", r.MRSIGNER[:], mustHex(t, v.mrsigner)},
				{"ISVPRODID", r.ISVProdID, v.isvProdID},
				{"ISVSVN", r.ISVSVN, v.isvSVN},
				{"debug", r.Debug(), v.debug},
				{"report data", r.ReportData, rd},
				{"FMSPC", r.FMSPC, mustHex(t, v.fmspc)},
				{"TCB status", r.TCBStatus, v.status},
				{"raw status", r.RawStatus, string(v.status)},
				{"advisories", r.AdvisoryIDs, v.advisories},
				{"QE TCB status", r.QETCBStatus, attestation.StatusUpToDate},
				{"TCB date", r.TCBDate, mustTime(t, v.tcbDate)},
				{"timestamp", r.Timestamp, at},
			}
			if v.attributes != "" {
				checks = append(checks, struct {
					what      string
					got, want any
				}{"attributes", r.Attributes[:], mustHex(t, v.attributes)})
			}
			if v.cpuSVN != "" {
				checks = append(checks, struct {
					what      string
					got, want any
				}{"CPUSVN", r.CPUSVN[:], mustHex(t, v.cpuSVN)})
			}
			for _, c := range checks {
				if !equal(c.got, c.want) {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

func equal(a, b any) bool {
	switch x := a.(type) {
	case []byte:
		return bytes.Equal(x, b.([]byte))
	case []string:
		return slices.Equal(x, b.([]string))
	case time.Time:
		return x.Equal(b.(time.Time))
	}
	return a == b
}

// TestVerifyRejects covers the negative verdicts SOURCES.md lists, each with
// the sentinel the failing stage must return.
func TestVerifyRejects(t *testing.T) {
	roots := []*x509.Certificate{intelRoot(t)}
	wrongRoot := newTestPKI(t).root
	const today = "2026-11-27T00:00:00Z"
	type tc struct {
		name       string
		quote      string
		collateral func(testing.TB) *pcs.Collateral // nil: no collateral
		roots      []*x509.Certificate
		at         string
		want       []error
	}
	edit := func(load func(testing.TB) *pcs.Collateral, f func(tb testing.TB, c *pcs.Collateral)) func(testing.TB) *pcs.Collateral {
		return func(tb testing.TB) *pcs.Collateral {
			c := load(tb)
			f(tb, c)
			return c
		}
	}
	const oasisQuote = "oasis-core/pcs/quote_v3_ecdsa_p256_pck_chain.bin"
	tests := []tc{
		{name: "integritee with the Platform CA CRL as PCK CRL", quote: "integritee-pallets/ra_dcap_dump_quote.ra",
			collateral: edit(integriteeCollateral, func(tb testing.TB, c *pcs.Collateral) {
				crl, err := pcs.ParseCRL(testvectors.Read(tb, "integritee-pallets/dcap/pck_crl.der"),
					testvectors.Read(tb, "integritee-pallets/dcap/pck_crl_issuer_chain.pem"))
				if err != nil {
					tb.Fatal(err)
				}
				c.PCKCRL = crl
			}),
			at: "2022-12-21T07:12:27Z", want: []error{ErrCollateral}},
		{name: "integritee with the Platform CA CRL and its own chain", quote: "integritee-pallets/ra_dcap_dump_quote.ra",
			collateral: edit(integriteeCollateral, func(tb testing.TB, c *pcs.Collateral) {
				crl, err := pcs.ParseCRL(testvectors.Read(tb, "integritee-pallets/dcap/pck_crl.der"),
					testvectors.Read(tb, "intel-roots/Intel_SGX_PCK_Platform_CA.pem"))
				if err != nil {
					tb.Fatal(err)
				}
				c.PCKCRL = crl
			}),
			at: "2022-12-21T07:12:27Z", want: []error{ErrCollateral, pcs.ErrExpired}},
		{name: "integritee today", quote: "integritee-pallets/ra_dcap_dump_quote.ra", collateral: integriteeCollateral,
			at: today, want: []error{ErrCollateral}},
		{name: "dcap-qvl today", quote: "dcap-qvl/sgx_quote", collateral: qvlCollateral, at: today, want: []error{ErrCollateral, pcs.ErrExpired}},
		{name: "dcap-qvl wrong root", quote: "dcap-qvl/sgx_quote", collateral: qvlCollateral, roots: []*x509.Certificate{wrongRoot},
			at: "2025-07-19T10:01:17Z", want: []error{ErrPCKChain, attestation.ErrUntrustedRoot}},
		{name: "dcap-qvl no roots", quote: "dcap-qvl/sgx_quote", collateral: qvlCollateral, roots: []*x509.Certificate{},
			at: "2025-07-19T10:01:17Z", want: []error{ErrPCKChain}},
		{name: "dcap-qvl no collateral", quote: "dcap-qvl/sgx_quote", at: "2025-07-19T10:01:17Z", want: []error{ErrNoCollateral}},
		{name: "dcap-qvl with phala's 2023 collateral in 2025", quote: "dcap-qvl/sgx_quote", collateral: phalaCollateral,
			at: "2025-07-19T10:01:17Z", want: []error{ErrCollateral, pcs.ErrExpired}},
		{name: "dcap-qvl with another FMSPC's TCB info", quote: "dcap-qvl/sgx_quote",
			collateral: edit(qvlCollateral, func(tb testing.TB, c *pcs.Collateral) { c.TCBInfo.Info.FMSPC[5] ^= 1 }),
			at:         "2025-07-19T10:01:17Z", want: []error{ErrCollateral}},
		{name: "phala at upstream time (collateral not yet issued)", quote: "phala/dcap_quote", collateral: phalaCollateral,
			at: "2023-11-06T20:03:20Z", want: []error{ErrCollateral, pcs.ErrNotYetValid}},
		{name: "oasis PCK expired", quote: oasisQuote, collateral: oasisCollateral,
			at: time.Unix(1891163522, 0).UTC().Format(time.RFC3339), want: []error{ErrPCKChain}},
		{name: "oasis PCK not yet valid", quote: oasisQuote, collateral: oasisCollateral,
			at: time.Unix(1670238720, 0).UTC().Format(time.RFC3339), want: []error{ErrPCKChain}},
		{name: "oasis QE identity not yet issued", quote: oasisQuote, collateral: oasisCollateral,
			at: time.Unix(1671194735, 0).UTC().Format(time.RFC3339), want: []error{ErrCollateral, pcs.ErrNotYetValid}},
		{name: "oasis QE identity expired", quote: oasisQuote, collateral: oasisCollateral,
			at: time.Unix(1673786737, 0).UTC().Format(time.RFC3339), want: []error{ErrCollateral, pcs.ErrExpired}},
		{name: "oasis bad TCB info certs", quote: oasisQuote,
			collateral: edit(oasisCollateral, func(tb testing.TB, c *pcs.Collateral) {
				bad, err := pcs.ParseCertificates(testvectors.Read(tb, "oasis-core/pcs/tcb_info_v3_fmspc_00606A000000_certs_bad.pem"))
				if err != nil {
					tb.Fatal(err)
				}
				c.TCBInfo.Chain = bad
			}),
			at: "2022-12-20T00:50:04Z", want: []error{ErrCollateral}},
		{name: "oasis no TCB info certs", quote: oasisQuote,
			collateral: edit(oasisCollateral, func(tb testing.TB, c *pcs.Collateral) { c.TCBInfo.Chain = nil }),
			at:         "2022-12-20T00:50:04Z", want: []error{ErrCollateral}},
		{name: "oasis tcbInfo body byte 16 edited", quote: oasisQuote,
			collateral: edit(oasisCollateral, func(tb testing.TB, c *pcs.Collateral) {
				c.TCBInfo.Body = slices.Clone(c.TCBInfo.Body)
				c.TCBInfo.Body[16] = 'x'
			}),
			at: "2022-12-20T00:50:04Z", want: []error{ErrCollateral}},
		{name: "oasis enclaveIdentity body byte 22 edited", quote: oasisQuote,
			collateral: edit(oasisCollateral, func(tb testing.TB, c *pcs.Collateral) {
				c.QEIdentity.Body = slices.Clone(c.QEIdentity.Body)
				c.QEIdentity.Body[22] = 'x'
			}),
			at: "2022-12-20T00:50:04Z", want: []error{ErrCollateral}},
		{name: "automata today", quote: "automata-dcap-attestation/quotes/quotev3.hex", collateral: automataCollateral,
			at: today, want: []error{ErrCollateral}},
		{name: "fortanix today", quote: "fortanix-pcs/quote.bin", collateral: fortanixCollateral, at: today, want: []error{ErrCollateral}},
		{name: "fortanix corrupted TCB info", quote: "fortanix-pcs/quote.bin",
			collateral: edit(fortanixCollateral, func(tb testing.TB, c *pcs.Collateral) {
				tcb, err := pcs.ParseFortanixTCBInfo(testvectors.Read(tb, "fortanix-pcs/corrupted/00906ea10000.tcb"))
				if err != nil {
					tb.Fatal(err)
				}
				c.TCBInfo = tcb
			}),
			at: "2020-06-05T12:00:00Z", want: []error{ErrCollateral}},
		{name: "fortanix corrupted QE identity", quote: "fortanix-pcs/quote.bin",
			collateral: edit(fortanixCollateral, func(tb testing.TB, c *pcs.Collateral) {
				qe, err := pcs.ParseFortanixQEIdentity(testvectors.Read(tb, "fortanix-pcs/corrupted/qe3_identity.id"))
				if err != nil {
					tb.Fatal(err)
				}
				c.QEIdentity = qe
			}),
			at: "2020-06-05T12:00:00Z", want: []error{ErrCollateral}},
		{name: "eppid quote", quote: "oasis-core/pcs/quote_v3_ecdsa_p256_eppid.bin", collateral: oasisCollateral,
			at: "2022-12-20T00:50:04Z", want: []error{ErrUnsupportedCertData}},
		{name: "oasis TDX v4", quote: "oasis-core/pcs/quote_v4_tdx_ecdsa_p256.bin", at: "2024-09-02T07:43:52Z", want: []error{ErrUnsupportedTEE}},
		{name: "go-tdx-guest v5", quote: "go-tdx-guest/quote_v5_sample.dat", at: "2026-02-03T01:00:00Z", want: []error{ErrUnsupportedTEE}},
		{name: "go-tdx-guest v4 trailing", quote: "go-tdx-guest/tdx_prod_quote_SPR_E4.dat", at: "2023-07-01T01:00:00Z", want: []error{ErrTrailingBytes}},
		{name: "oasis TDX v4 trailing", quote: "oasis-core/pcs/quote_v4_tdx_ecdsa_p256_trailing.bin", at: "2024-09-02T07:43:52Z", want: []error{ErrTrailingBytes}},
		{name: "automata TDX v4 zero padded", quote: "automata-dcap-attestation/quotes/quotev4.hex", at: "2025-06-05T03:45:00Z", want: []error{ErrTrailingBytes}},
		{name: "dcap-qvl TDX v4 trailing", quote: "dcap-qvl/tdx_quote", at: "2025-07-19T10:00:34Z", want: []error{ErrTrailingBytes}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{Roots: roots, Time: mustTime(t, tt.at)}
			if tt.roots != nil {
				opts.Roots = tt.roots
			}
			if tt.collateral != nil {
				opts.Collateral = tt.collateral(t)
			}
			r, err := Verify(readQuote(t, tt.quote), opts)
			if err == nil {
				t.Fatalf("Verify accepted: %+v", r)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want %v", err, w)
				}
			}
		})
	}
}

// TestVerifySignaturesTDX checks the TDX quotes' signatures, which Verify
// itself refuses to judge.
func TestVerifySignaturesTDX(t *testing.T) {
	roots := []*x509.Certificate{intelRoot(t)}
	tests := []struct {
		quote    string
		at       string
		version  uint16
		fmspc    string
		mrtd     string // prefix
		tcbSVN   string // prefix
		qeISVSVN uint16
		v15      bool
	}{
		{quote: "oasis-core/pcs/quote_v4_tdx_ecdsa_p256.bin", at: "2024-09-02T07:43:52Z", version: 4,
			fmspc: "c0806f000000", mrtd: "91eb2b44", tcbSVN: "05010700"},
		{quote: "oasis-core/pcs/quote_v4_tdx_ecdsa_p256_out_of_date.bin", at: "2023-07-01T01:00:00Z", version: 4,
			fmspc: "50806f000000", mrtd: "6363b804", tcbSVN: "03000400000000000000000000000000", qeISVSVN: 4},
		{quote: "go-tdx-guest/quote_v5_sample.dat", at: "2026-02-03T01:00:00Z", version: 5,
			fmspc: "90c06f000000", qeISVSVN: 7, v15: true},
		{quote: "automata-dcap-attestation/quotes/quotev5.dat", at: "2025-06-15T00:00:00Z", version: 5,
			fmspc: "90c06f000000", v15: true},
	}
	for _, tt := range tests {
		t.Run(tt.quote, func(t *testing.T) {
			q, err := ParseQuote(readQuote(t, tt.quote))
			if err != nil {
				t.Fatal(err)
			}
			if q.Header.Version != tt.version || q.Header.TEEType != TEETypeTDX || q.TD == nil || q.Body != nil || q.TD.V15 != tt.v15 {
				t.Fatalf("header %+v, TD %v, body %v", q.Header, q.TD != nil, q.Body != nil)
			}
			if !bytes.HasPrefix(q.TD.MRTD[:], mustHex(t, tt.mrtd)) || !bytes.HasPrefix(q.TD.TEETCBSVN[:], mustHex(t, tt.tcbSVN)) {
				t.Errorf("MRTD %x TEE_TCB_SVN %x", q.TD.MRTD, q.TD.TEETCBSVN)
			}
			if tt.qeISVSVN != 0 && q.QEReport.ISVSVN != tt.qeISVSVN {
				t.Errorf("QE ISVSVN = %d, want %d", q.QEReport.ISVSVN, tt.qeISVSVN)
			}
			path, err := VerifySignatures(q, roots, mustTime(t, tt.at))
			if err != nil {
				t.Fatalf("VerifySignatures: %v", err)
			}
			ext, err := ParsePCKExtensions(path[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ext.FMSPC[:], mustHex(t, tt.fmspc)) {
				t.Errorf("FMSPC = %x, want %s", ext.FMSPC, tt.fmspc)
			}
			// The PCK leaf of every real quote expires long before 2053.
			if _, err := VerifySignatures(q, roots, mustTime(t, "2053-07-01T01:00:00Z")); !errors.Is(err, ErrPCKChain) {
				t.Errorf("in 2053: err = %v, want ErrPCKChain", err)
			}
		})
	}
}

// TestParseTrimmedTDX checks that the go-tdx-guest quote without its 39
// trailing bytes is the oasis quote, and that it then verifies.
func TestParseTrimmedTDX(t *testing.T) {
	raw := readQuote(t, "go-tdx-guest/tdx_prod_quote_SPR_E4.dat")
	trimmed := raw[:len(raw)-39]
	if !bytes.Equal(trimmed, readQuote(t, "oasis-core/pcs/quote_v4_tdx_ecdsa_p256_out_of_date.bin")) {
		t.Fatal("trimmed go-tdx-guest quote differs from the oasis quote")
	}
	q, err := ParseQuote(trimmed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifySignatures(q, []*x509.Certificate{intelRoot(t)}, mustTime(t, "2023-07-01T01:00:00Z")); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyNewerCollateral verifies the 2022 oasis quote with Automata's
// 2025 collateral for the same FMSPC: the platform has not been updated
// since, so Intel now rates it OutOfDate; its PCK is not in the 44-entry
// Platform CA CRL.
func TestVerifyNewerCollateral(t *testing.T) {
	r, err := Verify(readQuote(t, "oasis-core/pcs/quote_v3_ecdsa_p256_pck_chain.bin"), Options{
		Roots:      []*x509.Certificate{intelRoot(t)},
		Collateral: automataCollateral(t),
		Time:       mustTime(t, "2025-08-15T05:45:00Z"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.TCBStatus != attestation.StatusOutOfDate || r.QETCBStatus != attestation.StatusUpToDate {
		t.Errorf("status %s, QE %s; want OutOfDate, UpToDate", r.TCBStatus, r.QETCBStatus)
	}
	if !slices.Contains(r.AdvisoryIDs, "INTEL-SA-00960") {
		t.Errorf("advisories %v lack INTEL-SA-00960", r.AdvisoryIDs)
	}
}

// TestVerifyEcheck verifies the quotes inside EGo/Open Enclave RA-TLS
// certificates (extension 1.3.6.1.4.1.311.105.1: a 16-byte OE header, then
// the quote) with the dcap-qvl collateral of the same FMSPC and PCK CA.
func TestVerifyEcheck(t *testing.T) {
	oid := []int{1, 3, 6, 1, 4, 1, 311, 105, 1}
	tests := []struct {
		file, reportData string
	}{
		{"echeck/sample.pem", "4f1ea682"},
		{"echeck/sample2.pem", "6e212d9f"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			blk, _ := pem.Decode(testvectors.Read(t, tt.file))
			if blk == nil {
				t.Fatal("no PEM block")
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			var quote []byte
			for _, e := range cert.Extensions {
				if e.Id.Equal(oid) && len(e.Value) > 16 {
					quote = e.Value[16:]
				}
			}
			r, err := Verify(quote, Options{
				Roots: []*x509.Certificate{intelRoot(t)}, Collateral: qvlCollateral(t), Time: mustTime(t, "2025-07-19T10:01:17Z"),
			})
			if err != nil {
				t.Fatal(err)
			}
			spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
			if !bytes.Equal(r.ReportData[:32], spki[:]) || !bytes.HasPrefix(r.ReportData[:], mustHex(t, tt.reportData)) ||
				[32]byte(r.ReportData[32:]) != [32]byte{} {
				t.Errorf("report data %x does not bind the certificate key", r.ReportData)
			}
			if r.MRENCLAVE != [32]byte(mustHex(t, "df2493c11fc01708af6913323b64e20ae84b12779dbe44ba428da66dfc4488f5")) ||
				r.MRSIGNER != [32]byte(mustHex(t, "976aa9f931b8a16e01e01895d627e3ee96dce5478ebbbc77e120a25c79fe6016")) ||
				r.ISVProdID != 1 || r.ISVSVN != 1 || r.Debug() {
				t.Errorf("identity %x %x %d %d debug %v", r.MRENCLAVE, r.MRSIGNER, r.ISVProdID, r.ISVSVN, r.Debug())
			}
			if r.TCBStatus != attestation.StatusConfigurationAndSWHardeningNeeded || r.QETCBStatus != attestation.StatusUpToDate ||
				!slices.Equal(r.AdvisoryIDs, []string{"INTEL-SA-00289", "INTEL-SA-00615"}) {
				t.Errorf("status %s QE %s advisories %v", r.TCBStatus, r.QETCBStatus, r.AdvisoryIDs)
			}
		})
	}
}
