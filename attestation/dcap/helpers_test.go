package dcap

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/internal/testvectors"
)

// intelRoot is the Intel SGX Root CA, the DCAP trust anchor.
func intelRoot(tb testing.TB) *x509.Certificate {
	tb.Helper()
	blk, _ := pem.Decode(testvectors.Read(tb, "intel-roots/Intel_SGX_Root_CA.pem"))
	if blk == nil {
		tb.Fatal("Intel root: no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// readQuote reads a quote vector; Automata's .hex files are hex text.
func readQuote(tb testing.TB, name string) []byte {
	tb.Helper()
	b := testvectors.Read(tb, name)
	if strings.HasSuffix(name, ".hex") {
		d, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		return d
	}
	return b
}

func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
