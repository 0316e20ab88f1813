package pcs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
)

// Synthetic PKI: no real revoked PCK exists in the vectors, and signing needs
// keys we hold.

var pkiEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCert(t testing.TB, name string, serial int64, parent *testCert, isCA bool) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"integritee-go test"}},
		NotBefore:             pkiEpoch,
		NotAfter:              pkiEpoch.AddDate(10, 0, 0),
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: c, key: key}
}

func selfSigned(t testing.TB) *testCert { return newCert(t, "Fresh Root", 1, nil, true) }

// testPKI mirrors Intel's: root -> PCK CA -> PCK leaf; root -> TCB signing.
type testPKI struct {
	root, ca, pck, signing *testCert
}

func newTestPKI(t testing.TB) *testPKI {
	root := newCert(t, "Test SGX Root CA", 1, nil, true)
	ca := newCert(t, "Test SGX PCK Processor CA", 2, root, true)
	return &testPKI{
		root:    root,
		ca:      ca,
		pck:     newCert(t, "Test SGX PCK Certificate", 77, ca, false),
		signing: newCert(t, "Test SGX TCB Signing", 3, root, false),
	}
}

func (p *testPKI) path() []*x509.Certificate {
	return []*x509.Certificate{p.pck.cert, p.ca.cert, p.root.cert}
}

func makeCRL(t testing.TB, issuer *testCert, serials ...int64) *x509.RevocationList {
	t.Helper()
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(1),
		ThisUpdate: pkiEpoch,
		NextUpdate: pkiEpoch.AddDate(0, 1, 0),
	}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: big.NewInt(s), RevocationTime: pkiEpoch,
		})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.cert, issuer.key)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := ParseCRL(der, nil)
	if err != nil {
		t.Fatal(err)
	}
	return crl.List
}

func TestCheckRevocation(t *testing.T) {
	p := newTestPKI(t)
	// Same name as the PCK CA, different key.
	impostor := newCert(t, "Test SGX PCK Processor CA", 2, p.root, true)
	other := newCert(t, "Test SGX PCK Platform CA", 4, p.root, true)
	tests := []struct {
		name    string
		pck     *x509.RevocationList
		root    *x509.RevocationList
		want    error
		wantErr bool
	}{
		{name: "no CRLs"},
		{name: "clean", pck: makeCRL(t, p.ca, 5, 6), root: makeCRL(t, p.root, 9)},
		{name: "PCK revoked", pck: makeCRL(t, p.ca, 5, 77), want: ErrRevoked},
		{name: "CA revoked by root", root: makeCRL(t, p.root, 2), want: ErrRevoked},
		// Serials are per issuer: the root's list does not speak about the
		// PCK CA's serial 77.
		{name: "root CRL lists leaf serial", root: makeCRL(t, p.root, 77)},
		{name: "PCK CRL from another CA", pck: makeCRL(t, other, 77), want: ErrCRLIssuer},
		{name: "PCK CRL from same-name impostor", pck: makeCRL(t, impostor), want: ErrCRLIssuer},
		{name: "root CRL given as PCK CRL", pck: makeCRL(t, p.root), want: ErrCRLIssuer},
		{name: "PCK CRL given as root CRL", root: makeCRL(t, p.ca), want: ErrCRLIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Collateral{}
			if tt.pck != nil {
				c.PCKCRL = &CRL{List: tt.pck}
			}
			if tt.root != nil {
				c.RootCRL = &CRL{List: tt.root}
			}
			err := c.CheckRevocation(p.path())
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("CheckRevocation: %v, want %v", err, tt.want)
			}
		})
	}
	if err := (&Collateral{}).CheckRevocation(p.path()[:1]); err == nil {
		t.Error("CheckRevocation accepted a one-certificate path")
	}
}

func TestCRLVerify(t *testing.T) {
	p := newTestPKI(t)
	roots := []*x509.Certificate{p.root.cert}
	in := pkiEpoch.AddDate(0, 0, 10)
	pemChain := func(certs ...*x509.Certificate) []byte {
		var b []byte
		for _, c := range certs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return b
	}
	crl := makeCRL(t, p.ca, 77)
	tests := []struct {
		name  string
		data  []byte
		chain []byte
		at    time.Time
		want  error
	}{
		{"DER with chain", crl.Raw, pemChain(p.ca.cert, p.root.cert), in, nil},
		{"PEM", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl.Raw}), pemChain(p.ca.cert), in, nil},
		{"hex", []byte(" " + hexUpper(crl.Raw) + "\n"), pemChain(p.ca.cert), in, nil},
		{"root CRL without chain", makeCRL(t, p.root).Raw, nil, in, nil},
		{"not yet valid", crl.Raw, pemChain(p.ca.cert), pkiEpoch.Add(-time.Second), ErrNotYetValid},
		{"at nextUpdate", crl.Raw, pemChain(p.ca.cert), pkiEpoch.AddDate(0, 1, 0), ErrExpired},
		{"issuer missing", crl.Raw, nil, in, ErrCRLIssuer},
		{"issuer not anchored", makeCRL(t, newCert(t, "Test SGX PCK Processor CA", 2, selfSigned(t), true)).Raw, pemChain(p.ca.cert), in, ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCRL(tt.data, tt.chain)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Verify(roots, tt.at); !errors.Is(err, tt.want) {
				t.Errorf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := ParseCRL([]byte("30zz"), nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage CRL: %v", err)
	}
}

func hexUpper(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 2*len(b))
	for i, v := range b {
		out[2*i], out[2*i+1] = digits[v>>4], digits[v&15]
	}
	return string(out)
}

func devTCBInfo(version int, id string) TCBInfo {
	lvl := func(c0 uint8, pce uint16, st attestation.TCBStatus, adv ...string) TCBLevel {
		l := TCBLevel{CompSVN: comps(c0, c0, 2, 4), PCESVN: pce, TCBDate: pkiEpoch, Status: st, AdvisoryIDs: adv}
		if id == IDTDX {
			l.TDXCompSVN = comps(3, 0, c0)
		}
		return l
	}
	info := TCBInfo{
		ID: id, Version: version,
		IssueDate: pkiEpoch, NextUpdate: pkiEpoch.AddDate(0, 1, 0),
		FMSPC: [6]byte{0, 0x90, 0x6e, 0xa1}, PCEID: [2]byte{0, 0},
		TCBEvaluationDataNumber: 17,
		Levels: []TCBLevel{
			lvl(5, 13, attestation.StatusUpToDate),
			lvl(4, 13, attestation.StatusSWHardeningNeeded, "INTEL-SA-00615"),
			lvl(1, 1, attestation.StatusOutOfDate, "INTEL-SA-00615", "INTEL-SA-00657"),
		},
	}
	if id == IDTDX {
		info.TDXModule = &TDXModule{AttributesMask: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
		info.TDXModuleIdentities = []TDXModuleIdentity{{ID: "TDX_01", Levels: []QELevel{{ISVSVN: 2, TCBDate: pkiEpoch, Status: attestation.StatusUpToDate}}}}
	}
	return info
}

func devQEIdentity() QEIdentity {
	return QEIdentity{
		ID: IDQE, Version: 2, IssueDate: pkiEpoch, NextUpdate: pkiEpoch.AddDate(0, 1, 0), TCBEvaluationDataNumber: 17,
		MiscSelectMask: 0xffffffff,
		Attributes:     [16]byte{0x11},
		AttributesMask: [16]byte{0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		MRSIGNER:       [32]byte{0x8c, 0x4f},
		ISVProdID:      1,
		Levels: []QELevel{
			{ISVSVN: 8, TCBDate: pkiEpoch, Status: attestation.StatusUpToDate},
			{ISVSVN: 6, TCBDate: pkiEpoch.AddDate(-1, 0, 0), Status: attestation.StatusOutOfDate, AdvisoryIDs: []string{"INTEL-SA-00615"}},
		},
	}
}

func TestSignRoundTrip(t *testing.T) {
	p := newTestPKI(t)
	roots := []*x509.Certificate{p.root.cert}
	chain := []*x509.Certificate{p.signing.cert, p.root.cert}
	chainPEM := func(certs []*x509.Certificate) []byte {
		var b []byte
		for _, c := range certs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return b
	}
	at := pkiEpoch.AddDate(0, 0, 3)

	qe, err := SignQEIdentity(devQEIdentity(), p.signing.key, chain)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(qe.Identity, devQEIdentity()) {
		t.Errorf("signed identity differs:\n got %+v\nwant %+v", qe.Identity, devQEIdentity())
	}
	qeEnv, err := qe.MarshalEnvelope()
	if err != nil {
		t.Fatal(err)
	}
	qe2, err := ParseQEIdentity(qeEnv, chainPEM(chain))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(qe2.Body, qe.Body) || !reflect.DeepEqual(qe2.Identity, qe.Identity) {
		t.Error("QE identity envelope round trip changed the document")
	}

	for _, tt := range []struct {
		name    string
		version int
		id      string
	}{{"v3 SGX", 3, IDSGX}, {"v2", 2, ""}, {"v3 TDX", 3, IDTDX}, {"defaults", 0, ""}} {
		t.Run(tt.name, func(t *testing.T) {
			in := devTCBInfo(tt.version, tt.id)
			s, err := SignTCBInfo(in, p.signing.key, chain)
			if err != nil {
				t.Fatal(err)
			}
			want := in
			if tt.version == 0 {
				want.Version, want.ID = 3, IDSGX
			}
			if !reflect.DeepEqual(s.Info, want) {
				t.Errorf("signed info differs:\n got %+v\nwant %+v", s.Info, want)
			}
			env, err := s.MarshalEnvelope()
			if err != nil {
				t.Fatal(err)
			}
			s2, err := ParseTCBInfo(env, chainPEM(chain))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s2.Body, s.Body) || !reflect.DeepEqual(s2.Info, s.Info) {
				t.Error("envelope round trip changed the document")
			}
			c := &Collateral{TCBInfo: s2, QEIdentity: qe2}
			if err := c.Verify(roots, at); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.id == IDTDX {
				return
			}
			l, err := s2.Info.Evaluate(want.FMSPC, want.PCEID, comps(4, 4, 2, 4, 9), 13)
			if err != nil || l.Status != attestation.StatusSWHardeningNeeded {
				t.Errorf("Evaluate: %v %v", l.Status, err)
			}
		})
	}

	// Editing the parsed struct after signing is caught.
	s, err := SignTCBInfo(devTCBInfo(3, IDSGX), p.signing.key, chain)
	if err != nil {
		t.Fatal(err)
	}
	s.Info.Levels[0].Status = attestation.StatusUpToDate
	s.Info.Levels[1].Status = attestation.StatusUpToDate
	if err := s.Verify(roots, at); !errors.Is(err, ErrMalformed) {
		t.Errorf("Verify of edited Info: %v, want ErrMalformed", err)
	}

	// A signer below an intermediate (a PCK key) may not sign collateral.
	bad, err := SignTCBInfo(devTCBInfo(3, IDSGX), p.pck.key, []*x509.Certificate{p.pck.cert, p.ca.cert, p.root.cert})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Verify(roots, at); !errors.Is(err, ErrChain) {
		t.Errorf("Verify with PCK signer: %v, want ErrChain", err)
	}

	// Signing keys must be P-256.
	k384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := SignTCBInfo(devTCBInfo(3, IDSGX), k384, chain); err == nil {
		t.Error("SignTCBInfo accepted a P-384 key")
	}
	// Unknown statuses are refused when signing and parsing alike.
	odd := devTCBInfo(3, IDSGX)
	odd.Levels[0].Status = "Fine"
	if _, err := SignTCBInfo(odd, p.signing.key, chain); !errors.Is(err, ErrUnknownStatus) {
		t.Errorf("SignTCBInfo with unknown status: %v, want ErrUnknownStatus", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want error
	}{
		{"not JSON", `{`, ErrMalformed},
		{"body not object", `{"tcbInfo":"x","signature":"` + sig128 + `"}`, ErrMalformed},
		{"short signature", `{"tcbInfo":{},"signature":"00"}`, ErrMalformed},
		{"version 1", `{"tcbInfo":{"version":1},"signature":"` + sig128 + `"}`, ErrUnsupportedVersion},
		{"v3 without id", `{"tcbInfo":{"version":3,"issueDate":"2024-01-01T00:00:00Z"},"signature":"` + sig128 + `"}`, ErrMalformed},
		{"unknown status", `{"tcbInfo":` + tcbDoc(`"UpToDateish"`, `{"svn":1}`) + `,"signature":"` + sig128 + `"}`, ErrUnknownStatus},
		{"svn out of range", `{"tcbInfo":` + tcbDoc(`"UpToDate"`, `{"svn":256}`) + `,"signature":"` + sig128 + `"}`, ErrMalformed},
		{"svn missing", `{"tcbInfo":` + tcbDoc(`"UpToDate"`, `{}`) + `,"signature":"` + sig128 + `"}`, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseTCBInfo([]byte(tt.doc), nil); !errors.Is(err, tt.want) {
				t.Errorf("ParseTCBInfo: %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := ParseTCBInfo([]byte(`{"tcbInfo":`+tcbDoc(`"UpToDate"`, `{"svn":1}`)+`,"signature":"`+sig128+`"}`), nil); err != nil {
		t.Errorf("valid doc: %v", err)
	}
	qeTests := []struct {
		name, doc string
		want      error
	}{
		{"version 1", `{"enclaveIdentity":{"version":1},"signature":"` + sig128 + `"}`, ErrUnsupportedVersion},
		{"unknown id", `{"enclaveIdentity":{"id":"XE","version":2},"signature":"` + sig128 + `"}`, ErrMalformed},
	}
	for _, tt := range qeTests {
		t.Run("QE "+tt.name, func(t *testing.T) {
			if _, err := ParseQEIdentity([]byte(tt.doc), nil); !errors.Is(err, tt.want) {
				t.Errorf("ParseQEIdentity: %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := ParseCertificates([]byte("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n")); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseCertificates of a non-certificate block: %v", err)
	}
	if _, err := derToRaw([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00}); !errors.Is(err, ErrMalformed) {
		t.Errorf("derToRaw with trailing byte: %v", err)
	}
}

const sig128 = "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

// tcbDoc is a minimal v3 TCB info whose first component is comp and whose
// only level has status.
func tcbDoc(status, comp string) string {
	cs := comp
	for range 15 {
		cs += `,{"svn":0}`
	}
	return `{"id":"SGX","version":3,"issueDate":"2024-01-01T00:00:00Z","nextUpdate":"2024-02-01T00:00:00Z","fmspc":"00906EA10000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":1,"tcbLevels":[{"tcb":{"sgxtcbcomponents":[` +
		cs + `],"pcesvn":1},"tcbDate":"2024-01-01T00:00:00Z","tcbStatus":` + status + `}]}`
}

func TestParseCertificatesEncodings(t *testing.T) {
	p := newTestPKI(t)
	var pemChain []byte
	for _, c := range []*x509.Certificate{p.signing.cert, p.root.cert} {
		pemChain = append(pemChain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	b64 := pemChain[bytes.IndexByte(pemChain, '\n')+1 : bytes.Index(pemChain, []byte("-----END"))]
	tests := []struct {
		name string
		in   []byte
		n    int
	}{
		{"PEM", pemChain, 2},
		{"URL-encoded PEM (PCS header)", []byte(url.PathEscape(string(pemChain))), 2},
		{"URL-encoded dashes too", []byte(strings.ReplaceAll(url.PathEscape(string(pemChain)), "-", "%2D")), 2},
		{"DER", append(bytes.Clone(p.signing.cert.Raw), p.root.cert.Raw...), 2},
		{"bare base64", b64, 1},
		{"empty", []byte(" \n"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := ParseCertificates(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(certs) != tt.n || tt.n > 0 && !certs[0].Equal(p.signing.cert) {
				t.Errorf("got %d certificates", len(certs))
			}
		})
	}
}

// A DER chain whose last byte happens to be a whitespace character must
// parse whole: trimming it would corrupt the last certificate.
func TestParseCertificatesDERTrailingWhitespaceByte(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ws"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	for range 5000 {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.ContainsAny(der[len(der)-1:], " \t\n\r\v\f") {
			continue
		}
		certs, err := ParseCertificates(der)
		if err != nil || len(certs) != 1 {
			t.Fatalf("DER ending in %#x: %d certificates, %v", der[len(der)-1], len(certs), err)
		}
		return
	}
	t.Fatal("no certificate ending in a whitespace byte was generated")
}
