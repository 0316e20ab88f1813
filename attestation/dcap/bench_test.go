package dcap

import (
	"crypto/x509"
	"testing"
)

func BenchmarkParseQuote(b *testing.B) {
	raw := readQuote(b, "dcap-qvl/sgx_quote")
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseQuote(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is one full DCAP verification of the dcap-qvl quote: parse,
// PCK chain, the three quote checks, and the collateral (signatures, chains,
// CRLs, QE identity, TCB evaluation).
func BenchmarkVerify(b *testing.B) {
	raw := readQuote(b, "dcap-qvl/sgx_quote")
	opts := Options{Roots: []*x509.Certificate{intelRoot(b)}, Collateral: qvlCollateral(b), Time: mustTime(b, "2025-07-19T10:01:17Z")}
	for b.Loop() {
		if _, err := Verify(raw, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySignatures(b *testing.B) {
	q, err := ParseQuote(readQuote(b, "dcap-qvl/sgx_quote"))
	if err != nil {
		b.Fatal(err)
	}
	roots := []*x509.Certificate{intelRoot(b)}
	at := mustTime(b, "2025-07-19T10:01:17Z")
	for b.Loop() {
		if _, err := VerifySignatures(q, roots, at); err != nil {
			b.Fatal(err)
		}
	}
}
