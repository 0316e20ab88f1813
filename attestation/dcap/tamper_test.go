package dcap

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"testing"
)

// v3 signature-data offsets.
const (
	offSigLen   = HeaderSize + ReportBodySize // 432
	offQuoteSig = offSigLen + 4               // 436
	offAK       = offQuoteSig + signatureSize // 500
	offQEReport = offAK + keySize             // 564
	offQESig    = offQEReport + ReportBodySize
	offAuthLen  = offQESig + signatureSize // 1012
	offAuth     = offAuthLen + 2
)

// region is a byte range of a v3 quote and the errors a flip inside it may
// give (any of them).
type region struct {
	name       string
	start, end int
	step       int
	mask       func(i int) byte
	want       []error
}

func v3Regions(raw []byte) []region {
	authLen := int(binary.LittleEndian.Uint16(raw[offAuthLen:]))
	offCert := offAuth + authLen
	bit := func(i int) byte { return 1 << (i % 8) }
	parse := []error{ErrMalformed, ErrTrailingBytes, ErrUnsupportedVersion, ErrUnsupportedKeyType, ErrUnsupportedTEE, ErrUnsupportedCertData}
	return []region{
		{"version, key type, TEE type", 0, 8, 1, bit, parse},
		{"header", 8, HeaderSize, 1, bit, []error{ErrQuoteSignature}},
		{"ISV report body", HeaderSize, offSigLen, 1, bit, []error{ErrQuoteSignature}},
		{"signature data length", offSigLen, offQuoteSig, 1, bit, parse},
		{"quote signature", offQuoteSig, offAK, 1, bit, []error{ErrQuoteSignature}},
		{"attestation key", offAK, offQEReport, 1, bit, []error{ErrAttestationKeyBinding}},
		{"QE report", offQEReport, offQESig, 1, bit, []error{ErrQEReportSignature}},
		{"QE report signature", offQESig, offAuthLen, 1, bit, []error{ErrQEReportSignature}},
		{"QE auth data length", offAuthLen, offAuth, 1, bit, parse},
		{"QE auth data", offAuth, offCert, 1, bit, []error{ErrAttestationKeyBinding}},
		{"certification data header", offCert, offCert + 6, 1, bit, parse},
		// Flipping every bit of a PEM byte makes it non-ASCII, so the chain
		// is certainly altered (a single-bit flip can hit base64 padding
		// bits that decode to the same certificate).
		{"PEM PCK chain", offCert + 6, len(raw), 47, func(int) byte { return 0xff }, append(parse, ErrPCKChain)},
	}
}

func TestTamperVectors(t *testing.T) {
	roots := []*x509.Certificate{intelRoot(t)}
	for _, v := range sgxVectors {
		if v.name == "phala" { // the same quote as dcap-qvl
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			raw := readQuote(t, v.quote)
			opts := Options{Roots: roots, Collateral: v.collateral(t), Time: mustTime(t, v.at)}
			if _, err := Verify(raw, opts); err != nil {
				t.Fatalf("untampered: %v", err)
			}
			for _, rg := range v3Regions(raw) {
				if testing.Short() && rg.step == 1 {
					rg.step = 7
				}
				n := 0
				for i := rg.start; i < rg.end; i += rg.step {
					b := bytes.Clone(raw)
					b[i] ^= rg.mask(i)
					_, err := Verify(b, opts)
					if !isAny(err, rg.want) {
						t.Errorf("%s: byte %d ^ %#02x: err = %v, want one of %v", rg.name, i, rg.mask(i), err, rg.want)
						if n++; n > 3 {
							break
						}
					}
				}
			}
		})
	}
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// withCertData returns the v3 quote raw with its certification data
// replaced.
func withCertData(raw []byte, typ uint16, data []byte) []byte {
	authLen := int(binary.LittleEndian.Uint16(raw[offAuthLen:]))
	out := bytes.Clone(raw[:offAuth+authLen])
	out = binary.LittleEndian.AppendUint16(out, typ)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
	out = append(out, data...)
	binary.LittleEndian.PutUint32(out[offSigLen:], uint32(len(out)-offQuoteSig))
	return out
}

func pemChain(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

func TestSwapPCKLeaf(t *testing.T) {
	roots := []*x509.Certificate{intelRoot(t)}
	raw := readQuote(t, "dcap-qvl/sgx_quote")
	q, err := ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Roots: roots, Collateral: qvlCollateral(t), Time: mustTime(t, "2025-07-19T10:01:17Z")}
	if _, err := Verify(withCertData(raw, certDataPCKChain, pemChain(q.PCKChain...)), opts); err != nil {
		t.Fatalf("re-encoded chain: %v", err)
	}
	leafOf := func(name string) *x509.Certificate {
		o, err := ParseQuote(readQuote(t, name))
		if err != nil {
			t.Fatal(err)
		}
		return o.PCKChain[0]
	}
	tests := []struct {
		name  string
		chain []*x509.Certificate
		want  error
	}{
		// Another Processor CA platform: the chain holds, its key did not
		// sign this QE report.
		{"integritee leaf", []*x509.Certificate{leafOf("integritee-pallets/ra_dcap_dump_quote.ra"), q.PCKChain[1], q.PCKChain[2]}, ErrQEReportSignature},
		{"fortanix leaf", []*x509.Certificate{leafOf("fortanix-pcs/quote.bin"), q.PCKChain[1], q.PCKChain[2]}, ErrQEReportSignature},
		// A Platform CA leaf does not chain through the Processor CA.
		{"oasis leaf", []*x509.Certificate{leafOf("oasis-core/pcs/quote_v3_ecdsa_p256_pck_chain.bin"), q.PCKChain[1], q.PCKChain[2]}, ErrPCKChain},
		{"leaf only", []*x509.Certificate{q.PCKChain[0]}, ErrPCKChain},
		{"intermediate as leaf", []*x509.Certificate{q.PCKChain[1], q.PCKChain[2]}, ErrQEReportSignature},
		{"root alone", []*x509.Certificate{q.PCKChain[2]}, ErrPCKChain},
		{"extra unrelated certificate", []*x509.Certificate{q.PCKChain[0], q.PCKChain[1], leafOf("fortanix-pcs/quote.bin"), q.PCKChain[2]}, ErrPCKChain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(withCertData(raw, certDataPCKChain, pemChain(tt.chain...)), opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestParseQuoteMalformed edits real quotes structurally.
func TestParseQuoteMalformed(t *testing.T) {
	raw := readQuote(t, "dcap-qvl/sgx_quote")
	q, err := ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	chain := pemChain(q.PCKChain...)
	set16 := func(off int, v uint16) []byte {
		b := bytes.Clone(raw)
		binary.LittleEndian.PutUint16(b[off:], v)
		return b
	}
	set32 := func(off int, v uint32) []byte {
		b := bytes.Clone(raw)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"header only", raw[:HeaderSize], ErrMalformed},
		{"no signature data length", raw[:offSigLen], ErrMalformed},
		{"truncated by one", raw[:len(raw)-1], ErrMalformed},
		{"one trailing byte", append(bytes.Clone(raw), 0), ErrTrailingBytes},
		{"version 2", set16(0, 2), ErrUnsupportedVersion},
		{"version 6", set16(0, 6), ErrUnsupportedVersion},
		{"key type 3 (ECDSA-384)", set16(2, 3), ErrUnsupportedKeyType},
		{"TDX TEE type in v3", set32(4, TEETypeTDX), ErrUnsupportedTEE},
		{"signature data length huge", set32(offSigLen, 0xffffffff), ErrMalformed},
		{"signature data length short", set32(offSigLen, uint32(len(raw)-offQuoteSig-1)), ErrTrailingBytes},
		{"auth data length past end", set16(offAuthLen, 0xffff), ErrMalformed},
		{"cert type 3", withCertData(raw, certDataPPIDRSA3072, make([]byte, 398)), ErrUnsupportedCertData},
		{"cert type 6 in v3", withCertData(raw, certDataQEReport, chain), ErrUnsupportedCertData},
		{"cert data length short", func() []byte {
			b := withCertData(raw, certDataPCKChain, chain)
			off := len(b) - len(chain) - 4
			binary.LittleEndian.PutUint32(b[off:], uint32(len(chain)-1))
			return b
		}(), ErrTrailingBytes},
		{"empty chain", withCertData(raw, certDataPCKChain, nil), ErrMalformed},
		{"only NULs", withCertData(raw, certDataPCKChain, []byte{0, 0}), ErrMalformed},
		{"garbage after chain", withCertData(raw, certDataPCKChain, append(bytes.Clone(chain), 'x')), ErrMalformed},
		{"text before chain", withCertData(raw, certDataPCKChain, append([]byte("hello\n"), chain...)), ErrMalformed},
		{"private key block", withCertData(raw, certDataPCKChain, append(bytes.Clone(chain), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})...)), ErrMalformed},
		{"bad certificate DER", withCertData(raw, certDataPCKChain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}})), ErrMalformed},
		{"nine certificates", withCertData(raw, certDataPCKChain, bytes.Repeat(pemChain(q.PCKChain[0]), 9)), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseQuote(tt.b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// NUL and whitespace after the chain are Intel's quoting library's
	// habit, not an error.
	q2, err := ParseQuote(withCertData(raw, certDataPCKChain, append(bytes.Clone(chain), "\n\x00"...)))
	if err != nil || len(q2.PCKChain) != 3 {
		t.Fatalf("chain with trailing NUL: %v", err)
	}
}

// TestParseQuoteTruncations cuts a real quote of each version at every
// length: each must fail cleanly and never panic.
func TestParseQuoteTruncations(t *testing.T) {
	for _, name := range []string{"dcap-qvl/sgx_quote", "oasis-core/pcs/quote_v4_tdx_ecdsa_p256.bin", "go-tdx-guest/quote_v5_sample.dat"} {
		raw := readQuote(t, name)
		for n := range len(raw) {
			if _, err := ParseQuote(raw[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s[:%d]: err = %v, want ErrMalformed", name, n, err)
			}
		}
		if _, err := ParseQuote(raw); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestReportBodyRoundTrip(t *testing.T) {
	for _, name := range []string{"dcap-qvl/sgx_quote", "fortanix-pcs/quote.bin", "integritee-pallets/ra_dcap_dump_quote.ra"} {
		raw := readQuote(t, name)
		for _, off := range []int{HeaderSize, offQEReport} {
			r, err := ParseReportBody(raw[off : off+ReportBodySize])
			if err != nil {
				t.Fatal(err)
			}
			b, err := r.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, raw[off:off+ReportBodySize]) {
				t.Errorf("%s@%d: MarshalBinary differs", name, off)
			}
		}
		h := parseHeader(raw)
		hb, _ := h.MarshalBinary()
		if !bytes.Equal(hb, raw[:HeaderSize]) {
			t.Errorf("%s: header MarshalBinary differs", name)
		}
	}
	// Reserved bytes survive a round trip too.
	in := bytes.Repeat([]byte{0xa5}, ReportBodySize)
	r, err := ParseReportBody(in)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := r.MarshalBinary(); !bytes.Equal(in, out) {
		t.Error("reserved bytes lost")
	}
	for _, n := range []int{0, 383, 385} {
		if _, err := ParseReportBody(make([]byte, n)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes: err = %v", n, err)
		}
	}
}

func ExampleParseQuote() {
	// A quote as a Gramine enclave reads it from /dev/attestation/quote.
	var quote []byte
	q, err := ParseQuote(quote)
	if err != nil {
		fmt.Println(errors.Is(err, ErrMalformed))
		return
	}
	fmt.Printf("%x\n", q.Body.MRENCLAVE)
	// Output: true
}

// TestParseSGXv4v5 re-wraps a real v3 quote's parts as SGX v4 and v5
// quotes (no real ones exist): they must parse, and the QE checks must pass
// while the quote signature, made over a v3 header, must not.
func TestParseSGXv4v5(t *testing.T) {
	raw := readQuote(t, "dcap-qvl/sgx_quote")
	v3, err := ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	authLen := int(binary.LittleEndian.Uint16(raw[offAuthLen:]))
	qeBlock := raw[offQEReport : offAuth+authLen] // QE report, signature, auth data
	certBlock := raw[offAuth+authLen:]            // type 5 certification data
	inner := append(bytes.Clone(qeBlock), certBlock...)
	sd := bytes.Clone(raw[offQuoteSig:offQEReport]) // quote signature, attestation key
	sd = binary.LittleEndian.AppendUint16(sd, certDataQEReport)
	sd = binary.LittleEndian.AppendUint32(sd, uint32(len(inner)))
	sd = append(sd, inner...)

	header := func(version uint16) []byte {
		h := bytes.Clone(raw[:HeaderSize])
		binary.LittleEndian.PutUint16(h, version)
		return h
	}
	v4 := append(header(4), raw[HeaderSize:offSigLen]...)
	v5 := binary.LittleEndian.AppendUint16(header(5), bodyTypeSGX)
	v5 = binary.LittleEndian.AppendUint32(v5, ReportBodySize)
	v5 = append(v5, raw[HeaderSize:offSigLen]...)
	for _, tt := range []struct {
		name string
		b    []byte
	}{{"v4", v4}, {"v5", v5}} {
		t.Run(tt.name, func(t *testing.T) {
			b := binary.LittleEndian.AppendUint32(bytes.Clone(tt.b), uint32(len(sd)))
			b = append(b, sd...)
			q, err := ParseQuote(b)
			if err != nil {
				t.Fatal(err)
			}
			if q.Body == nil || *q.Body != *v3.Body || q.QEReport != v3.QEReport || len(q.PCKChain) != 3 || q.TD != nil {
				t.Fatal("parts differ from the v3 quote")
			}
			_, err = VerifySignatures(q, []*x509.Certificate{intelRoot(t)}, mustTime(t, "2025-07-19T10:01:17Z"))
			if !errors.Is(err, ErrQuoteSignature) {
				t.Fatalf("err = %v, want ErrQuoteSignature", err)
			}
			// Type 6 must be consumed exactly: one more byte inside it.
			b2 := binary.LittleEndian.AppendUint32(bytes.Clone(tt.b), uint32(len(sd)+1))
			b2 = append(b2, sd...)
			b2 = append(b2, 0)
			off := len(tt.b) + 4 + 128 + 2
			binary.LittleEndian.PutUint32(b2[off:], uint32(len(inner)+1))
			if _, err := ParseQuote(b2); !errors.Is(err, ErrTrailingBytes) {
				t.Errorf("byte after type 5 inside type 6: err = %v, want ErrTrailingBytes", err)
			}
			// A v4 quote must use type 6.
			b3 := bytes.Clone(b)
			binary.LittleEndian.PutUint16(b3[off-2:], certDataPCKChain)
			if _, err := ParseQuote(b3); !errors.Is(err, ErrUnsupportedCertData) {
				t.Errorf("type 5 at top level: err = %v, want ErrUnsupportedCertData", err)
			}
		})
	}
	// v5 body descriptors must agree with the header.
	bad := []struct {
		name     string
		typ      uint16
		size     uint32
		tee      uint32
		wantType error
	}{
		{"SGX body with TDX header", bodyTypeSGX, ReportBodySize, TEETypeTDX, ErrMalformed},
		{"wrong SGX body size", bodyTypeSGX, ReportBodySize + 1, TEETypeSGX, ErrMalformed},
		{"unknown body type", 9, ReportBodySize, TEETypeSGX, ErrMalformed},
		{"unknown TEE", bodyTypeSGX, ReportBodySize, 0x42, ErrUnsupportedTEE},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(v5)
			binary.LittleEndian.PutUint32(b[4:], tt.tee)
			binary.LittleEndian.PutUint16(b[HeaderSize:], tt.typ)
			binary.LittleEndian.PutUint32(b[HeaderSize+2:], tt.size)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(sd)))
			b = append(b, sd...)
			if _, err := ParseQuote(b); !errors.Is(err, tt.wantType) {
				t.Fatalf("err = %v, want %v", err, tt.wantType)
			}
		})
	}
	h4 := append(header(4), raw[HeaderSize:]...)
	binary.LittleEndian.PutUint32(h4[4:], 0x42)
	if _, err := ParseQuote(h4); !errors.Is(err, ErrUnsupportedTEE) {
		t.Errorf("v4 unknown TEE: err = %v", err)
	}
}
