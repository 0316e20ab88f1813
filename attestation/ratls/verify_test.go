package ratls

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ias"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/internal/testvectors"
)

const (
	echeckMRENCLAVE = "df2493c11fc01708af6913323b64e20ae84b12779dbe44ba428da66dfc4488f5"
	echeckMRSIGNER  = "976aa9f931b8a16e01e01895d627e3ee96dce5478ebbbc77e120a25c79fe6016"
)

// TestEcheckCertificates verifies the real EGo RA-TLS certificates with the
// strictest policy that admits them.
func TestEcheckCertificates(t *testing.T) {
	for _, name := range []string{"echeck/sample.pem", "echeck/sample2.pem"} {
		t.Run(name, func(t *testing.T) {
			cert := readCert(t, name)
			v := intelVerifier(t, echeckTime)
			v.Policy.AllowDebug = false
			v.Policy.AllowedMRENCLAVE = [][32]byte{mustHex32(t, echeckMRENCLAVE)}
			v.Policy.AllowedMRSIGNER = [][32]byte{mustHex32(t, echeckMRSIGNER)}
			v.Policy.AcceptedTCBStatuses = []attestation.TCBStatus{attestation.StatusConfigurationAndSWHardeningNeeded}
			res, err := v.VerifyCertificate(cert)
			if err != nil {
				t.Fatalf("VerifyCertificate: %v", err)
			}
			if res.Kind != attestation.KindDCAP || res.ISVProdID != 1 || res.ISVSVN != 1 || res.Debug() {
				t.Errorf("kind %s, ISVPRODID %d, ISVSVN %d, debug %v; want dcap, 1, 1, false", res.Kind, res.ISVProdID, res.ISVSVN, res.Debug())
			}
			if res.TCBStatus != attestation.StatusConfigurationAndSWHardeningNeeded || res.QETCBStatus != attestation.StatusUpToDate {
				t.Errorf("TCB %s, QE %s", res.TCBStatus, res.QETCBStatus)
			}
			if want := []string{"INTEL-SA-00289", "INTEL-SA-00615"}; !slices.Equal(res.AdvisoryIDs, want) {
				t.Errorf("advisories %v, want %v", res.AdvisoryIDs, want)
			}
			if got := hex.EncodeToString(res.FMSPC); got != "00a067110000" {
				t.Errorf("FMSPC %s", got)
			}
			spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
			if !bytes.Equal(res.ReportData[:32], spki[:]) || [32]byte(res.ReportData[32:]) != [32]byte{} {
				t.Errorf("report data %x is not SHA-256(SPKI) || 0", res.ReportData)
			}
			// The attestation-only path gives the same result.
			res2, err := v.VerifyAttestationOnly(cert)
			if err != nil || res2.MRENCLAVE != res.MRENCLAVE {
				t.Errorf("VerifyAttestationOnly: %v", err)
			}
		})
	}
}

func TestEcheckRejections(t *testing.T) {
	cert := readCert(t, "echeck/sample.pem")
	tests := []struct {
		name   string
		adjust func(v *Verifier)
		want   error
	}{
		{"other MRENCLAVE allowed", func(v *Verifier) { v.Policy.AllowedMRENCLAVE = [][32]byte{measurementA} }, attestation.ErrMRENCLAVENotAllowed},
		{"other MRSIGNER allowed", func(v *Verifier) { v.Policy.AllowedMRSIGNER = [][32]byte{measurementA} }, attestation.ErrMRSIGNERNotAllowed},
		{"only UpToDate accepted", func(v *Verifier) { v.Policy.AcceptedTCBStatuses = []attestation.TCBStatus{attestation.StatusUpToDate} }, attestation.ErrTCBStatus},
		{"no collateral source", func(v *Verifier) { v.Collateral = nil }, ErrNoCollateral},
		{"collateral source fails", func(v *Verifier) {
			v.Collateral = func([6]byte) (*pcs.Collateral, error) { return nil, errors.New("PCS unreachable") }
		}, ErrNoCollateral},
		{"collateral source returns nil", func(v *Verifier) { v.Collateral = StaticCollateral(nil) }, ErrNoCollateral},
		{"no DCAP roots", func(v *Verifier) { v.Policy.DCAPRoots = nil }, attestation.ErrUntrustedRoot},
		{"collateral expired", func(v *Verifier) { v.Now = fixed(echeckTime.Add(time.Second)) }, pcs.ErrExpired},
		{"dev root only", func(v *Verifier) { v.Policy.DCAPRoots = []*x509.Certificate{newSimEnv(t).pki.Root()} }, attestation.ErrUntrustedRoot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := intelVerifier(t, echeckTime)
			tt.adjust(v)
			_, err := v.VerifyCertificate(cert)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestCollateralFunctionGetsFMSPC: the collateral source is asked for the
// platform of the quote.
func TestCollateralFunctionGetsFMSPC(t *testing.T) {
	v := intelVerifier(t, echeckTime)
	col := qvlCollateral(t)
	var asked [][6]byte
	v.Collateral = func(f [6]byte) (*pcs.Collateral, error) { asked = append(asked, f); return col, nil }
	if _, err := v.VerifyCertificate(readCert(t, "echeck/sample2.pem")); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != [6]byte{0x00, 0xa0, 0x67, 0x11, 0x00, 0x00} {
		t.Fatalf("collateral asked for %x", asked)
	}
}

// TestQuoteMovedToAnotherKey: a genuine quote in a certificate for another
// key is attested but not bound.
func TestQuoteMovedToAnotherKey(t *testing.T) {
	orig := readCert(t, "echeck/sample.pem")
	var ext []byte
	for _, e := range orig.Extensions {
		if e.Id.Equal(oidQuote) {
			ext = e.Value
		}
	}
	cert, _ := selfSigned(t, pkix.Extension{Id: oidQuote, Value: ext})
	v := intelVerifier(t, echeckTime)
	if _, err := v.VerifyCertificate(cert); !errors.Is(err, ErrKeyBinding) {
		t.Fatalf("VerifyCertificate: %v, want ErrKeyBinding", err)
	}
	// Everything else holds: binding is the only failure.
	res, err := v.VerifyAttestationOnly(cert)
	if err != nil {
		t.Fatalf("VerifyAttestationOnly: %v", err)
	}
	if hex.EncodeToString(res.MRENCLAVE[:]) != echeckMRENCLAVE {
		t.Errorf("MRENCLAVE %x", res.MRENCLAVE)
	}
}

// ias cert vectors: verified one hour after the report, as their RA-TLS
// certificates were issued up to 5 s after the report timestamp.
var iasCerts = []struct {
	file      string
	report    string // report timestamp
	mrenclave string
	status    attestation.TCBStatus
	signer    string // Integritee: report_data[0:32] is this ed25519 key, not the cert key
}{
	{"integritee-pallets/legacy-ias-2020/test_ra_cert_MRSIGNER1_MRENCLAVE1.der", "2020-02-01T20:01:02.998418Z", "3efcbbe83c876ccc574e23a9f1ed6ad9fbf163bd8a9d56884d5b5d17c0688ca7", attestation.StatusOutOfDate, ""},
	{"integritee-pallets/legacy-ias-2020/test_ra_cert_MRSIGNER2_MRENCLAVE2.der", "2020-02-09T14:43:32.958203Z", "04bee684d3813bed654e37ae90b15b8601f01bae518b081620f1e467bd2b2c66", attestation.StatusOutOfDate, ""},
	{"integritee-pallets/legacy-ias-2020/test_ra_cert_MRSIGNER3_MRENCLAVE2.der", "2020-02-09T14:52:55.684814Z", "04bee684d3813bed654e37ae90b15b8601f01bae518b081620f1e467bd2b2c66", attestation.StatusOutOfDate, ""},
	{"integritee-pallets/mesatee-derived/mesatee_ra_cert_valid_GROUP_OUT_OF_DATE.der", "2019-06-17T12:46:04.002066Z", "52496086cf568b7d3734428d6db3f7e93ef4af01b0740acd53041ce475e2135b", attestation.StatusOutOfDate, ""},
	{"integritee-pallets/ra_dump_cert_TEST4.der", "2020-04-26T11:16:25.349850Z", "7a3454ec8f42e265cb5be7dfd111e1d95ac6076ed82a0948b2e2a45cf17b62a0", attestation.StatusConfigurationNeeded, "enclave-signing-pubkey-TEST4.bin"},
	{"integritee-pallets/ra_dump_cert_TEST5.der", "2020-04-26T11:20:13.154140Z", "f4dedfc9e5fcc48443332bc9b23161c34a3c3f5a692eaffdb228db27b704d9d1", attestation.StatusConfigurationNeeded, "enclave-signing-pubkey-TEST5.bin"},
	{"integritee-pallets/ra_dump_cert_TEST6.der", "2020-04-26T11:23:53.307283Z", "f4dedfc9e5fcc48443332bc9b23161c34a3c3f5a692eaffdb228db27b704d9d1", attestation.StatusConfigurationNeeded, "enclave-signing-pubkey-TEST6.bin"},
	{"integritee-pallets/ra_dump_cert_TEST7.der", "2020-04-26T11:27:30.948397Z", "f4dedfc9e5fcc48443332bc9b23161c34a3c3f5a692eaffdb228db27b704d9d1", attestation.StatusConfigurationNeeded, "enclave-signing-pubkey-TEST7.bin"},
	{"integritee-pallets/ra_dump_cert_TEST8_PRODUCTION.der", "2021-10-13T20:25:00.635222Z", "bcf66abfc6b3ef259e9ecfe4cf8df667a7f5a546525dee16822741b38f6e6050", attestation.StatusConfigurationAndSWHardeningNeeded, "enclave-signing-pubkey-TEST8-PRODUCTION.bin"},
}

func TestIASCertificates(t *testing.T) {
	for _, tc := range iasCerts {
		t.Run(tc.file, func(t *testing.T) {
			report, err := time.Parse(time.RFC3339Nano, tc.report)
			if err != nil {
				t.Fatal(err)
			}
			cert := readCert(t, tc.file)
			v := intelVerifier(t, report.Add(time.Hour))
			v.Policy.AllowedMRENCLAVE = [][32]byte{mustHex32(t, tc.mrenclave)}
			v.Policy.AcceptedTCBStatuses = []attestation.TCBStatus{tc.status}
			v.Policy.MaxAge = 24 * time.Hour // teerex's freshness rule

			res, err := v.VerifyCertificate(cert)
			if tc.signer != "" {
				// Integritee certs commit to the enclave signer, not the key.
				if !errors.Is(err, ErrKeyBinding) {
					t.Fatalf("VerifyCertificate: %v, want ErrKeyBinding", err)
				}
				res, err = v.VerifyAttestationOnly(cert)
				if err != nil {
					t.Fatalf("VerifyAttestationOnly: %v", err)
				}
				signer := testvectors.Read(t, "integritee-pallets/"+tc.signer)
				if !bytes.Equal(res.ReportData[:32], signer) || [32]byte(res.ReportData[32:]) != [32]byte{} {
					t.Fatalf("report data %x, want signer %x || 0", res.ReportData, signer)
				}
			} else if err != nil {
				t.Fatalf("VerifyCertificate: %v", err)
			}
			if res.Kind != attestation.KindIAS || !res.Timestamp.Equal(report) {
				t.Errorf("kind %s, timestamp %s", res.Kind, res.Timestamp)
			}

			// The policy still applies to attestation-only verification.
			if res.Debug() {
				v.Policy.AllowDebug = false
				if _, err := v.VerifyAttestationOnly(cert); !errors.Is(err, attestation.ErrDebugEnclave) {
					t.Errorf("debug enclave with debug disallowed: %v", err)
				}
			}
		})
	}
}

// TestIASCertificateTimes documents the time handling: at the report
// timestamp the legacy certificate is not yet valid (issued 1.6 ms later,
// NotBefore rounded up to the second), so it is rejected as a certificate;
// after 24 h the report is too old for teerex's rule; after the IAS signing
// certificate expired (2026-11-20) nothing verifies.
func TestIASCertificateTimes(t *testing.T) {
	cert := readCert(t, "integritee-pallets/legacy-ias-2020/test_ra_cert_MRSIGNER1_MRENCLAVE1.der")
	report := time.Date(2020, 2, 1, 20, 1, 2, 998418000, time.UTC)
	tests := []struct {
		at   time.Time
		want error
	}{
		{report, ErrCertificate},
		{report.Add(-time.Second), attestation.ErrFromFuture},
		{report.Add(time.Hour), nil},
		{report.Add(25 * time.Hour), attestation.ErrTooOld},
		{time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), ias.ErrUntrustedSigner},
	}
	for _, tt := range tests {
		v := intelVerifier(t, tt.at)
		v.Policy.MaxAge = 24 * time.Hour
		_, err := v.VerifyCertificate(cert)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("at %s: %v, want %v", tt.at.Format(time.RFC3339Nano), err, tt.want)
		}
	}
}

func TestMesaTEETampered(t *testing.T) {
	for _, tc := range []struct {
		file string
		want error
	}{
		{"mesatee_ra_cert_tampered_report.der", ias.ErrSignature},
		{"mesatee_ra_cert_tampered_report_and_signing_cert.der", ias.ErrUntrustedSigner},
	} {
		cert := readCert(t, "integritee-pallets/mesatee-derived/"+tc.file)
		v := intelVerifier(t, time.Date(2019, 6, 17, 13, 46, 5, 0, time.UTC))
		if _, err := v.VerifyCertificate(cert); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.file, err, tc.want)
		}
	}
}

func TestCertificateShape(t *testing.T) {
	echeck := readCert(t, "echeck/sample.pem")
	var quoteExt pkix.Extension
	for _, e := range echeck.Extensions {
		if e.Id.Equal(oidQuote) {
			quoteExt = e
		}
	}
	iasCert := readCert(t, "integritee-pallets/legacy-ias-2020/test_ra_cert_MRSIGNER1_MRENCLAVE1.der")
	var iasExt pkix.Extension
	for _, e := range iasCert.Extensions {
		if e.Id.Equal(oidNetscapeComment) {
			iasExt = e
		}
	}
	critical := quoteExt
	critical.Critical = true
	unknownCritical := pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}
	tampered := bytes.Clone(quoteExt.Value)
	tampered[8]++ // report size

	tests := []struct {
		name string
		exts []pkix.Extension
		want error
	}{
		{"plain self-signed", nil, ErrNoAttestation},
		{"both attestations", []pkix.Extension{quoteExt, iasExt}, ErrCertificate},
		{"critical quote extension", []pkix.Extension{critical}, ErrCertificate},
		{"unknown critical extension", []pkix.Extension{quoteExt, unknownCritical}, ErrCertificate},
		{"bad report size", []pkix.Extension{{Id: oidQuote, Value: tampered}}, ErrMalformedExtension},
		{"empty quote extension", []pkix.Extension{{Id: oidQuote, Value: nil}}, ErrMalformedExtension},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, _ := selfSigned(t, tt.exts...)
			v := intelVerifier(t, echeckTime)
			if _, err := v.VerifyCertificate(cert); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := intelVerifier(t, echeckTime).VerifyCertificate(nil); !errors.Is(err, ErrCertificate) {
		t.Errorf("nil certificate: %v", err)
	}

	// A broken self-signature is rejected for the OE format.
	broken := *echeck
	broken.Signature = bytes.Clone(echeck.Signature)
	broken.Signature[len(broken.Signature)-1] ^= 1
	if _, err := intelVerifier(t, echeckTime).VerifyCertificate(&broken); !errors.Is(err, ErrCertificate) {
		t.Errorf("broken self-signature: %v", err)
	}
}
