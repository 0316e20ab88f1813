package ratls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"math/big"
	"testing"
	"time"
)

func header(version, typ uint32, size uint64) []byte {
	h := make([]byte, 16)
	binary.LittleEndian.PutUint32(h[0:], version)
	binary.LittleEndian.PutUint32(h[4:], typ)
	binary.LittleEndian.PutUint64(h[8:], size)
	return h
}

func TestParseExtension(t *testing.T) {
	quote := []byte("a quote")
	tests := []struct {
		name string
		ext  []byte
		ok   bool
	}{
		{"valid", append(header(1, 2, 7), quote...), true},
		{"empty", nil, false},
		{"short header", header(1, 2, 0)[:15], false},
		{"header only", header(1, 2, 0), false},
		{"version 2", append(header(2, 2, 7), quote...), false},
		{"local report", append(header(1, 1, 7), quote...), false},
		{"size too small", append(header(1, 2, 6), quote...), false},
		{"size too large", append(header(1, 2, 8), quote...), false},
		{"size overflows int", append(header(1, 2, 1<<63), quote...), false},
		{"size beyond limit", append(header(1, 2, maxQuoteLen+1), make([]byte, maxQuoteLen+1)...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ParseExtension(tt.ext)
			if tt.ok {
				if err != nil || !bytes.Equal(q, quote) {
					t.Fatalf("ParseExtension = %q, %v", q, err)
				}
				return
			}
			if !errors.Is(err, ErrMalformedExtension) {
				t.Fatalf("err = %v, want ErrMalformedExtension", err)
			}
		})
	}
}

// TestExtensionRoundTrip: the echeck extension is exactly what
// MarshalExtension produces for its quote.
func TestExtensionRoundTrip(t *testing.T) {
	cert := readCert(t, "echeck/sample.pem")
	for _, e := range cert.Extensions {
		if !e.Id.Equal(oidQuote) {
			continue
		}
		q, err := ParseExtension(e.Value)
		if err != nil {
			t.Fatal(err)
		}
		if len(q) != 4600 {
			t.Errorf("quote %d bytes, want 4600", len(q))
		}
		back, err := MarshalExtension(q)
		if err != nil || !bytes.Equal(back, e.Value) {
			t.Fatalf("round trip differs: %v", err)
		}
		return
	}
	t.Fatal("no quote extension in echeck/sample.pem")
}

func TestMarshalExtensionBounds(t *testing.T) {
	for _, n := range []int{0, maxQuoteLen + 1} {
		if _, err := MarshalExtension(make([]byte, n)); !errors.Is(err, ErrMalformedExtension) {
			t.Errorf("quote of %d bytes: %v", n, err)
		}
	}
}

// TestKeyBindingSim builds certificates around sim quotes by hand, so the
// binding check is tested apart from NewCertificate.
func TestKeyBindingSim(t *testing.T) {
	e := newSimEnv(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	good := ReportData(spki)
	trailing := good
	trailing[63] = 1
	var otherKey [64]byte
	copy(otherKey[:], good[:32])
	otherKey[0] ^= 1

	tests := []struct {
		name string
		rd   [64]byte
		want error
	}{
		{"bound", good, nil},
		{"nonzero second half", trailing, ErrKeyBinding},
		{"other key hash", otherKey, ErrKeyBinding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := e.a.Quote(tt.rd)
			if err != nil {
				t.Fatal(err)
			}
			ext, err := MarshalExtension(q)
			if err != nil {
				t.Fatal(err)
			}
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "hand-made"},
				NotBefore: simTime.Add(-time.Hour), NotAfter: simTime.Add(time.Hour),
				ExtraExtensions: []pkix.Extension{{Id: oidQuote, Value: ext}},
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.verifier(measurementA).VerifyCertificate(cert)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzParseExtension(f *testing.F) {
	f.Add(append(header(1, 2, 3), 1, 2, 3))
	f.Add(header(1, 2, 0))
	f.Add([]byte{})
	cert := readCert(f, "echeck/sample2.pem")
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidQuote) {
			f.Add(e.Value)
		}
	}
	f.Fuzz(func(t *testing.T, ext []byte) {
		q, err := ParseExtension(ext)
		if err != nil {
			if !errors.Is(err, ErrMalformedExtension) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		back, err := MarshalExtension(q)
		if err != nil || !bytes.Equal(back, ext) {
			t.Fatalf("accepted extension does not round-trip: %v", err)
		}
	})
}

// FuzzVerifyCertificate: no certificate, however malformed its
// attestation, makes the verifier panic or accept.
func FuzzVerifyCertificate(f *testing.F) {
	for _, name := range []string{"echeck/sample.pem", "integritee-pallets/legacy-ias-2020/test_ra_cert_MRSIGNER3_MRENCLAVE2.der"} {
		f.Add(readCert(f, name).Raw)
	}
	v := intelVerifier(f, echeckTime)
	f.Fuzz(func(t *testing.T, der []byte) {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		res, err := v.VerifyCertificate(cert)
		if err == nil && res == nil {
			t.Fatal("nil result without error")
		}
		if err == nil && !bytes.Equal(der, readCert(t, "echeck/sample.pem").Raw) {
			// Only the unmodified genuine certificate verifies at this time.
			t.Fatalf("modified certificate accepted")
		}
	})
}

func BenchmarkVerifyEcheck(b *testing.B) {
	v := intelVerifier(b, echeckTime)
	cert := readCert(b, "echeck/sample.pem")
	for b.Loop() {
		if _, err := v.VerifyCertificate(cert); err != nil {
			b.Fatal(err)
		}
	}
}
