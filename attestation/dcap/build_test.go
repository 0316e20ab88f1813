package dcap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"
)

// testPKI is a throwaway root -> PCK CA -> PCK leaf hierarchy.
type testPKI struct {
	root, ca, leaf, tcb             *x509.Certificate
	rootKey, caKey, leafKey, tcbKey *ecdsa.PrivateKey
	ext                             PCKExtensions
}

var pkiNotBefore = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestPKI(tb testing.TB) *testPKI {
	tb.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	issue := func(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			tb.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	caTmpl := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{CommonName: cn, Organization: []string{"Test"}},
			NotBefore:             pkiNotBefore,
			NotAfter:              pkiNotBefore.AddDate(10, 0, 0),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
	}
	p := &testPKI{ext: PCKExtensions{
		PPID:    [16]byte{1, 2, 3},
		CompSVN: [16]uint8{11, 11, 2, 2, 255, 1},
		PCESVN:  13,
		CPUSVN:  [16]byte{11, 11, 2, 2, 255, 1},
		FMSPC:   [6]byte{0, 0xa0, 0x67, 0x11, 0, 0},
	}}
	p.rootKey, p.caKey, p.leafKey, p.tcbKey = key(), key(), key(), key()
	rt := caTmpl(1, "Test SGX Root CA")
	p.root = issue(rt, rt, &p.rootKey.PublicKey, p.rootKey)
	p.ca = issue(caTmpl(2, "Test SGX PCK Processor CA"), p.root, &p.caKey.PublicKey, p.rootKey)
	p.tcb = issue(&x509.Certificate{
		SerialNumber: big.NewInt(4),
		Subject:      pkix.Name{CommonName: "Test SGX TCB Signing"},
		NotBefore:    pkiNotBefore,
		NotAfter:     pkiNotBefore.AddDate(7, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}, p.root, &p.tcbKey.PublicKey, p.rootKey)
	ext, err := p.ext.Extension()
	if err != nil {
		tb.Fatal(err)
	}
	p.leaf = issue(&x509.Certificate{
		SerialNumber:    big.NewInt(3),
		Subject:         pkix.Name{CommonName: "Test SGX PCK Certificate"},
		NotBefore:       pkiNotBefore,
		NotAfter:        pkiNotBefore.AddDate(7, 0, 0),
		KeyUsage:        x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtraExtensions: []pkix.Extension{ext},
	}, p.ca, &p.leafKey.PublicKey, p.caKey)
	return p
}

func (p *testPKI) params(tb testing.TB) QuoteParams {
	tb.Helper()
	ak, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	var body ReportBody
	body.MRENCLAVE[0], body.MRSIGNER[0], body.ISVSVN, body.ISVProdID = 0xaa, 0xbb, 3, 7
	body.Attributes[0] = 0x05
	copy(body.ReportData[:], "report data")
	var qe ReportBody
	qe.MRSIGNER[0], qe.ISVProdID, qe.ISVSVN = 0x8c, 1, 10
	return QuoteParams{
		QESVN: 10, PCESVN: 13,
		QEVendorID:     [16]byte{0x93, 0x9a},
		Body:           body,
		QEReport:       qe,
		QEAuthData:     bytes.Repeat([]byte{0x5a}, 32),
		AttestationKey: ak,
		PCKKey:         p.leafKey,
		PCKChain:       []*x509.Certificate{p.leaf, p.ca, p.root},
	}
}

func TestBuildQuoteV3RoundTrip(t *testing.T) {
	pki := newTestPKI(t)
	params := pki.params(t)
	raw, err := BuildQuoteV3(params)
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	if q.Header.Version != 3 || q.Header.AttestationKeyType != 2 || q.Header.TEEType != 0 ||
		q.Header.QESVN != 10 || q.Header.PCESVN != 13 || q.Header.QEVendorID != params.QEVendorID {
		t.Errorf("header = %+v", q.Header)
	}
	if q.Body == nil || *q.Body != params.Body {
		t.Errorf("body = %+v, want %+v", q.Body, params.Body)
	}
	if q.QEReport.MRSIGNER != params.QEReport.MRSIGNER || q.QEReport.ISVSVN != 10 {
		t.Errorf("QE report = %+v", q.QEReport)
	}
	if !bytes.Equal(q.QEAuthData, params.QEAuthData) || len(q.PCKChain) != 3 || !q.PCKChain[0].Equal(pki.leaf) {
		t.Errorf("auth data / chain not preserved")
	}
	at := pkiNotBefore.Add(24 * time.Hour)
	path, err := VerifySignatures(q, []*x509.Certificate{pki.root}, at)
	if err != nil {
		t.Fatalf("VerifySignatures: %v", err)
	}
	if len(path) != 3 || !path[0].Equal(pki.leaf) {
		t.Errorf("path = %d certs", len(path))
	}
	ext, err := ParsePCKExtensions(path[0])
	if err != nil {
		t.Fatal(err)
	}
	if *ext != pki.ext {
		t.Errorf("extensions = %+v, want %+v", *ext, pki.ext)
	}

	// The same quote under the Intel root must not verify.
	if _, err := VerifySignatures(q, []*x509.Certificate{intelRoot(t)}, at); !errors.Is(err, ErrPCKChain) {
		t.Errorf("under the Intel root: err = %v, want ErrPCKChain", err)
	}
	// Before the hierarchy exists.
	if _, err := VerifySignatures(q, []*x509.Certificate{pki.root}, pkiNotBefore.Add(-time.Hour)); !errors.Is(err, ErrPCKChain) {
		t.Errorf("before notBefore: err = %v, want ErrPCKChain", err)
	}
}

func TestBuildQuoteV3Errors(t *testing.T) {
	pki := newTestPKI(t)
	good := pki.params(t)
	p256 := good.AttestationKey
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(p *QuoteParams)
	}{
		{"no attestation key", func(p *QuoteParams) { p.AttestationKey = nil }},
		{"P-384 attestation key", func(p *QuoteParams) { p.AttestationKey = p384 }},
		{"no PCK key", func(p *QuoteParams) { p.PCKKey = nil }},
		{"P-384 PCK key", func(p *QuoteParams) { p.PCKKey = p384 }},
		{"empty chain", func(p *QuoteParams) { p.PCKChain = nil }},
		{"auth data too long", func(p *QuoteParams) { p.QEAuthData = make([]byte, 1<<16) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			p.AttestationKey = p256
			tt.edit(&p)
			if _, err := BuildQuoteV3(p); err == nil {
				t.Fatal("BuildQuoteV3 succeeded")
			}
		})
	}
}
