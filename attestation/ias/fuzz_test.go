package ias

import (
	"errors"
	"testing"

	"github.com/integritee-go/integritee/internal/testvectors"
)

// FuzzParseReport: ParseReport never panics, fails only with ErrMalformed,
// and what it accepts is internally consistent.
func FuzzParseReport(f *testing.F) {
	for _, rel := range []string{
		oasisDir + "avr_v4_body_sw_hardening_needed.json",
		oasisDir + "avr_v5_body_sw_hardening_needed.json",
	} {
		f.Add(testvectors.Read(f, rel))
	}
	f.Add(synthReport(f, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReport(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || r != nil {
				t.Fatalf("ParseReport = %v, %v", r, err)
			}
			return
		}
		if len(r.QuoteBody) != QuoteBodySize || r.Version < 3 || r.Version > 5 || r.ID == "" || r.QuoteStatus == "" ||
			string(r.Raw) != string(b) || r.Timestamp.Location().String() != "UTC" {
			t.Fatalf("inconsistent report %+v", r)
		}
	})
}

// FuzzEvidenceFromCertificate feeds DER through x509 parsing and the
// Netscape Comment extraction; whatever evidence comes out must parse or be
// rejected cleanly.
func FuzzEvidenceFromCertificate(f *testing.F) {
	for _, rel := range []string{
		pallets + "ra_dump_cert_TEST4.der",
		pallets + "ra_dump_cert_TEST8_PRODUCTION.der",
		mesatee + "mesatee_ra_cert_valid_GROUP_OUT_OF_DATE.der",
		mesatee + "mesatee_ra_cert_truncated_569B.der",
	} {
		f.Add(testvectors.Read(f, rel))
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		ev, c, err := EvidenceFromDER(der)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoEvidence) || ev != nil || c != nil {
				t.Fatalf("EvidenceFromDER = %v, %v, %v", ev, c, err)
			}
			return
		}
		if c == nil || len(ev.Body) == 0 || len(ev.Chain) != 1 || ev.Chain[0] == nil {
			t.Fatalf("inconsistent evidence %+v", ev)
		}
		if _, err := ParseReport(ev.Body); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
	})
}

// FuzzParseNetscapeComment reaches the comment parser directly, which
// mutations of whole certificates rarely do.
func FuzzParseNetscapeComment(f *testing.F) {
	ev, _ := loadCert(f, pallets+"ra_dump_cert_TEST4.der")
	f.Add(netscapeComment(ev))
	f.Add([]byte("{}|AAAA|AAAA"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseNetscapeComment(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || ev != nil {
				t.Fatalf("ParseNetscapeComment = %v, %v", ev, err)
			}
			return
		}
		if len(ev.Body) == 0 || len(ev.Chain) != 1 {
			t.Fatalf("inconsistent evidence %+v", ev)
		}
	})
}

// FuzzEvidenceFromPhala covers the JSON container with its hex/base64
// guessing.
func FuzzEvidenceFromPhala(f *testing.F) {
	f.Add(testvectors.Read(f, "phala/ias_attestation.json"))
	f.Add(testvectors.Read(f, "phala/pallet_ias_attestation.json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := EvidenceFromPhala(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || ev != nil {
				t.Fatalf("EvidenceFromPhala = %v, %v", ev, err)
			}
			return
		}
		if len(ev.Body) == 0 || len(ev.Chain) != 1 {
			t.Fatalf("inconsistent evidence %+v", ev)
		}
	})
}

// BenchmarkVerify is one full IAS verification: chain to the root, RSA
// signature, report parsing and status mapping.
func BenchmarkVerify(b *testing.B) {
	ev, _ := loadCert(b, pallets+"ra_dump_cert_TEST4.der")
	opts := Options{Roots: iasRoots(b), Time: mustTime(b, "2020-04-26T11:16:25.349850")}
	for b.Loop() {
		if _, err := Verify(ev, opts); err != nil {
			b.Fatal(err)
		}
	}
}
