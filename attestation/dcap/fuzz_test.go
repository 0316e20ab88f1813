package dcap

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/integritee-go/integritee/internal/testvectors"
)

// FuzzParseQuote feeds arbitrary bytes to ParseQuote, which must never
// panic, and checks that what it accepts is self-consistent. Seeds live in
// testdata/fuzz/FuzzParseQuote; the real vectors are added at run time when
// present.
func FuzzParseQuote(f *testing.F) {
	if d := testvectors.Dir(); d != "" {
		for _, name := range []string{
			"dcap-qvl/sgx_quote",
			"oasis-core/pcs/quote_v3_ecdsa_p256_eppid.bin",
			"oasis-core/pcs/quote_v4_tdx_ecdsa_p256.bin",
			"go-tdx-guest/quote_v5_sample.dat",
		} {
			if b, err := os.ReadFile(filepath.Join(d, name)); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuote(b)
		if err != nil {
			if q != nil {
				t.Fatal("quote and error both returned")
			}
			return
		}
		if (q.Body == nil) == (q.TD == nil) {
			t.Fatal("exactly one of Body and TD must be set")
		}
		if len(q.PCKChain) == 0 || len(q.PCKChain) > maxPCKChain {
			t.Fatalf("%d PCK certificates", len(q.PCKChain))
		}
		if !bytes.HasPrefix(b, q.signed) || int(binary.LittleEndian.Uint32(b[len(q.signed):]))+len(q.signed)+4 != len(b) {
			t.Fatal("signature data length does not cover the rest of the quote")
		}
		if q.Body != nil {
			body, _ := q.Body.MarshalBinary()
			if !bytes.HasSuffix(q.signed, body) {
				t.Fatal("report body does not round-trip")
			}
		}
		// Signature checks on fuzzed quotes must fail cleanly, never panic.
		_, _ = VerifySignatures(q, []*x509.Certificate{q.PCKChain[len(q.PCKChain)-1]}, q.PCKChain[0].NotBefore)
	})
}
