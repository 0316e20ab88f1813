package gramine_test

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation/dcap"
	"github.com/integritee-go/integritee/tee/gramine"
	"github.com/integritee-go/integritee/tee/sim"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeTree lays out what Gramine exposes under /dev/attestation. The quote
// file is fixed content: unlike Gramine it does not react to report data.
type fakeTree struct {
	dir       string
	mrenclave [32]byte
	sealKey   [16]byte
}

func newFakeTree(t *testing.T, attestationType string, quote []byte) *fakeTree {
	t.Helper()
	f := &fakeTree{dir: t.TempDir()}
	for i := range f.mrenclave {
		f.mrenclave[i] = byte(0xa0 + i)
	}
	for i := range f.sealKey {
		f.sealKey[i] = byte(i)
	}
	ti := make([]byte, 512)
	copy(ti, f.mrenclave[:])
	ti[32] = 0x05 // attributes follow MRENCLAVE; must not leak into it
	f.write(t, "attestation_type", []byte(attestationType))
	f.write(t, "user_report_data", nil)
	f.write(t, "my_target_info", ti)
	f.write(t, "keys/_sgx_mrenclave", f.sealKey[:])
	f.write(t, "quote", quote)
	return f
}

func (f *fakeTree) write(t *testing.T, name string, b []byte) {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeTree) remove(t *testing.T, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(f.dir, name)); err != nil {
		t.Fatal(err)
	}
}

// simQuote returns a real-format quote over reportData for measurement m,
// the PKI it is rooted in, and the PKI itself.
func simQuote(t testing.TB, m [32]byte, reportData [64]byte) ([]byte, *sim.PKI) {
	t.Helper()
	pki, err := sim.NewPKI([]byte(sim.DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}
	b, err := sim.New(sim.Config{PKI: pki, Measurement: &m})
	if err != nil {
		t.Fatal(err)
	}
	q, err := b.Quote(reportData)
	if err != nil {
		t.Fatal(err)
	}
	return q, pki
}

func reportData(s string) [64]byte {
	var rd [64]byte
	copy(rd[:], s)
	return rd
}

func TestQuote(t *testing.T) {
	rd := reportData("gramine quote test")
	f := newFakeTree(t, "dcap", nil)
	q, pki := simQuote(t, f.mrenclave, rd)
	f.write(t, "quote", q)

	b, err := gramine.New(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Quote(rd)
	if err != nil {
		t.Fatalf("Quote: %v", err)
	}
	if !bytes.Equal(got, q) {
		t.Fatal("Quote did not return the quote file's bytes")
	}
	written, err := os.ReadFile(filepath.Join(f.dir, "user_report_data"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(written, rd[:]) {
		t.Fatalf("user_report_data = %x, want %x", written, rd)
	}

	col, err := pki.Collateral(t0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := dcap.Verify(got, dcap.Options{Roots: []*x509.Certificate{pki.Root()}, Collateral: col, Time: t0})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.ReportData != rd {
		t.Errorf("ReportData = %x, want %x", res.ReportData, rd)
	}
	if res.MRENCLAVE != b.Measurement() {
		t.Errorf("MRENCLAVE = %x, want %x", res.MRENCLAVE, b.Measurement())
	}
}

func TestQuoteErrors(t *testing.T) {
	rd := reportData("requested")
	var m [32]byte
	good, _ := simQuote(t, m, rd)
	other, _ := simQuote(t, m, reportData("another request"))
	tdx := bytes.Clone(good)
	tdx[4] = 0x81 // TEE type TDX

	tests := []struct {
		name    string
		typ     string
		quote   []byte
		setup   func(t *testing.T, f *fakeTree)
		wantErr error
	}{
		{name: "attestation none", typ: "none", quote: good, wantErr: gramine.ErrNoAttestation},
		{name: "attestation none newline", typ: "none\n", quote: good, wantErr: gramine.ErrNoAttestation},
		{name: "attestation epid", typ: "epid", quote: good, wantErr: gramine.ErrUnsupportedAttestation},
		{name: "attestation type missing", typ: "dcap", quote: good, wantErr: fs.ErrNotExist,
			setup: func(t *testing.T, f *fakeTree) { f.remove(t, "attestation_type") }},
		{name: "user_report_data missing", typ: "dcap", quote: good, wantErr: fs.ErrNotExist,
			setup: func(t *testing.T, f *fakeTree) { f.remove(t, "user_report_data") }},
		{name: "quote missing", typ: "dcap", quote: good, wantErr: fs.ErrNotExist,
			setup: func(t *testing.T, f *fakeTree) { f.remove(t, "quote") }},
		{name: "quote of another request", typ: "dcap", quote: other, wantErr: gramine.ErrReportDataMismatch},
		{name: "quote empty", typ: "dcap", quote: nil, wantErr: gramine.ErrMalformed},
		{name: "quote short", typ: "dcap", quote: good[:431], wantErr: gramine.ErrMalformed},
		{name: "quote not SGX", typ: "dcap", quote: tdx, wantErr: gramine.ErrMalformed},
		{name: "quote too large", typ: "dcap", quote: make([]byte, 1<<20+1), wantErr: gramine.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTree(t, tt.typ, tt.quote)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			b, err := gramine.New(f.dir)
			if err != nil {
				t.Fatal(err)
			}
			q, err := b.Quote(rd)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Quote error = %v, want %v", err, tt.wantErr)
			}
			if q != nil {
				t.Error("Quote returned bytes with an error")
			}
		})
	}
}

// Quote calls from many goroutines must not interleave their write and read.
// The fake cannot tell interleavings apart; this runs under -race to check
// that the backend itself is free of data races.
func TestQuoteConcurrent(t *testing.T) {
	rd := reportData("concurrent")
	f := newFakeTree(t, "dcap", nil)
	q, _ := simQuote(t, f.mrenclave, rd)
	f.write(t, "quote", q)
	b, err := gramine.New(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := b.Quote(rd); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestMeasurement(t *testing.T) {
	f := newFakeTree(t, "dcap", nil)
	b, err := gramine.New(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Measurement(); got != f.mrenclave {
		t.Fatalf("Measurement = %x, want %x", got, f.mrenclave)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name       string
		targetInfo []byte // nil: remove the file
		wantErr    error
	}{
		{"missing", nil, fs.ErrNotExist},
		{"empty", []byte{}, gramine.ErrMalformed},
		{"short", make([]byte, 511), gramine.ErrMalformed},
		{"long", make([]byte, 513), gramine.ErrMalformed},
		{"huge", make([]byte, 10000), gramine.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTree(t, "dcap", nil)
			if tt.targetInfo == nil {
				f.remove(t, "my_target_info")
			} else {
				f.write(t, "my_target_info", tt.targetInfo)
			}
			if _, err := gramine.New(f.dir); !errors.Is(err, tt.wantErr) {
				t.Fatalf("New error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if _, err := gramine.New(filepath.Join(t.TempDir(), "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("New on a missing directory: error = %v, want fs.ErrNotExist", err)
	}
}

func TestSealingKey(t *testing.T) {
	f := newFakeTree(t, "none", nil) // sealing works without remote attestation
	b, err := gramine.New(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	k1, err := b.SealingKey("state")
	if err != nil {
		t.Fatal(err)
	}
	want, err := hkdf.Key(sha256.New, f.sealKey[:], nil, "state", 32)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, want) {
		t.Fatalf("SealingKey = %x, want HKDF-SHA256(mrenclave key, info=label) = %x", k1, want)
	}

	// Same enclave after a restart: same key.
	b2, err := gramine.New(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := b2.SealingKey("state")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Error("same enclave, same label: keys differ")
	}
	k3, err := b.SealingKey("shielding")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(k1, k3) {
		t.Error("different labels: same key")
	}
	// Another enclave gets another EGETKEY key from Gramine.
	f.write(t, "keys/_sgx_mrenclave", bytes.Repeat([]byte{0xee}, 16))
	k4, err := b.SealingKey("state")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(k1, k4) {
		t.Error("different enclave keys: same sealing key")
	}
}

func TestSealingKeyErrors(t *testing.T) {
	tests := []struct {
		name    string
		key     []byte // nil: remove the file
		wantErr error
	}{
		{"missing", nil, fs.ErrNotExist},
		{"empty", []byte{}, gramine.ErrMalformed},
		{"short", make([]byte, 15), gramine.ErrMalformed},
		{"long", make([]byte, 32), gramine.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTree(t, "dcap", nil)
			b, err := gramine.New(f.dir)
			if err != nil {
				t.Fatal(err)
			}
			if tt.key == nil {
				f.remove(t, "keys/_sgx_mrenclave")
			} else {
				f.write(t, "keys/_sgx_mrenclave", tt.key)
			}
			k, err := b.SealingKey("state")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("SealingKey error = %v, want %v", err, tt.wantErr)
			}
			if k != nil {
				t.Error("SealingKey returned a key with an error")
			}
		})
	}
}

// FuzzQuoteFile feeds arbitrary quote file contents through Quote: it must
// return the bytes or an error, never panic.
func FuzzQuoteFile(f *testing.F) {
	var m [32]byte
	rd := reportData("fuzz")
	q, _ := simQuote(f, m, rd)
	f.Add(q)
	f.Add(q[:432])
	f.Add([]byte{})
	dir := f.TempDir()
	tree := &fakeTree{dir: dir}
	ti := make([]byte, 512)
	for name, b := range map[string][]byte{"attestation_type": []byte("dcap"), "user_report_data": nil, "my_target_info": ti} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	b, err := gramine.New(tree.dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, quote []byte) {
		if err := os.WriteFile(filepath.Join(dir, "quote"), quote, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := b.Quote(rd)
		if err == nil && !bytes.Equal(got, quote) {
			t.Fatal("Quote returned other bytes than the quote file")
		}
		if err == nil && !bytes.Equal(got[368:432], rd[:]) {
			t.Fatal("Quote accepted a quote without the report data")
		}
	})
}
