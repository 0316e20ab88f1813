package dcap

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"testing"
)

func TestParsePCKExtensionsVectors(t *testing.T) {
	tests := []struct {
		quote   string
		fmspc   string
		pceSVN  uint16
		comps   [16]uint8
		cpuSVN  string
		ppid    string // "" when not asserted
		sgxType int
		// exact is set for processor-CA certificates, whose extension holds
		// only the fields Extension encodes: re-encoding must give the same
		// bytes.
		exact bool
	}{
		{
			quote: "integritee-pallets/ra_dcap_dump_quote.ra", fmspc: "00906ea10000", pceSVN: 11,
			comps: [16]uint8{0x11, 0x11, 2, 4, 1, 0x80, 7}, cpuSVN: "11110204018007000000000000000000",
			ppid: "b3de4306e92a3010d0272ac41f8a13c4", exact: true,
		},
		{
			quote: "dcap-qvl/sgx_quote", fmspc: "00a067110000", pceSVN: 13,
			comps: [16]uint8{11, 11, 2, 2, 255, 1}, cpuSVN: "0b0b0202ff0100000000000000000000", exact: true,
		},
		{
			quote: "fortanix-pcs/quote.bin", fmspc: "00906ea10000", pceSVN: 10,
			comps: [16]uint8{14, 14, 2, 4, 1, 128, 7}, cpuSVN: "0e0e0204018007000000000000000000", exact: true,
		},
		{
			quote: "oasis-core/pcs/quote_v3_ecdsa_p256_pck_chain.bin", fmspc: "00606a000000", pceSVN: 13,
			comps: [16]uint8{7, 9, 3, 3, 255, 255, 1}, cpuSVN: "07090303ffff01000000000000000000", sgxType: 1,
		},
		{
			quote: "automata-dcap-attestation/quotes/quotev3.hex", fmspc: "00606a000000", pceSVN: 13,
			comps: [16]uint8{14, 14, 3, 3, 255, 255, 1}, sgxType: 1,
		},
		{
			quote: "go-tdx-guest/quote_v5_sample.dat", fmspc: "90c06f000000", pceSVN: 13,
			comps: [16]uint8{4, 4, 2, 2, 4, 1, 0, 5}, sgxType: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.quote, func(t *testing.T) {
			q, err := ParseQuote(readQuote(t, tt.quote))
			if err != nil {
				t.Fatal(err)
			}
			leaf := q.PCKChain[0]
			e, err := ParsePCKExtensions(leaf)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.FMSPC[:]; !bytes.Equal(got, mustHex(t, tt.fmspc)) {
				t.Errorf("FMSPC = %x, want %s", got, tt.fmspc)
			}
			if e.PCESVN != tt.pceSVN || e.CompSVN != tt.comps || e.SGXType != tt.sgxType || e.PCEID != [2]byte{} {
				t.Errorf("got PCESVN %d comps %v SGX type %d PCEID %x", e.PCESVN, e.CompSVN, e.SGXType, e.PCEID)
			}
			// The CPUSVN of Intel's PCK certificates equals the component SVNs.
			if !bytes.Equal(e.CPUSVN[:], e.CompSVN[:]) {
				t.Errorf("CPUSVN %x != comps %x", e.CPUSVN, e.CompSVN)
			}
			if tt.cpuSVN != "" && !bytes.Equal(e.CPUSVN[:], mustHex(t, tt.cpuSVN)) {
				t.Errorf("CPUSVN = %x, want %s", e.CPUSVN, tt.cpuSVN)
			}
			if tt.ppid != "" && !bytes.Equal(e.PPID[:], mustHex(t, tt.ppid)) {
				t.Errorf("PPID = %x, want %s", e.PPID, tt.ppid)
			}

			ext, err := e.Extension()
			if err != nil {
				t.Fatal(err)
			}
			if tt.exact {
				var orig []byte
				for _, x := range leaf.Extensions {
					if x.Id.Equal(oidSGXExtension) {
						orig = x.Value
					}
				}
				if !bytes.Equal(ext.Value, orig) {
					t.Errorf("re-encoded extension differs from Intel's:\n got %x\nwant %x", ext.Value, orig)
				}
			}
			back, err := ParsePCKExtensions(&x509.Certificate{Extensions: []pkix.Extension{ext}})
			if err != nil {
				t.Fatal(err)
			}
			if *back != *e {
				t.Errorf("round trip = %+v, want %+v", back, e)
			}
		})
	}
}

func TestParsePCKExtensionsErrors(t *testing.T) {
	good := PCKExtensions{PCESVN: 1, FMSPC: [6]byte{1}}
	goodExt, err := good.Extension()
	if err != nil {
		t.Fatal(err)
	}
	// Build variants of the extension by dropping or duplicating entries.
	var entries []extEntry
	if _, err := asn1.Unmarshal(goodExt.Value, &entries); err != nil {
		t.Fatal(err)
	}
	enc := func(es []extEntry) []byte {
		b, err := asn1.Marshal(es)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	entryOf := func(id asn1.ObjectIdentifier, v any) extEntry {
		e, err := entry(id, v)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	unknown := entryOf(asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 6}, []byte{1, 2, 3})
	tests := []struct {
		name  string
		value []byte
		ok    bool
	}{
		{"good", goodExt.Value, true},
		{"unknown sub-OID ignored", enc(append(append([]extEntry{}, entries...), unknown)), true},
		{"missing FMSPC", enc(append(append([]extEntry{}, entries[:3]...), entries[4])), false},
		{"duplicate PPID", enc(append([]extEntry{entries[0]}, entries...)), false},
		{"short FMSPC", enc([]extEntry{entries[0], entries[1], entries[2], entryOf(oidFMSPC, []byte{1, 2}), entries[4]}), false},
		{"FMSPC as integer", enc([]extEntry{entries[0], entries[1], entries[2], entryOf(oidFMSPC, 5), entries[4]}), false},
		{"SGX type out of range", enc([]extEntry{entries[0], entries[1], entries[2], entries[3], entryOf(oidSGXType, asn1.Enumerated(7))}), false},
		{"TCB not a sequence", enc([]extEntry{entries[0], entryOf(oidTCB, 3), entries[2], entries[3], entries[4]}), false},
		{"trailing garbage", append(append([]byte{}, goodExt.Value...), 0), false},
		{"empty", nil, false},
		{"not DER", []byte{0x30, 0x80, 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &x509.Certificate{Extensions: []pkix.Extension{{Id: oidSGXExtension, Value: tt.value}}}
			_, err := ParsePCKExtensions(c)
			if tt.ok && err != nil {
				t.Fatalf("err = %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrPCKExtension) {
				t.Fatalf("err = %v, want ErrPCKExtension", err)
			}
		})
	}
	if _, err := ParsePCKExtensions(&x509.Certificate{}); !errors.Is(err, ErrPCKExtension) {
		t.Errorf("no extension: err = %v", err)
	}
}

func TestPCKExtensionTCBErrors(t *testing.T) {
	e := PCKExtensions{CompSVN: [16]uint8{1, 2, 3}, PCESVN: 300}
	ext, err := e.Extension()
	if err != nil {
		t.Fatal(err)
	}
	var top []extEntry
	if _, err := asn1.Unmarshal(ext.Value, &top); err != nil {
		t.Fatal(err)
	}
	var tcb []extEntry
	if _, err := asn1.Unmarshal(top[1].Value.FullBytes, &tcb); err != nil {
		t.Fatal(err)
	}
	withTCB := func(es []extEntry) *x509.Certificate {
		tb, err := asn1.Marshal(es)
		if err != nil {
			t.Fatal(err)
		}
		top2 := append([]extEntry{}, top...)
		top2[1] = extEntry{ID: oidTCB, Value: asn1.RawValue{FullBytes: tb}}
		v, err := asn1.Marshal(top2)
		if err != nil {
			t.Fatal(err)
		}
		return &x509.Certificate{Extensions: []pkix.Extension{{Id: oidSGXExtension, Value: v}}}
	}
	big, _ := entry(tcb[0].ID, 256)
	neg, _ := entry(tcb[0].ID, -1)
	tests := []struct {
		name string
		tcb  []extEntry
	}{
		{"component missing", tcb[1:]},
		{"component duplicate", append([]extEntry{tcb[0]}, tcb...)},
		{"component 256", append([]extEntry{big}, tcb[1:]...)},
		{"component negative", append([]extEntry{neg}, tcb[1:]...)},
		{"CPUSVN missing", tcb[:17]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParsePCKExtensions(withTCB(tt.tcb)); !errors.Is(err, ErrPCKExtension) {
				t.Fatalf("err = %v, want ErrPCKExtension", err)
			}
		})
	}
	got, err := ParsePCKExtensions(withTCB(tcb))
	if err != nil || got.PCESVN != 300 || got.CompSVN != e.CompSVN {
		t.Fatalf("unmodified: %+v, %v", got, err)
	}
}
