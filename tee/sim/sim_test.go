package sim_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/dcap"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/internal/testvectors"
	"github.com/integritee-go/integritee/tee/sim"
)

// t0 is the fixed verification time; collateral is made for it.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newPKI(t testing.TB, seed string) *sim.PKI {
	t.Helper()
	p, err := sim.NewPKI([]byte(seed))
	if err != nil {
		t.Fatalf("NewPKI: %v", err)
	}
	return p
}

// writeBinary writes a stand-in enclave binary and returns its path and hash.
func writeBinary(t testing.TB, content string) (string, [32]byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "integritee-enclave")
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p, sha256.Sum256([]byte(content))
}

func newBackend(t testing.TB, cfg sim.Config) *sim.Backend {
	t.Helper()
	b, err := sim.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

func collateral(t testing.TB, p *sim.PKI, at time.Time) *pcs.Collateral {
	t.Helper()
	c, err := p.Collateral(at)
	if err != nil {
		t.Fatalf("Collateral: %v", err)
	}
	return c
}

func reportData(s string) [64]byte {
	var rd [64]byte
	copy(rd[:], s)
	return rd
}

func TestQuoteVerifies(t *testing.T) {
	pki := newPKI(t, sim.DefaultSeed)
	bin, mrenclave := writeBinary(t, "enclave v1")
	mrsigner := sha256.Sum256([]byte("signer"))
	b := newBackend(t, sim.Config{PKI: pki, EnclaveBinary: bin, MRSIGNER: mrsigner, ISVProdID: 3, ISVSVN: 9})
	if b.Measurement() != mrenclave {
		t.Fatalf("Measurement = %x, want sha256 of the binary %x", b.Measurement(), mrenclave)
	}
	rd := reportData("bound to this report data")
	quote, err := b.Quote(rd)
	if err != nil {
		t.Fatalf("Quote: %v", err)
	}

	tests := []struct {
		name                string
		collateralAt, verAt time.Time
	}{
		{"at t0", t0, t0},
		{"collateral 29 days old", t0, t0.Add(29 * 24 * time.Hour)},
		{"collateral just issued", t0, t0.Add(-time.Hour)},
		{"a year later", t0.AddDate(1, 0, 0), t0.AddDate(1, 0, 0)},
		{"in 2090", time.Date(2090, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2090, 1, 2, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := dcap.Verify(quote, dcap.Options{
				Roots:      []*x509.Certificate{pki.Root()},
				Collateral: collateral(t, pki, tt.collateralAt),
				Time:       tt.verAt,
			})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.Kind != attestation.KindDCAP {
				t.Errorf("Kind = %q", res.Kind)
			}
			if res.MRENCLAVE != mrenclave {
				t.Errorf("MRENCLAVE = %x, want %x", res.MRENCLAVE, mrenclave)
			}
			if res.MRSIGNER != mrsigner {
				t.Errorf("MRSIGNER = %x, want %x", res.MRSIGNER, mrsigner)
			}
			if res.ISVProdID != 3 || res.ISVSVN != 9 {
				t.Errorf("ISVProdID, ISVSVN = %d, %d, want 3, 9", res.ISVProdID, res.ISVSVN)
			}
			if res.ReportData != rd {
				t.Errorf("ReportData = %x, want %x", res.ReportData, rd)
			}
			if res.Debug() {
				t.Error("non-debug enclave reported as debug")
			}
			if want := [16]byte{0: 0x05, 8: 0x03}; res.Attributes != want {
				t.Errorf("Attributes = %x, want %x", res.Attributes, want)
			}
			if res.TCBStatus != attestation.StatusUpToDate {
				t.Errorf("TCBStatus = %q, want UpToDate", res.TCBStatus)
			}
			if res.QETCBStatus != attestation.StatusUpToDate {
				t.Errorf("QETCBStatus = %q, want UpToDate", res.QETCBStatus)
			}
			if len(res.AdvisoryIDs) != 0 {
				t.Errorf("AdvisoryIDs = %v, want none", res.AdvisoryIDs)
			}
		})
	}
}

func TestQuoteRejected(t *testing.T) {
	pki := newPKI(t, sim.DefaultSeed)
	m := sha256.Sum256([]byte("enclave"))
	b := newBackend(t, sim.Config{PKI: pki, Measurement: &m})
	rd := reportData("report data")
	quote, err := b.Quote(rd)
	if err != nil {
		t.Fatal(err)
	}
	intelRoot := parsePEMCert(t, testvectors.Read(t, "intel-roots/Intel_SGX_Root_CA.pem"))
	otherPKI := newPKI(t, "another dev seed, also public")
	revoked, err := pki.CollateralWith(t0, sim.CollateralOptions{RevokePCK: true})
	if err != nil {
		t.Fatal(err)
	}

	flipped := func(off int) []byte {
		q := bytes.Clone(quote)
		q[off] ^= 0x01
		return q
	}
	const reportDataOff = 48 + 320
	tests := []struct {
		name       string
		quote      []byte
		roots      []*x509.Certificate
		collateral *pcs.Collateral
		at         time.Time
		wantErr    []error
	}{
		{name: "report data byte 0 flipped", quote: flipped(reportDataOff),
			wantErr: []error{dcap.ErrQuoteSignature}},
		{name: "report data byte 63 flipped", quote: flipped(reportDataOff + 63),
			wantErr: []error{dcap.ErrQuoteSignature}},
		{name: "MRENCLAVE flipped", quote: flipped(48 + 64),
			wantErr: []error{dcap.ErrQuoteSignature}},
		{name: "Intel root", roots: []*x509.Certificate{intelRoot},
			wantErr: []error{dcap.ErrPCKChain, attestation.ErrUntrustedRoot}},
		{name: "another dev root", roots: []*x509.Certificate{otherPKI.Root()},
			wantErr: []error{dcap.ErrPCKChain, attestation.ErrUntrustedRoot}},
		{name: "collateral of another dev PKI", collateral: collateral(t, otherPKI, t0),
			wantErr: []error{attestation.ErrUntrustedRoot}},
		{name: "collateral expired", at: t0.Add(31 * 24 * time.Hour),
			wantErr: []error{pcs.ErrExpired}},
		{name: "collateral not yet issued", at: t0.Add(-2 * time.Hour),
			wantErr: []error{pcs.ErrNotYetValid}},
		{name: "PCK revoked", collateral: revoked,
			wantErr: []error{dcap.ErrRevocation, pcs.ErrRevoked}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := dcap.Options{Roots: []*x509.Certificate{pki.Root()}, Collateral: collateral(t, pki, t0), Time: t0}
			q := quote
			if tt.quote != nil {
				q = tt.quote
			}
			if tt.roots != nil {
				opts.Roots = tt.roots
			}
			if tt.collateral != nil {
				opts.Collateral = tt.collateral
			}
			if !tt.at.IsZero() {
				opts.Time = tt.at
			}
			res, err := dcap.Verify(q, opts)
			if err == nil {
				t.Fatalf("Verify accepted: %+v", res)
			}
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("Verify error = %v, want %v", err, want)
				}
			}
		})
	}
}

func parsePEMCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Quote must be safe for concurrent use; run under -race.
func TestQuoteConcurrent(t *testing.T) {
	pki := newPKI(t, sim.DefaultSeed)
	var m [32]byte
	b := newBackend(t, sim.Config{PKI: pki, Measurement: &m})
	col := collateral(t, pki, t0)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			rd := reportData(fmt.Sprint("request ", i))
			q, err := b.Quote(rd)
			if err != nil {
				t.Error(err)
				return
			}
			res, err := dcap.Verify(q, dcap.Options{Roots: []*x509.Certificate{pki.Root()}, Collateral: col, Time: t0})
			if err != nil {
				t.Error(err)
				return
			}
			if res.ReportData != rd {
				t.Errorf("request %d: got report data %q", i, res.ReportData)
			}
		})
	}
	wg.Wait()
}

func TestDebugEnclave(t *testing.T) {
	pki := newPKI(t, sim.DefaultSeed)
	var m [32]byte
	b := newBackend(t, sim.Config{PKI: pki, Measurement: &m, Debug: true})
	q, err := b.Quote([64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := dcap.Verify(q, dcap.Options{Roots: []*x509.Certificate{pki.Root()}, Collateral: collateral(t, pki, t0), Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Debug() {
		t.Errorf("debug enclave not reported as debug: attributes %x", res.Attributes)
	}
	p := attestation.Policy{DCAPRoots: []*x509.Certificate{pki.Root()}, AcceptedTCBStatuses: []attestation.TCBStatus{attestation.StatusUpToDate}}
	if err := p.Check(res, t0); !errors.Is(err, attestation.ErrDebugEnclave) {
		t.Errorf("Policy.Check = %v, want ErrDebugEnclave", err)
	}
}

func TestCollateralStatus(t *testing.T) {
	pki := newPKI(t, sim.DefaultSeed)
	var m [32]byte
	q, err := newBackend(t, sim.Config{PKI: pki, Measurement: &m}).Quote([64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	statuses := []attestation.TCBStatus{
		attestation.StatusUpToDate,
		attestation.StatusSWHardeningNeeded,
		attestation.StatusConfigurationNeeded,
		attestation.StatusConfigurationAndSWHardeningNeeded,
		attestation.StatusOutOfDate,
		attestation.StatusOutOfDateConfigurationNeeded,
	}
	for _, s := range statuses {
		t.Run(string(s), func(t *testing.T) {
			col, err := pki.CollateralWith(t0, sim.CollateralOptions{TCBStatus: s})
			if err != nil {
				t.Fatal(err)
			}
			if got := col.TCBInfo.Info.Levels[0].Status; got != s {
				t.Fatalf("first TCB level status = %q, want %q", got, s)
			}
			res, err := dcap.Verify(q, dcap.Options{Roots: []*x509.Certificate{pki.Root()}, Collateral: col, Time: t0})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.TCBStatus != s {
				t.Errorf("TCBStatus = %q, want %q", res.TCBStatus, s)
			}
			wantAdvisories := s != attestation.StatusUpToDate
			if got := len(res.AdvisoryIDs) > 0; got != wantAdvisories {
				t.Errorf("AdvisoryIDs = %v, want some: %v", res.AdvisoryIDs, wantAdvisories)
			}
		})
	}
	t.Run("Revoked", func(t *testing.T) {
		col, err := pki.CollateralWith(t0, sim.CollateralOptions{TCBStatus: attestation.StatusRevoked})
		if err != nil {
			t.Fatal(err)
		}
		res, err := dcap.Verify(q, dcap.Options{Roots: []*x509.Certificate{pki.Root()}, Collateral: col, Time: t0})
		// A verifier may reject a revoked TCB outright or report it; it must
		// never call it anything else.
		if err == nil && res.TCBStatus != attestation.StatusRevoked {
			t.Errorf("TCBStatus = %q, want Revoked or an error", res.TCBStatus)
		}
	})
	if _, err := pki.CollateralWith(t0, sim.CollateralOptions{TCBStatus: "Great"}); err == nil {
		t.Error("CollateralWith accepted an unknown status")
	}
}

func TestCollateralContent(t *testing.T) {
	pki := newPKI(t, sim.DefaultSeed)
	col := collateral(t, pki, t0)
	if err := col.Verify([]*x509.Certificate{pki.Root()}, t0); err != nil {
		t.Fatalf("Collateral.Verify: %v", err)
	}
	if col.PCKCRL == nil || col.RootCRL == nil {
		t.Fatal("collateral without CRLs: the revocation path would go unexercised")
	}
	if len(col.PCKCRL.List.RevokedCertificateEntries) != 0 || len(col.RootCRL.List.RevokedCertificateEntries) != 0 {
		t.Error("default collateral revokes something")
	}
	if err := col.CheckRevocation(pki.PCKChain()); err != nil {
		t.Errorf("CheckRevocation: %v", err)
	}
	info := col.TCBInfo.Info
	if info.ID != pcs.IDSGX || info.Version != 3 {
		t.Errorf("TCB info id, version = %q, %d, want SGX, 3", info.ID, info.Version)
	}
	if !info.IssueDate.Equal(t0.Add(-time.Hour)) || !info.NextUpdate.Equal(t0.Add(30*24*time.Hour)) {
		t.Errorf("TCB info issued %s, next update %s", info.IssueDate, info.NextUpdate)
	}
	if len(info.Levels) != 2 || info.Levels[1].Status != attestation.StatusOutOfDate {
		t.Errorf("TCB levels = %+v, want UpToDate then OutOfDate", info.Levels)
	}
	ext, err := dcap.ParsePCKExtensions(pki.PCKChain()[0])
	if err != nil {
		t.Fatal(err)
	}
	lvl, err := info.Evaluate(ext.FMSPC, ext.PCEID, ext.CompSVN, ext.PCESVN)
	if err != nil {
		t.Fatal(err)
	}
	if lvl.Status != attestation.StatusUpToDate {
		t.Errorf("dev PCK evaluates to %q, want UpToDate", lvl.Status)
	}
	qe := col.QEIdentity.Identity
	if qe.ID != pcs.IDQE || qe.Version != 2 || qe.ISVProdID != 1 {
		t.Errorf("QE identity id, version, prod ID = %q, %d, %d, want QE, 2, 1", qe.ID, qe.Version, qe.ISVProdID)
	}
}

func TestCollateralValidFor(t *testing.T) {
	pki := newPKI(t, sim.DefaultSeed)
	tenYears := 10 * 365 * 24 * time.Hour
	col, err := pki.CollateralWith(t0, sim.CollateralOptions{ValidFor: tenYears})
	if err != nil {
		t.Fatal(err)
	}
	if !col.TCBInfo.Info.NextUpdate.Equal(t0.Add(tenYears)) || !col.QEIdentity.Identity.NextUpdate.Equal(t0.Add(tenYears)) {
		t.Fatalf("next update %s, want %s", col.TCBInfo.Info.NextUpdate, t0.Add(tenYears))
	}
	roots := []*x509.Certificate{pki.Root()}
	if err := col.Verify(roots, t0.Add(tenYears-time.Second)); err != nil {
		t.Errorf("valid collateral rejected before its end: %v", err)
	}
	if err := col.Verify(roots, t0.Add(tenYears)); !errors.Is(err, pcs.ErrExpired) {
		t.Errorf("collateral at its next update: %v, want ErrExpired", err)
	}
	if _, err := pki.CollateralWith(t0, sim.CollateralOptions{ValidFor: -time.Hour}); err == nil {
		t.Error("negative validity accepted")
	}
}

func TestSealingKey(t *testing.T) {
	pki := newPKI(t, sim.DefaultSeed)
	binA, _ := writeBinary(t, "enclave A")
	binA2, _ := writeBinary(t, "enclave A") // same content, another path
	binB, _ := writeBinary(t, "enclave B")

	key := func(cfg sim.Config, label string) []byte {
		t.Helper()
		k, err := newBackend(t, cfg).SealingKey(label)
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != 32 {
			t.Fatalf("key length %d, want 32", len(k))
		}
		return k
	}
	ref := key(sim.Config{PKI: pki, EnclaveBinary: binA}, "state")
	tests := []struct {
		name  string
		cfg   sim.Config
		label string
		same  bool
	}{
		{"restart", sim.Config{PKI: pki, EnclaveBinary: binA}, "state", true},
		{"same binary elsewhere", sim.Config{PKI: pki, EnclaveBinary: binA2}, "state", true},
		{"same PKI from seed", sim.Config{PKI: newPKI(t, sim.DefaultSeed), EnclaveBinary: binA}, "state", true},
		{"default PKI", sim.Config{EnclaveBinary: binA}, "state", true},
		{"MRSIGNER does not matter", sim.Config{PKI: pki, EnclaveBinary: binA, MRSIGNER: [32]byte{1}}, "state", true},
		{"other label", sim.Config{PKI: pki, EnclaveBinary: binA}, "shielding", false},
		{"other binary", sim.Config{PKI: pki, EnclaveBinary: binB}, "state", false},
		{"other seed", sim.Config{PKI: newPKI(t, "a different dev seed"), EnclaveBinary: binA}, "state", false},
		{"explicit secret", sim.Config{PKI: pki, EnclaveBinary: binA, SealingSecret: []byte("machine secret")}, "state", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bytes.Equal(key(tt.cfg, tt.label), ref); got != tt.same {
				t.Errorf("same key = %v, want %v", got, tt.same)
			}
		})
	}
	// An explicit secret is stable too, and still bound to the enclave.
	s := []byte("machine secret")
	if !bytes.Equal(key(sim.Config{EnclaveBinary: binA, SealingSecret: s}, "x"), key(sim.Config{PKI: pki, EnclaveBinary: binA, SealingSecret: s}, "x")) {
		t.Error("explicit secret: keys differ across restarts")
	}
	if bytes.Equal(key(sim.Config{EnclaveBinary: binA, SealingSecret: s}, "x"), key(sim.Config{EnclaveBinary: binB, SealingSecret: s}, "x")) {
		t.Error("explicit secret: two enclaves share a key")
	}
}

func TestNewErrors(t *testing.T) {
	var m [32]byte
	bin, _ := writeBinary(t, "enclave")
	tests := []struct {
		name    string
		cfg     sim.Config
		wantErr error
	}{
		{"no measurement", sim.Config{}, sim.ErrConfig},
		{"both measurements", sim.Config{EnclaveBinary: bin, Measurement: &m}, sim.ErrConfig},
		{"missing binary", sim.Config{EnclaveBinary: filepath.Join(t.TempDir(), "absent")}, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sim.New(tt.cfg); !errors.Is(err, tt.wantErr) {
				t.Fatalf("New error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestPKIDeterministic(t *testing.T) {
	a, b := newPKI(t, sim.DefaultSeed), newPKI(t, sim.DefaultSeed)
	other := newPKI(t, "another seed of enough length")

	ca, cb := a.PCKChain(), b.PCKChain()
	ca, cb = append(ca, a.TCBSigningChain()[0]), append(cb, b.TCBSigningChain()[0])
	for i := range ca {
		if !bytes.Equal(ca[i].RawSubjectPublicKeyInfo, cb[i].RawSubjectPublicKeyInfo) {
			t.Errorf("%s: keys differ for the same seed", ca[i].Subject.CommonName)
		}
		if ca[i].SerialNumber.Cmp(cb[i].SerialNumber) != 0 || !bytes.Equal(ca[i].RawTBSCertificate, cb[i].RawTBSCertificate) {
			t.Errorf("%s: certificate contents differ for the same seed", ca[i].Subject.CommonName)
		}
	}
	if a.Root().PublicKey.(*ecdsa.PublicKey).Equal(other.Root().PublicKey) {
		t.Error("different seeds give the same root key")
	}
	wantCN := []string{sim.PCKCommonName, sim.PCKCACommonName, sim.RootCommonName, sim.TCBSigningCommonName}
	for i, c := range ca {
		if c.Subject.CommonName != wantCN[i] {
			t.Errorf("certificate %d: CN %q, want %q", i, c.Subject.CommonName, wantCN[i])
		}
	}
	// The hierarchy verifies with the anchoring the verifiers use, for the
	// whole validity window.
	for _, at := range []time.Time{t0, time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), time.Date(2099, 12, 30, 0, 0, 0, 0, time.UTC)} {
		if _, err := attestation.VerifyChain(a.PCKChain(), []*x509.Certificate{b.Root()}, at); err != nil {
			t.Errorf("PCK chain at %s: %v", at, err)
		}
		if _, err := attestation.VerifyChain(a.TCBSigningChain(), []*x509.Certificate{b.Root()}, at); err != nil {
			t.Errorf("TCB signing chain at %s: %v", at, err)
		}
	}
	if _, err := sim.NewPKI([]byte("short")); err == nil {
		t.Error("NewPKI accepted a 5-byte seed")
	}
}

func TestPCKExtensions(t *testing.T) {
	pki := newPKI(t, sim.DefaultSeed)
	ext, err := dcap.ParsePCKExtensions(pki.PCKChain()[0])
	if err != nil {
		t.Fatalf("ParsePCKExtensions: %v", err)
	}
	col := collateral(t, pki, t0)
	if ext.FMSPC != col.TCBInfo.Info.FMSPC || ext.PCEID != col.TCBInfo.Info.PCEID {
		t.Errorf("PCK FMSPC/PCEID %x/%x, collateral %x/%x", ext.FMSPC, ext.PCEID, col.TCBInfo.Info.FMSPC, col.TCBInfo.Info.PCEID)
	}
	if ext.PPID == [16]byte{} {
		t.Error("PPID is zero")
	}
	if other := newPKI(t, "another seed of enough length"); mustExt(t, other).PPID == ext.PPID {
		t.Error("two seeds share a PPID")
	}
}

func mustExt(t *testing.T, p *sim.PKI) *dcap.PCKExtensions {
	t.Helper()
	ext, err := dcap.ParsePCKExtensions(p.PCKChain()[0])
	if err != nil {
		t.Fatal(err)
	}
	return ext
}

func TestLoadPKI(t *testing.T) {
	orig := newPKI(t, "seed for the files test")
	dir := filepath.Join(t.TempDir(), "pki")
	if err := orig.WriteFiles(dir); err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}
	for _, name := range []string{sim.RootKeyFile, sim.PCKCAKeyFile, sim.PCKKeyFile, sim.TCBSigningKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	loaded, err := sim.LoadPKI(dir)
	if err != nil {
		t.Fatalf("LoadPKI: %v", err)
	}
	if !loaded.Root().Equal(orig.Root()) {
		t.Error("loaded root differs")
	}
	for i, c := range loaded.PCKChain() {
		if !c.Equal(orig.PCKChain()[i]) {
			t.Errorf("loaded PCK chain certificate %d differs", i)
		}
	}

	// A loaded PKI behaves as the original: quotes verify under the original
	// root, and sealing keys and collateral match.
	var m [32]byte
	bo := newBackend(t, sim.Config{PKI: orig, Measurement: &m})
	bl := newBackend(t, sim.Config{PKI: loaded, Measurement: &m})
	q, err := bl.Quote(reportData("loaded"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dcap.Verify(q, dcap.Options{Roots: []*x509.Certificate{orig.Root()}, Collateral: collateral(t, loaded, t0), Time: t0}); err != nil {
		t.Fatalf("quote of the loaded PKI: %v", err)
	}
	ko, _ := bo.SealingKey("s")
	kl, _ := bl.SealingKey("s")
	if !bytes.Equal(ko, kl) {
		t.Error("loaded PKI derives other sealing keys")
	}

	// Rewriting over existing files tightens key modes.
	if err := os.Chmod(filepath.Join(dir, sim.RootKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := orig.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, sim.RootKeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("rewritten key mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestLoadPKIErrors(t *testing.T) {
	a := newPKI(t, "seed A for load errors")
	b := newPKI(t, "seed B for load errors")
	tests := []struct {
		name    string
		mangle  func(t *testing.T, dir, other string)
		wantErr error
	}{
		{"missing file", func(t *testing.T, dir, _ string) {
			remove(t, filepath.Join(dir, sim.PCKCertFile))
		}, fs.ErrNotExist},
		{"key of another PKI", func(t *testing.T, dir, other string) {
			copyFile(t, filepath.Join(other, sim.PCKKeyFile), filepath.Join(dir, sim.PCKKeyFile))
		}, sim.ErrInvalidPKI},
		{"certificate of another PKI with its key", func(t *testing.T, dir, other string) {
			copyFile(t, filepath.Join(other, sim.PCKCACertFile), filepath.Join(dir, sim.PCKCACertFile))
			copyFile(t, filepath.Join(other, sim.PCKCAKeyFile), filepath.Join(dir, sim.PCKCAKeyFile))
		}, sim.ErrInvalidPKI},
		{"not PEM", func(t *testing.T, dir, _ string) {
			write(t, filepath.Join(dir, sim.RootCertFile), []byte("garbage"))
		}, sim.ErrInvalidPKI},
		{"key in the certificate file", func(t *testing.T, dir, _ string) {
			copyFile(t, filepath.Join(dir, sim.RootKeyFile), filepath.Join(dir, sim.RootCertFile))
		}, sim.ErrInvalidPKI},
		{"trailing data", func(t *testing.T, dir, _ string) {
			p := filepath.Join(dir, sim.RootCertFile)
			b, _ := os.ReadFile(p)
			write(t, p, append(b, b...))
		}, sim.ErrInvalidPKI},
		{"corrupt DER", func(t *testing.T, dir, _ string) {
			write(t, filepath.Join(dir, sim.TCBSigningCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x03, 1, 2, 3}}))
		}, sim.ErrInvalidPKI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, other := t.TempDir(), t.TempDir()
			if err := a.WriteFiles(dir); err != nil {
				t.Fatal(err)
			}
			if err := b.WriteFiles(other); err != nil {
				t.Fatal(err)
			}
			tt.mangle(t, dir, other)
			if _, err := sim.LoadPKI(dir); !errors.Is(err, tt.wantErr) {
				t.Fatalf("LoadPKI error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func remove(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	write(t, to, b)
}

func BenchmarkSimQuote(b *testing.B) {
	pki := newPKI(b, sim.DefaultSeed)
	var m [32]byte
	be := newBackend(b, sim.Config{PKI: pki, Measurement: &m})
	rd := reportData("bench")
	for b.Loop() {
		if _, err := be.Quote(rd); err != nil {
			b.Fatal(err)
		}
	}
}
