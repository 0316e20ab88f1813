package ias

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/internal/testvectors"
)

const (
	iasRootPath    = "intel-roots/Intel_SGX_Attestation_Report_Signing_CA.pem"
	sgxRootPath    = "intel-roots/Intel_SGX_Root_CA.pem"
	pallets        = "integritee-pallets/"
	mesatee        = pallets + "mesatee-derived/"
	oasisDir       = "oasis-core/ias/"
	oasisChainPath = oasisDir + "avr_certificates_urlencoded.pem"
)

// iasSigningNotAfter is when the one IAS signing cert in the vectors expires.
var iasSigningNotAfter = time.Date(2026, 11, 20, 9, 36, 58, 0, time.UTC)

func readPEMCert(t testing.TB, rel string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(testvectors.Read(t, rel))
	if block == nil {
		t.Fatalf("%s: no PEM block", rel)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return c
}

func iasRoots(t testing.TB) []*x509.Certificate {
	return []*x509.Certificate{readPEMCert(t, iasRootPath)}
}

func loadCert(t testing.TB, rel string) (*Evidence, *x509.Certificate) {
	t.Helper()
	ev, c, err := EvidenceFromDER(testvectors.Read(t, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return ev, c
}

func loadOasis(t testing.TB, name string) *Evidence {
	t.Helper()
	ev, err := EvidenceFromResponse(
		testvectors.Read(t, oasisDir+name+".json"),
		string(testvectors.Read(t, oasisDir+name+".sig")),
		string(testvectors.Read(t, oasisChainPath)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

func loadPhala(t testing.TB, rel string) *Evidence {
	t.Helper()
	ev, err := EvidenceFromPhala(testvectors.Read(t, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return ev
}

// mustTime parses an IAS-style timestamp (UTC, no zone).
func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	ts, err := time.ParseInLocation("2006-01-02T15:04:05.999999", s, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func cloneEvidence(ev *Evidence) *Evidence {
	return &Evidence{
		Body:      append([]byte(nil), ev.Body...),
		Signature: append([]byte(nil), ev.Signature...),
		Chain:     append([]*x509.Certificate(nil), ev.Chain...),
	}
}

// testPKI is a stand-in for IAS: a root and an RSA report-signing leaf.
type testPKI struct {
	root    *x509.Certificate
	leaf    *x509.Certificate
	leafKey *rsa.PrivateKey
}

var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

var ecKey = sync.OnceValue(func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

var notBefore = time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)

func createCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newTestPKI builds a root (ECDSA) and a leaf carrying leafUsage. The
// subjects copy Intel's so that only keys tell them apart.
func newTestPKI(t testing.TB, leafUsage x509.KeyUsage) *testPKI {
	t.Helper()
	rootTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Intel SGX Attestation Report Signing CA", Organization: []string{"Intel Corporation"}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.AddDate(40, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	root := createCert(t, rootTmpl, rootTmpl, ecKey().Public(), ecKey())
	leafTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "Intel SGX Attestation Report Signing", Organization: []string{"Intel Corporation"}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.AddDate(20, 0, 0),
		BasicConstraintsValid: true,
		KeyUsage:              leafUsage,
	}
	leaf := createCert(t, leafTmpl, root, rsaKey().Public(), ecKey())
	return &testPKI{root: root, leaf: leaf, leafKey: rsaKey()}
}

func signPKCS1(t testing.TB, key *rsa.PrivateKey, body []byte) []byte {
	t.Helper()
	d := sha256.Sum256(body)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func (p *testPKI) evidence(t testing.TB, body []byte) *Evidence {
	return &Evidence{Body: body, Signature: signPKCS1(t, p.leafKey, body), Chain: []*x509.Certificate{p.leaf, p.root}}
}

// synthQuote returns a 432-byte quote body in which every field holds a
// distinct, recognisable value.
func synthQuote() []byte {
	q := make([]byte, QuoteBodySize)
	for i := range q {
		q[i] = byte(i * 7)
	}
	return q
}

const synthTimestamp = "2024-03-01T12:00:00.123456"

// synthReport marshals a plausible v4 report after applying edit, which may
// add, change or delete members (encoding/json sorts the keys).
func synthReport(t testing.TB, edit func(m map[string]any)) []byte {
	t.Helper()
	m := map[string]any{
		"id":                    "123456789",
		"timestamp":             synthTimestamp,
		"version":               4,
		"isvEnclaveQuoteStatus": "OK",
		"isvEnclaveQuoteBody":   base64.StdEncoding.EncodeToString(synthQuote()),
		"advisoryURL":           "https://security-center.intel.com",
		"advisoryIDs":           []string{"INTEL-SA-00334"},
		"nonce":                 "n0nce",
		"epidPseudonym":         "pseudo",
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// netscapeComment renders evidence the way Integritee's generator does.
func netscapeComment(ev *Evidence) []byte {
	var b strings.Builder
	b.Write(ev.Body)
	b.WriteByte('|')
	b.WriteString(base64.StdEncoding.EncodeToString(ev.Signature))
	b.WriteByte('|')
	b.WriteString(base64.StdEncoding.EncodeToString(ev.Chain[0].Raw))
	return []byte(b.String())
}

// raTLSCert builds a self-signed certificate carrying ext.
func raTLSCert(t testing.TB, ext pkix.Extension) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(1),
		Subject:         pkix.Name{CommonName: "test enclave"},
		NotBefore:       notBefore,
		NotAfter:        notBefore.AddDate(1, 0, 0),
		ExtraExtensions: []pkix.Extension{ext},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ecKey().Public(), ecKey())
	if err != nil {
		t.Fatal(err)
	}
	return der
}
