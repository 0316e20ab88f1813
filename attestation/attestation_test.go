package attestation_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/internal/testvectors"
)

func TestPolicyCheck(t *testing.T) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	good := attestation.Result{
		Kind:      attestation.KindIAS,
		MRENCLAVE: [32]byte{1},
		MRSIGNER:  [32]byte{2},
		TCBStatus: attestation.StatusUpToDate,
		Timestamp: at.Add(-time.Hour),
	}
	base := attestation.Policy{
		AllowedMRENCLAVE:    [][32]byte{{1}},
		AllowedMRSIGNER:     [][32]byte{{2}},
		AcceptedTCBStatuses: []attestation.TCBStatus{attestation.StatusUpToDate, attestation.StatusSWHardeningNeeded},
		MaxAge:              24 * time.Hour,
	}
	tests := []struct {
		name   string
		mutate func(r *attestation.Result, p *attestation.Policy)
		want   error
	}{
		{"accepted", func(*attestation.Result, *attestation.Policy) {}, nil},
		{"debug rejected", func(r *attestation.Result, _ *attestation.Policy) { r.Attributes[0] = 0x07 }, attestation.ErrDebugEnclave},
		{"debug allowed", func(r *attestation.Result, p *attestation.Policy) { r.Attributes[0] = 0x07; p.AllowDebug = true }, nil},
		{"production flags", func(r *attestation.Result, _ *attestation.Policy) { r.Attributes[0] = 0x05 }, nil},
		{"mrenclave", func(r *attestation.Result, _ *attestation.Policy) { r.MRENCLAVE[0] = 9 }, attestation.ErrMRENCLAVENotAllowed},
		{"mrsigner", func(r *attestation.Result, _ *attestation.Policy) { r.MRSIGNER[0] = 9 }, attestation.ErrMRSIGNERNotAllowed},
		{"any measurement", func(r *attestation.Result, p *attestation.Policy) {
			r.MRENCLAVE[0], r.MRSIGNER[0] = 9, 9
			p.AllowedMRENCLAVE, p.AllowedMRSIGNER = nil, nil
		}, nil},
		{"status accepted", func(r *attestation.Result, _ *attestation.Policy) { r.TCBStatus = attestation.StatusSWHardeningNeeded }, nil},
		{"status rejected", func(r *attestation.Result, _ *attestation.Policy) { r.TCBStatus = attestation.StatusOutOfDate }, attestation.ErrTCBStatus},
		{"revoked rejected", func(r *attestation.Result, _ *attestation.Policy) { r.TCBStatus = attestation.StatusRevoked }, attestation.ErrTCBStatus},
		{"too old", func(r *attestation.Result, _ *attestation.Policy) { r.Timestamp = at.Add(-24*time.Hour - time.Second) }, attestation.ErrTooOld},
		{"exactly max age", func(r *attestation.Result, _ *attestation.Policy) { r.Timestamp = at.Add(-24 * time.Hour) }, nil},
		{"future", func(r *attestation.Result, _ *attestation.Policy) { r.Timestamp = at.Add(time.Second) }, attestation.ErrFromFuture},
		{"dcap ignores age", func(r *attestation.Result, _ *attestation.Policy) {
			r.Kind = attestation.KindDCAP
			r.Timestamp = at.Add(-48 * time.Hour)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, p := good, base
			tt.mutate(&r, &p)
			err := p.Check(&r, at)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestZeroPolicyAcceptsNothing(t *testing.T) {
	var p attestation.Policy
	r := attestation.Result{TCBStatus: attestation.StatusUpToDate}
	if err := p.Check(&r, time.Now()); !errors.Is(err, attestation.ErrTCBStatus) {
		t.Fatalf("zero policy: %v, want ErrTCBStatus", err)
	}
}

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCert(t *testing.T, subject string, parent *ca, isCA bool, key *ecdsa.PrivateKey, notAfter time.Time) *ca {
	t.Helper()
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: subject},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{c, key}
}

func TestVerifyChain(t *testing.T) {
	far := time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	root := newCert(t, "root", nil, true, nil, far)
	// A re-issue of the root: same subject and key, different validity and bytes.
	reissued := newCert(t, "root", nil, true, root.key, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	inter := newCert(t, "inter", root, true, nil, far)
	leaf := newCert(t, "leaf", inter, false, nil, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	other := newCert(t, "root", nil, true, nil, far)

	tests := []struct {
		name  string
		chain []*x509.Certificate
		roots []*x509.Certificate
		at    time.Time
		ok    bool
		want  error
	}{
		{"full chain", []*x509.Certificate{leaf.cert, inter.cert, root.cert}, []*x509.Certificate{root.cert}, at, true, nil},
		{"without root", []*x509.Certificate{leaf.cert, inter.cert}, []*x509.Certificate{root.cert}, at, true, nil},
		{"re-issued root anchors", []*x509.Certificate{leaf.cert, inter.cert, root.cert}, []*x509.Certificate{reissued.cert}, at, true, nil},
		{"wrong root", []*x509.Certificate{leaf.cert, inter.cert, root.cert}, []*x509.Certificate{other.cert}, at, false, attestation.ErrUntrustedRoot},
		{"self-signed in chain is not trusted", []*x509.Certificate{leaf.cert, inter.cert, other.cert}, []*x509.Certificate{other.cert}, at, false, attestation.ErrUntrustedRoot},
		{"no roots", []*x509.Certificate{leaf.cert, inter.cert}, nil, at, false, attestation.ErrUntrustedRoot},
		{"expired leaf", []*x509.Certificate{leaf.cert, inter.cert}, []*x509.Certificate{root.cert}, far.Add(-time.Hour), false, nil},
		{"before validity", []*x509.Certificate{leaf.cert, inter.cert}, []*x509.Certificate{root.cert}, time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), false, nil},
		{"missing intermediate", []*x509.Certificate{leaf.cert}, []*x509.Certificate{root.cert}, at, false, attestation.ErrUntrustedRoot},
		{"empty", nil, []*x509.Certificate{root.cert}, at, false, nil},
		{"re-issued root alone", []*x509.Certificate{reissued.cert}, []*x509.Certificate{root.cert}, at, true, nil},
		{"re-issued root alone, expired", []*x509.Certificate{reissued.cert}, []*x509.Certificate{root.cert}, time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), false, nil},
		{"foreign root alone", []*x509.Certificate{other.cert}, []*x509.Certificate{root.cert}, at, false, attestation.ErrUntrustedRoot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, err := attestation.VerifyChain(tt.chain, tt.roots, tt.at)
			if tt.ok {
				if err != nil {
					t.Fatalf("VerifyChain: %v", err)
				}
				if !path[len(path)-1].PublicKey.(*ecdsa.PublicKey).Equal(&root.key.PublicKey) {
					t.Fatalf("unexpected path of %d certificates", len(path))
				}
				return
			}
			if err == nil {
				t.Fatal("VerifyChain accepted an invalid chain")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("VerifyChain = %v, want %v", err, tt.want)
			}
		})
	}
}

// The real Intel SGX Root CA anchors the real TCB signing certificate, and
// only inside its validity.
func TestVerifyChainIntel(t *testing.T) {
	root := readPEM(t, "intel-roots/Intel_SGX_Root_CA.pem")
	signing2018 := readPEM(t, "intel-roots/Intel_SGX_TCB_Signing_2018-05-21_to_2025-05-21.pem")
	signing2025 := readPEM(t, "intel-roots/Intel_SGX_TCB_Signing_2025-05-06_to_2032-05-06.pem")
	roots := []*x509.Certificate{root}
	if _, err := attestation.VerifyChain([]*x509.Certificate{signing2018}, roots, time.Date(2022, 12, 21, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatalf("2018 signing cert in 2022: %v", err)
	}
	if _, err := attestation.VerifyChain([]*x509.Certificate{signing2018}, roots, time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Fatal("2018 signing cert accepted after it expired")
	}
	if _, err := attestation.VerifyChain([]*x509.Certificate{signing2025}, roots, time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatalf("2025 signing cert in 2025: %v", err)
	}
}

func readPEM(t *testing.T, rel string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(testvectors.Read(t, rel))
	if b == nil {
		t.Fatalf("%s: no PEM block", rel)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
