package ias

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/internal/testvectors"
)

const (
	mrsignerIntegritee = "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e"
	mrsignerOasis      = "9affcfae47b848ec2caf1c49b4b283531e1cc425f93582b36806e52a43d78d1a"
	mrsignerPhala      = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"
	mrenclaveTEST5to7  = "f4dedfc9e5fcc48443332bc9b23161c34a3c3f5a692eaffdb228db27b704d9d1"
)

// iasVector is one real AVR with the values SOURCES.md states for it.
type iasVector struct {
	name      string
	load      func(t testing.TB) (*Evidence, *x509.Certificate) // cert: the RA-TLS cert, if any
	id        string                                            // "" = not stated
	timestamp string
	version   int
	status    string
	tcb       attestation.TCBStatus
	advisory  []string // nil = none in the report
	mrenclave string
	mrsigner  string
	debug     bool
	gid       uint32
	// reportData checks REPORTDATA against what SOURCES.md states.
	reportData func(t *testing.T, rd [64]byte, cert *x509.Certificate)
}

func certVector(rel string) func(t testing.TB) (*Evidence, *x509.Certificate) {
	return func(t testing.TB) (*Evidence, *x509.Certificate) { return loadCert(t, rel) }
}

func oasisVector(name string) func(t testing.TB) (*Evidence, *x509.Certificate) {
	return func(t testing.TB) (*Evidence, *x509.Certificate) { return loadOasis(t, name), nil }
}

func phalaVector(rel string) func(t testing.TB) (*Evidence, *x509.Certificate) {
	return func(t testing.TB) (*Evidence, *x509.Certificate) { return loadPhala(t, rel), nil }
}

// signingKeyData: report_data[0:32] is the enclave's ed25519 account key
// (teerex's sender binding), report_data[32:64] is zero.
func signingKeyData(rel string) func(t *testing.T, rd [64]byte, _ *x509.Certificate) {
	return func(t *testing.T, rd [64]byte, _ *x509.Certificate) {
		t.Helper()
		want := testvectors.Read(t, rel)
		if !bytes.Equal(rd[:32], want) {
			t.Errorf("report_data[0:32] = %x, want %x (%s)", rd[:32], want, rel)
		}
		if !bytes.Equal(rd[32:], make([]byte, 32)) {
			t.Errorf("report_data[32:64] = %x, want zeros", rd[32:])
		}
	}
}

// certKeyData: report_data is X‖Y of the RA-TLS certificate's P-256 key,
// the MesaTEE binding of TLS key to enclave.
func certKeyData(prefix, suffix string) func(t *testing.T, rd [64]byte, c *x509.Certificate) {
	return func(t *testing.T, rd [64]byte, c *x509.Certificate) {
		t.Helper()
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok {
			t.Fatalf("RA-TLS key is %T, want ECDSA", c.PublicKey)
		}
		raw, err := pub.Bytes() // 0x04 ‖ X ‖ Y
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rd[:], raw[1:]) {
			t.Errorf("report_data = %x, want cert key X‖Y %x", rd, raw[1:])
		}
		h := hex.EncodeToString(rd[:])
		if !bytes.HasPrefix([]byte(h), []byte(prefix)) || !bytes.HasSuffix([]byte(h), []byte(suffix)) {
			t.Errorf("report_data = %s, want %s…%s", h, prefix, suffix)
		}
	}
}

func prefixedData(prefixHex string, rest byte) func(t *testing.T, rd [64]byte, _ *x509.Certificate) {
	return func(t *testing.T, rd [64]byte, _ *x509.Certificate) {
		t.Helper()
		p, _ := hex.DecodeString(prefixHex)
		want := bytes.Repeat([]byte{rest}, 64)
		copy(want, p)
		if !bytes.Equal(rd[:], want) {
			t.Errorf("report_data = %x, want %x", rd, want)
		}
	}
}

func iasVectors() []iasVector {
	return []iasVector{
		{
			name: "integritee/TEST4", load: certVector(pallets + "ra_dump_cert_TEST4.der"),
			id: "228355377317235267271046005548613062778", timestamp: "2020-04-26T11:16:25.349850", version: 3,
			status: "CONFIGURATION_NEEDED", tcb: attestation.StatusConfigurationNeeded,
			mrenclave: "7a3454ec8f42e265cb5be7dfd111e1d95ac6076ed82a0948b2e2a45cf17b62a0", mrsigner: mrsignerIntegritee,
			debug: true, gid: 0xbad, reportData: signingKeyData(pallets + "enclave-signing-pubkey-TEST4.bin"),
		},
		{
			name: "integritee/TEST5", load: certVector(pallets + "ra_dump_cert_TEST5.der"),
			timestamp: "2020-04-26T11:20:13.154140", version: 3,
			status: "CONFIGURATION_NEEDED", tcb: attestation.StatusConfigurationNeeded,
			mrenclave: mrenclaveTEST5to7, mrsigner: mrsignerIntegritee,
			debug: true, gid: 0xbad, reportData: signingKeyData(pallets + "enclave-signing-pubkey-TEST5.bin"),
		},
		{
			name: "integritee/TEST6", load: certVector(pallets + "ra_dump_cert_TEST6.der"),
			timestamp: "2020-04-26T11:23:53.307283", version: 3,
			status: "CONFIGURATION_NEEDED", tcb: attestation.StatusConfigurationNeeded,
			mrenclave: mrenclaveTEST5to7, mrsigner: mrsignerIntegritee,
			debug: true, gid: 0xbad, reportData: signingKeyData(pallets + "enclave-signing-pubkey-TEST6.bin"),
		},
		{
			name: "integritee/TEST7", load: certVector(pallets + "ra_dump_cert_TEST7.der"),
			timestamp: "2020-04-26T11:27:30.948397", version: 3,
			status: "CONFIGURATION_NEEDED", tcb: attestation.StatusConfigurationNeeded,
			mrenclave: mrenclaveTEST5to7, mrsigner: mrsignerIntegritee,
			debug: true, gid: 0xbad, reportData: signingKeyData(pallets + "enclave-signing-pubkey-TEST7.bin"),
		},
		{
			name: "integritee/TEST8_PRODUCTION", load: certVector(pallets + "ra_dump_cert_TEST8_PRODUCTION.der"),
			timestamp: "2021-10-13T20:25:00.635222", version: 4,
			status: "CONFIGURATION_AND_SW_HARDENING_NEEDED", tcb: attestation.StatusConfigurationAndSWHardeningNeeded,
			advisory:  []string{"INTEL-SA-00161", "INTEL-SA-00219", "INTEL-SA-00289", "INTEL-SA-00334"},
			mrenclave: "bcf66abfc6b3ef259e9ecfe4cf8df667a7f5a546525dee16822741b38f6e6050",
			mrsigner:  "117f95f65f06afb5764b572156b8b525c6230db7d6b1c94e8ebdb7fba068f4e8",
			debug:     false, gid: 0xc14, reportData: signingKeyData(pallets + "enclave-signing-pubkey-TEST8-PRODUCTION.bin"),
		},
		{
			name: "legacy-ias-2020/MRSIGNER1_MRENCLAVE1", load: certVector(pallets + "legacy-ias-2020/test_ra_cert_MRSIGNER1_MRENCLAVE1.der"),
			timestamp: "2020-02-01T20:01:02.998418", version: 3,
			status: "GROUP_OUT_OF_DATE", tcb: attestation.StatusOutOfDate,
			mrenclave: "3efcbbe83c876ccc574e23a9f1ed6ad9fbf163bd8a9d56884d5b5d17c0688ca7", mrsigner: mrsignerIntegritee,
			debug: true, gid: 0xb5f, reportData: certKeyData("2e68069d", "a443"),
		},
		{
			name: "legacy-ias-2020/MRSIGNER2_MRENCLAVE2", load: certVector(pallets + "legacy-ias-2020/test_ra_cert_MRSIGNER2_MRENCLAVE2.der"),
			timestamp: "2020-02-09T14:43:32.958203", version: 3,
			status: "GROUP_OUT_OF_DATE", tcb: attestation.StatusOutOfDate,
			mrenclave: "04bee684d3813bed654e37ae90b15b8601f01bae518b081620f1e467bd2b2c66",
			mrsigner:  "487517c298591343da338ac40657134acac0bdc87f2a22dbd8bbeb98c71d9909",
			debug:     true, gid: 0xb5f, reportData: certKeyData("", ""),
		},
		{
			name: "legacy-ias-2020/MRSIGNER3_MRENCLAVE2", load: certVector(pallets + "legacy-ias-2020/test_ra_cert_MRSIGNER3_MRENCLAVE2.der"),
			timestamp: "2020-02-09T14:52:55.684814", version: 3,
			status: "GROUP_OUT_OF_DATE", tcb: attestation.StatusOutOfDate,
			mrenclave: "04bee684d3813bed654e37ae90b15b8601f01bae518b081620f1e467bd2b2c66",
			mrsigner:  "880b849e5e1f05317d0dfde9532bf60d1738b8d72a0a833c7fa36cb07c011d1e",
			debug:     true, gid: 0xb5f, reportData: certKeyData("", ""),
		},
		{
			name: "mesatee/valid", load: certVector(mesatee + "mesatee_ra_cert_valid_GROUP_OUT_OF_DATE.der"),
			id: "117077750682263877593646412006783680848", timestamp: "2019-06-17T12:46:04.002066", version: 3,
			status: "GROUP_OUT_OF_DATE", tcb: attestation.StatusOutOfDate,
			mrenclave: "52496086cf568b7d3734428d6db3f7e93ef4af01b0740acd53041ce475e2135b", mrsigner: mrsignerIntegritee,
			debug: true, gid: 0xb40, reportData: certKeyData("5254161620ef", "5bd6"),
		},
		{
			name: "oasis/avr_v4", load: oasisVector("avr_v4_body_sw_hardening_needed"),
			id: "323119119247496566074708526703373820736", timestamp: "2020-05-11T09:21:15.454051", version: 4,
			status: "SW_HARDENING_NEEDED", tcb: attestation.StatusSWHardeningNeeded, advisory: []string{"INTEL-SA-00334"},
			mrenclave: "92143ea742e1628677b5a8e280173b7264470bfb0611d520c2474aab9846168e", mrsigner: mrsignerOasis,
			debug: true, gid: 0xbc5,
			reportData: func(t *testing.T, rd [64]byte, _ *x509.Certificate) {
				h := hex.EncodeToString(rd[:])
				if h[:8] != "6e90dd30" || h[len(h)-10:] != "4c484a6630" {
					t.Errorf("report_data = %s, want 6e90dd30…4c484a6630", h)
				}
			},
		},
		{
			name: "oasis/avr_v5", load: oasisVector("avr_v5_body_sw_hardening_needed"),
			id: "325753020347524304899139732345489823748", timestamp: "2023-09-27T15:51:58.044803", version: 5,
			status: "SW_HARDENING_NEEDED", tcb: attestation.StatusSWHardeningNeeded, advisory: []string{"INTEL-SA-00334", "INTEL-SA-00615"},
			mrenclave: "d40c35b716c9ef1715d26100bb5e152d5045543017dacfcb492697028985cb7c", mrsigner: mrsignerOasis,
			debug: true, gid: 0xcac, reportData: prefixedData("", 0),
		},
		{
			name: "phala/ias_attestation", load: phalaVector("phala/ias_attestation.json"),
			id: "272094254367129475820129751491483103595", timestamp: "2023-10-18T09:01:15.022794", version: 4,
			status: "GROUP_OUT_OF_DATE", tcb: attestation.StatusOutOfDate,
			advisory: []string{"INTEL-SA-00220", "INTEL-SA-00270", "INTEL-SA-00293", "INTEL-SA-00320", "INTEL-SA-00329",
				"INTEL-SA-00334", "INTEL-SA-00381", "INTEL-SA-00389", "INTEL-SA-00477", "INTEL-SA-00614", "INTEL-SA-00615",
				"INTEL-SA-00617", "INTEL-SA-00828"},
			mrenclave: "10829681801cbefd5b75779d0820d86d0a60d81ead14db793595edbe0e87b986", mrsigner: mrsignerIntegritee,
			debug: false, gid: 0xb56, reportData: prefixedData(hex.EncodeToString([]byte("Hello World")), 0),
		},
		{
			name: "phala/pallet_ias_attestation", load: phalaVector("phala/pallet_ias_attestation.json"),
			id: "82934912299674180590716290258197145307", timestamp: "2021-09-12T18:06:20.402478", version: 4,
			status: "SW_HARDENING_NEEDED", tcb: attestation.StatusSWHardeningNeeded, advisory: []string{"INTEL-SA-00334"},
			mrenclave: "518422fa769d2d55982015a0e0417c6a8521fdfc7308f5ec18aaa1b6924bd0f3", mrsigner: mrsignerPhala,
			debug: false, gid: 0xc13, reportData: prefixedData("3178d13cb51f21159337cbe864c13ea2dff17dd5d49da05db3b53c1f0ff23e8c", 0),
		},
	}
}

func TestVerifyVectors(t *testing.T) {
	roots := iasRoots(t)
	for _, v := range iasVectors() {
		t.Run(v.name, func(t *testing.T) {
			ev, cert := v.load(t)
			ts := mustTime(t, v.timestamp)
			res, err := Verify(ev, Options{Roots: roots, Time: ts})
			if err != nil {
				t.Fatalf("Verify at %s: %v", ts, err)
			}
			if res.Kind != attestation.KindIAS {
				t.Errorf("Kind = %q", res.Kind)
			}
			if got := hex.EncodeToString(res.MRENCLAVE[:]); got != v.mrenclave {
				t.Errorf("MRENCLAVE = %s, want %s", got, v.mrenclave)
			}
			if got := hex.EncodeToString(res.MRSIGNER[:]); got != v.mrsigner {
				t.Errorf("MRSIGNER = %s, want %s", got, v.mrsigner)
			}
			if res.ISVProdID != 0 || res.ISVSVN != 0 {
				t.Errorf("ISVPRODID/ISVSVN = %d/%d, want 0/0", res.ISVProdID, res.ISVSVN)
			}
			if res.Debug() != v.debug {
				t.Errorf("Debug() = %v, want %v (attributes %x)", res.Debug(), v.debug, res.Attributes)
			}
			if res.TCBStatus != v.tcb || res.RawStatus != v.status {
				t.Errorf("status = %s (%s), want %s (%s)", res.TCBStatus, res.RawStatus, v.tcb, v.status)
			}
			if !slices.Equal(res.AdvisoryIDs, v.advisory) {
				t.Errorf("AdvisoryIDs = %q, want %q", res.AdvisoryIDs, v.advisory)
			}
			if !res.Timestamp.Equal(ts) || res.Timestamp.Location() != time.UTC {
				t.Errorf("Timestamp = %s, want %s UTC", res.Timestamp, ts)
			}
			v.reportData(t, res.ReportData, cert)

			r, err := ParseReport(ev.Body)
			if err != nil {
				t.Fatal(err)
			}
			if r.Version != v.version {
				t.Errorf("Version = %d, want %d", r.Version, v.version)
			}
			if v.id != "" && r.ID != v.id {
				t.Errorf("ID = %s, want %s", r.ID, v.id)
			}
			if r.Quote.Header.EPIDGroupID != v.gid {
				t.Errorf("EPID group = %#x, want %#x", r.Quote.Header.EPIDGroupID, v.gid)
			}
			if !bytes.Equal(r.Raw, ev.Body) || len(r.QuoteBody) != QuoteBodySize {
				t.Errorf("Raw/QuoteBody not kept (%d/%d bytes)", len(r.Raw), len(r.QuoteBody))
			}
			// One microsecond earlier the report is from the future.
			if _, err := Verify(ev, Options{Roots: roots, Time: ts.Add(-time.Microsecond)}); !errors.Is(err, attestation.ErrFromFuture) {
				t.Errorf("Verify 1µs before the report: err = %v, want ErrFromFuture", err)
			}
		})
	}
}

// TestOasisV4Details checks the quote header and body fields SOURCES.md
// lists for the oasis v4 report beyond the common ones.
func TestOasisV4Details(t *testing.T) {
	r, err := ParseReport(testvectors.Read(t, oasisDir+"avr_v4_body_sw_hardening_needed.json"))
	if err != nil {
		t.Fatal(err)
	}
	h, b := r.Quote.Header, r.Quote.Body
	if h.Version != 2 || h.SignType != 1 || h.QESVN != 0xb || h.PCESVN != 0xa {
		t.Errorf("header = %+v, want version 2, sign type 1 (linkable), QE SVN 0xb, PCE SVN 0xa", h)
	}
	if got := hex.EncodeToString(b.CPUSVN[:]); got != "0f0f0205ff8007000000000000000000" {
		t.Errorf("CPUSVN = %s", got)
	}
	if b.Attributes[0] != 0x07 || b.Attributes[8] != 0x1f {
		t.Errorf("attributes = %x, want flags 0x07, xfrm 0x1f", b.Attributes)
	}
	if r.Nonce != "biNMqBAuTPF2hp/0fXa4P3splRkLHJf0" || r.AdvisoryURL != "https://security-center.intel.com" || r.EPIDPseudonym == "" {
		t.Errorf("nonce %q, advisoryURL %q, pseudonym %q", r.Nonce, r.AdvisoryURL, r.EPIDPseudonym)
	}
	v5, err := ParseReport(testvectors.Read(t, oasisDir+"avr_v5_body_sw_hardening_needed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if v5.Nonce != "" || v5.TCBEvaluationDataNumber != 16 {
		t.Errorf("v5: nonce %q, tcbEvaluationDataNumber %d, want none and 16", v5.Nonce, v5.TCBEvaluationDataNumber)
	}
	p, err := ParseReport(loadPhala(t, "phala/ias_attestation.json").Body)
	if err != nil {
		t.Fatal(err)
	}
	if p.Quote.Header.QESVN != 13 || p.Quote.Header.PCESVN != 13 {
		t.Errorf("phala QE/PCE SVN = %d/%d, want 13/13", p.Quote.Header.QESVN, p.Quote.Header.PCESVN)
	}
}

// TestPolicyMaxAge mirrors teerex's 24-hour freshness rule on TEST7
// (test_cases.rs:445-474): the age bound is attestation.Policy's job.
func TestPolicyMaxAge(t *testing.T) {
	roots := iasRoots(t)
	ev, _ := loadCert(t, pallets+"ra_dump_cert_TEST7.der")
	ts := mustTime(t, "2020-04-26T11:27:30.948397")
	res, err := Verify(ev, Options{Roots: roots, Time: ts})
	if err != nil {
		t.Fatal(err)
	}
	p := attestation.Policy{
		IASRoots:            roots,
		AllowDebug:          true,
		AcceptedTCBStatuses: []attestation.TCBStatus{attestation.StatusConfigurationNeeded},
		MaxAge:              24 * time.Hour,
	}
	tests := []struct {
		at   time.Time
		want error
	}{
		{ts, nil},
		{ts.Add(24*time.Hour - time.Second), nil},
		{ts.Add(24*time.Hour + time.Second), attestation.ErrTooOld},
		{ts.Add(-time.Second), attestation.ErrFromFuture},
	}
	for _, tc := range tests {
		err := p.Check(res, tc.at)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("Check at ts%+v: err = %v, want %v", tc.at.Sub(ts), err, tc.want)
		}
	}
	p.AllowDebug = false
	if err := p.Check(res, ts); !errors.Is(err, attestation.ErrDebugEnclave) {
		t.Errorf("debug enclave with AllowDebug=false: err = %v", err)
	}
}

func TestMesateeNegatives(t *testing.T) {
	roots := iasRoots(t)
	at := mustTime(t, "2019-06-17T12:46:04.002066")

	t.Run("tampered report", func(t *testing.T) {
		ev, _ := loadCert(t, mesatee+"mesatee_ra_cert_tampered_report.der")
		if _, err := Verify(ev, Options{Roots: roots, Time: at}); !errors.Is(err, ErrSignature) {
			t.Errorf("err = %v, want ErrSignature", err)
		}
	})
	t.Run("tampered report and signing cert", func(t *testing.T) {
		// The changed base64 character still leaves a parseable
		// certificate, but the IAS root's signature on it fails.
		ev, _ := loadCert(t, mesatee+"mesatee_ra_cert_tampered_report_and_signing_cert.der")
		_, err := Verify(ev, Options{Roots: roots, Time: at})
		if !errors.Is(err, ErrUntrustedSigner) || !errors.Is(err, attestation.ErrUntrustedRoot) {
			t.Errorf("err = %v, want ErrUntrustedSigner", err)
		}
	})
	for _, name := range []string{
		"mesatee_ra_cert_status_forged_OK.der",
		"mesatee_ra_cert_truncated_569B.der",
		"mesatee_ra_cert_truncated_5B.der",
	} {
		t.Run(name, func(t *testing.T) {
			ev, c, err := EvidenceFromDER(testvectors.Read(t, mesatee+name))
			if !errors.Is(err, ErrMalformed) || ev != nil || c != nil {
				t.Errorf("EvidenceFromDER = %v, %v, %v; want ErrMalformed", ev, c, err)
			}
		})
	}
}

// TestChainFailures: an expired signing cert and a wrong trust anchor are
// chain errors, not signature errors.
func TestChainFailures(t *testing.T) {
	ev, _ := loadCert(t, pallets+"ra_dump_cert_TEST4.der")
	iasRoot := iasRoots(t)
	sgxRoot := []*x509.Certificate{readPEMCert(t, sgxRootPath)}

	tests := []struct {
		name    string
		roots   []*x509.Certificate
		at      time.Time
		wantErr []error // all must match; nil = accept
		expired bool
	}{
		{"last second of the signing cert", iasRoot, iasSigningNotAfter, nil, false},
		{"one second after the signing cert expired", iasRoot, iasSigningNotAfter.Add(time.Second), []error{ErrUntrustedSigner}, true},
		{"2026-11-27", iasRoot, time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), []error{ErrUntrustedSigner}, true},
		{"DCAP root instead of the IAS root", sgxRoot, mustTime(t, "2020-04-26T11:16:25.349850"), []error{ErrUntrustedSigner, attestation.ErrUntrustedRoot}, false},
		{"no roots", nil, mustTime(t, "2020-04-26T11:16:25.349850"), []error{ErrUntrustedSigner, attestation.ErrUntrustedRoot}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(ev, Options{Roots: tc.roots, Time: tc.at})
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("err = %v, want accept", err)
				}
				return
			}
			for _, w := range tc.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want %v", err, w)
				}
			}
			var cie x509.CertificateInvalidError
			if got := errors.As(err, &cie) && cie.Reason == x509.Expired; got != tc.expired {
				t.Errorf("expired = %v, want %v (err %v)", got, tc.expired, err)
			}
		})
	}
	if _, err := Verify(ev, Options{Roots: iasRoot}); err == nil {
		t.Error("zero verification time accepted")
	}
}

// TestTamperBody: changing any byte of the signed body must be rejected.
// Every byte of TEST4, and every 17th byte of the other vectors.
func TestTamperBody(t *testing.T) {
	roots := iasRoots(t)
	for i, v := range iasVectors() {
		step := 17
		if i == 0 {
			step = 1
		}
		t.Run(v.name, func(t *testing.T) {
			ev, _ := v.load(t)
			opts := Options{Roots: roots, Time: mustTime(t, v.timestamp)}
			tampered := cloneEvidence(ev)
			for off := i % step; off < len(ev.Body); off += step {
				for _, mask := range []byte{0x01, 0xff} {
					tampered.Body[off] ^= mask
					if _, err := Verify(tampered, opts); !errors.Is(err, ErrSignature) {
						t.Fatalf("body[%d]^%#x: err = %v, want ErrSignature", off, mask, err)
					}
					tampered.Body[off] ^= mask
				}
			}
			// Appending or dropping bytes is tampering too.
			for _, body := range [][]byte{append(bytes.Clone(ev.Body), ' '), ev.Body[:len(ev.Body)-1]} {
				tampered.Body = body
				if _, err := Verify(tampered, opts); !errors.Is(err, ErrSignature) {
					t.Fatalf("body length %d: err = %v, want ErrSignature", len(body), err)
				}
			}
		})
	}
}

func TestTamperSignature(t *testing.T) {
	roots := iasRoots(t)
	ev := loadOasis(t, "avr_v5_body_sw_hardening_needed")
	opts := Options{Roots: roots, Time: mustTime(t, "2023-09-27T15:51:58.044803")}
	if _, err := Verify(ev, opts); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(ev.Signature); off += 7 {
		bad := cloneEvidence(ev)
		bad.Signature[off] ^= 0x80
		if _, err := Verify(bad, opts); !errors.Is(err, ErrSignature) {
			t.Fatalf("signature[%d]: err = %v, want ErrSignature", off, err)
		}
	}
	for _, sig := range [][]byte{nil, ev.Signature[:255], append(bytes.Clone(ev.Signature), 0)} {
		bad := cloneEvidence(ev)
		bad.Signature = sig
		if _, err := Verify(bad, opts); !errors.Is(err, ErrSignature) {
			t.Errorf("signature of %d bytes: err = %v, want ErrSignature", len(sig), err)
		}
	}
}

// TestForeignSigner: a report re-signed by a fresh RSA key must be rejected
// however its certificate is dressed up, since trust comes from the root.
func TestForeignSigner(t *testing.T) {
	roots := iasRoots(t)
	ev, _ := loadCert(t, pallets+"ra_dump_cert_TEST4.der")
	opts := Options{Roots: roots, Time: mustTime(t, "2020-04-26T11:16:25.349850")}
	intelLeaf := ev.Chain[0]
	intelRoot := roots[0]

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// A fake root with the Intel root's subject, and a fake leaf with the
	// Intel leaf's subject, serial and validity.
	fakeRootTmpl := &x509.Certificate{
		SerialNumber: intelRoot.SerialNumber, Subject: intelRoot.Subject,
		NotBefore: intelRoot.NotBefore, NotAfter: intelRoot.NotAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	fakeRoot := createCert(t, fakeRootTmpl, fakeRootTmpl, key.Public(), key)
	leafTmpl := &x509.Certificate{
		SerialNumber: intelLeaf.SerialNumber, Subject: intelLeaf.Subject,
		NotBefore: intelLeaf.NotBefore, NotAfter: intelLeaf.NotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
		AuthorityKeyId: intelLeaf.AuthorityKeyId,
	}
	selfSigned := createCert(t, leafTmpl, leafTmpl, key.Public(), key)
	underFakeRoot := createCert(t, leafTmpl, fakeRoot, key.Public(), key)
	sig := signPKCS1(t, key, ev.Body)

	tests := []struct {
		name  string
		chain []*x509.Certificate
		sig   []byte
		want  error
	}{
		{"self-signed lookalike", []*x509.Certificate{selfSigned}, sig, ErrUntrustedSigner},
		{"lookalike under fake root", []*x509.Certificate{underFakeRoot, fakeRoot}, sig, ErrUntrustedSigner},
		{"lookalike plus real root", []*x509.Certificate{underFakeRoot, intelRoot}, sig, ErrUntrustedSigner},
		{"real chain, foreign signature", []*x509.Certificate{intelLeaf}, sig, ErrSignature},
		{"IAS root as signer", []*x509.Certificate{intelRoot}, ev.Signature, ErrUntrustedSigner},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(&Evidence{Body: ev.Body, Signature: tc.sig, Chain: tc.chain}, opts)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestEvidenceFromCertificateIA5: the same payload wrapped in an IA5String,
// as the Netscape Comment is specified, gives the same evidence.
func TestEvidenceFromCertificateIA5(t *testing.T) {
	ev, _ := loadCert(t, pallets+"ra_dump_cert_TEST4.der")
	payload := netscapeComment(ev)

	ia5 := append([]byte{asn1TagIA5String, 0x82, byte(len(payload) >> 8), byte(len(payload))}, payload...)
	der := raTLSCert(t, pkix.Extension{Id: oidNetscapeComment, Value: ia5})
	got, _, err := EvidenceFromDER(der)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Body, ev.Body) || !bytes.Equal(got.Signature, ev.Signature) || !got.Chain[0].Equal(ev.Chain[0]) {
		t.Fatal("IA5String-wrapped evidence differs from the raw form")
	}
	if _, err := Verify(got, Options{Roots: iasRoots(t), Time: mustTime(t, "2020-04-26T11:16:25.349850")}); err != nil {
		t.Fatal(err)
	}

	bad := []struct {
		name string
		ext  pkix.Extension
		want error
	}{
		{"no comment", pkix.Extension{Id: []int{1, 2, 3, 4}, Value: payload}, ErrNoEvidence},
		{"IA5 with trailing byte", pkix.Extension{Id: oidNetscapeComment, Value: append(bytes.Clone(ia5), 0)}, ErrMalformed},
		{"IA5 truncated", pkix.Extension{Id: oidNetscapeComment, Value: ia5[:100]}, ErrMalformed},
		{"IA5 non-ASCII", pkix.Extension{Id: oidNetscapeComment, Value: []byte{asn1TagIA5String, 2, 0xc3, 0xa9}}, ErrMalformed},
		{"empty", pkix.Extension{Id: oidNetscapeComment, Value: nil}, ErrMalformed},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := EvidenceFromDER(raTLSCert(t, tc.ext)); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := EvidenceFromCertificate(nil); !errors.Is(err, ErrNoEvidence) {
		t.Errorf("nil certificate: err = %v", err)
	}
}
