package ratls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/attestation/roots"
	"github.com/integritee-go/integritee/internal/testvectors"
	"github.com/integritee-go/integritee/tee/sim"
)

// echeckTime is the time SOURCES.md gives for the echeck certificates with
// the dcap-qvl collateral.
var echeckTime = time.Date(2025, 7, 19, 10, 1, 17, 0, time.UTC)

// simTime is the fixed time of the sim-backend tests.
var simTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func allStatuses() []attestation.TCBStatus {
	return []attestation.TCBStatus{
		attestation.StatusUpToDate, attestation.StatusSWHardeningNeeded,
		attestation.StatusConfigurationNeeded, attestation.StatusConfigurationAndSWHardeningNeeded,
		attestation.StatusOutOfDate, attestation.StatusOutOfDateConfigurationNeeded, attestation.StatusRevoked,
	}
}

func mustHex32(tb testing.TB, s string) [32]byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		tb.Fatalf("bad hex32 %q", s)
	}
	return [32]byte(b)
}

// readCert reads a PEM or DER certificate vector.
func readCert(tb testing.TB, rel string) *x509.Certificate {
	tb.Helper()
	b := testvectors.Read(tb, rel)
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		tb.Fatalf("parse %s: %v", rel, err)
	}
	return c
}

func qvlCollateral(tb testing.TB) *pcs.Collateral {
	tb.Helper()
	c, err := pcs.ParseQVLCollateral(testvectors.Read(tb, "dcap-qvl/sgx_quote_collateral.json"))
	if err != nil {
		tb.Fatalf("parse dcap-qvl collateral: %v", err)
	}
	return c
}

// intelVerifier verifies against Intel's roots and the dcap-qvl collateral
// at at, admitting any verified enclave unless the caller narrows Policy.
func intelVerifier(tb testing.TB, at time.Time) *Verifier {
	return &Verifier{
		Policy: attestation.Policy{
			DCAPRoots:           roots.DCAP(),
			IASRoots:            roots.IAS(),
			AllowDebug:          true,
			AcceptedTCBStatuses: allStatuses(),
		},
		Collateral: StaticCollateral(qvlCollateral(tb)),
		Now:        fixed(at),
	}
}

// selfSigned makes a certificate with the given extra extensions, valid
// around simTime (or echeckTime: a wide window covering both).
func selfSigned(tb testing.TB, exts ...pkix.Extension) (*x509.Certificate, *ecdsa.PrivateKey) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(1),
		Subject:         pkix.Name{CommonName: "test"},
		NotBefore:       time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:        time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		ExtraExtensions: exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c, key
}

// simEnv is a dev PKI with two enclaves on it.
type simEnv struct {
	pki  *sim.PKI
	col  *pcs.Collateral
	a, b *sim.Backend
}

var (
	measurementA = sha256.Sum256([]byte("ratls test enclave A"))
	measurementB = sha256.Sum256([]byte("ratls test enclave B"))
	measurementC = sha256.Sum256([]byte("ratls test enclave C"))
)

func newSimEnv(tb testing.TB) *simEnv {
	tb.Helper()
	pki, err := sim.NewPKI([]byte("ratls test seed, not a secret"))
	if err != nil {
		tb.Fatal(err)
	}
	col, err := pki.Collateral(simTime)
	if err != nil {
		tb.Fatal(err)
	}
	e := &simEnv{pki: pki, col: col}
	for _, x := range []struct {
		dst **sim.Backend
		m   [32]byte
	}{{&e.a, measurementA}, {&e.b, measurementB}} {
		m := x.m
		if *x.dst, err = sim.New(sim.Config{PKI: pki, Measurement: &m}); err != nil {
			tb.Fatal(err)
		}
	}
	return e
}

// verifier trusts the dev root and admits the listed measurements.
func (e *simEnv) verifier(allowed ...[32]byte) *Verifier {
	return &Verifier{
		Policy: attestation.Policy{
			DCAPRoots:           []*x509.Certificate{e.pki.Root()},
			AllowedMRENCLAVE:    allowed,
			AcceptedTCBStatuses: []attestation.TCBStatus{attestation.StatusUpToDate},
		},
		Collateral: StaticCollateral(e.col),
		Now:        fixed(simTime),
	}
}
