package roots

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"testing"

	"github.com/integritee-go/integritee/internal/testvectors"
)

func TestRoots(t *testing.T) {
	tests := []struct {
		name        string
		get         func() []byte
		fingerprint string
		vector      string
	}{
		{"sgx", func() []byte { return SGXRootCA().Raw }, "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3", "intel-roots/Intel_SGX_Root_CA.pem"},
		{"ias", func() []byte { return IASRootCA().Raw }, "7b42e41ec43b91db834a065de4f98a13c44d695570e839cfa8921e584e40735d", "intel-roots/Intel_SGX_Attestation_Report_Signing_CA.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.get()
			sum := sha256.Sum256(raw)
			if got := hex.EncodeToString(sum[:]); got != tt.fingerprint {
				t.Fatalf("fingerprint %s, want %s", got, tt.fingerprint)
			}
			b, _ := pem.Decode(testvectors.Read(t, tt.vector))
			if b == nil || !bytes.Equal(b.Bytes, raw) {
				t.Fatal("embedded root differs from the vector copy")
			}
		})
	}
	if cn := SGXRootCA().Subject.CommonName; cn != "Intel SGX Root CA" {
		t.Errorf("SGX CN %q", cn)
	}
	if len(DCAP()) != 1 || len(IAS()) != 1 {
		t.Error("DCAP/IAS root sets")
	}
	if a, b := SGXRootCA(), SGXRootCA(); a == b {
		t.Error("SGXRootCA returns a shared pointer; callers could mutate it")
	}
}

func TestParsePEMRejects(t *testing.T) {
	for _, s := range []string{"", "junk", SGXRootCAPEM + IASRootCAPEM, "-----BEGIN X-----\nAA==\n-----END X-----\n"} {
		if _, err := parsePEM(s); err == nil {
			t.Errorf("parsePEM accepted %.20q", s)
		}
	}
}
