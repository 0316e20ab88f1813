package ias

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/internal/testvectors"
)

func TestParseQuoteOffsets(t *testing.T) {
	b := make([]byte, QuoteBodySize)
	le := binary.LittleEndian
	le.PutUint16(b[0:], 2)
	le.PutUint16(b[2:], 1)
	le.PutUint32(b[4:], 0x0c14)
	le.PutUint16(b[8:], 0x0b)
	le.PutUint16(b[10:], 0x0a)
	le.PutUint32(b[12:], 0xdeadbeef)
	fill := func(off, n int, v byte) {
		for i := range n {
			b[off+i] = v + byte(i)
		}
	}
	fill(16, 32, 0x10)   // basename
	fill(48+0, 16, 0x20) // CPUSVN
	le.PutUint32(b[48+16:], 0x01020304)
	fill(48+48, 16, 0x30)  // ATTRIBUTES
	fill(48+64, 32, 0x40)  // MRENCLAVE
	fill(48+128, 32, 0x60) // MRSIGNER
	le.PutUint16(b[48+256:], 0x1234)
	le.PutUint16(b[48+258:], 0x5678)
	fill(48+320, 64, 0x80) // REPORTDATA

	q, err := ParseQuote(b)
	if err != nil {
		t.Fatal(err)
	}
	h := q.Header
	if h.Version != 2 || h.SignType != 1 || h.EPIDGroupID != 0x0c14 || h.QESVN != 0x0b || h.PCESVN != 0x0a || h.XEID != 0xdeadbeef {
		t.Errorf("header = %+v", h)
	}
	check := func(name string, got []byte, off int) {
		t.Helper()
		if !bytes.Equal(got, b[off:off+len(got)]) {
			t.Errorf("%s = %x, want bytes at %d", name, got, off)
		}
	}
	body := q.Body
	check("basename", h.Basename[:], 16)
	check("CPUSVN", body.CPUSVN[:], 48)
	check("ATTRIBUTES", body.Attributes[:], 48+48)
	check("MRENCLAVE", body.MRENCLAVE[:], 48+64)
	check("MRSIGNER", body.MRSIGNER[:], 48+128)
	check("REPORTDATA", body.ReportData[:], 48+320)
	if body.MiscSelect != 0x01020304 || body.ISVProdID != 0x1234 || body.ISVSVN != 0x5678 {
		t.Errorf("MISCSELECT/ISVPRODID/ISVSVN = %#x/%#x/%#x", body.MiscSelect, body.ISVProdID, body.ISVSVN)
	}
	for _, n := range []int{0, 431, 433, 436} {
		if _, err := ParseQuote(make([]byte, n)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseQuote(%d bytes): err = %v, want ErrMalformed", n, err)
		}
	}
}

func TestParseReport(t *testing.T) {
	r, err := ParseReport(synthReport(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "123456789" || r.Version != 4 || r.QuoteStatus != "OK" || r.Nonce != "n0nce" ||
		r.EPIDPseudonym != "pseudo" || !slices.Equal(r.AdvisoryIDs, []string{"INTEL-SA-00334"}) ||
		!bytes.Equal(r.QuoteBody, synthQuote()) {
		t.Errorf("report = %+v", r)
	}
	want := time.Date(2024, 3, 1, 12, 0, 0, 123456000, time.UTC)
	if !r.Timestamp.Equal(want) || r.Timestamp.Location() != time.UTC {
		t.Errorf("Timestamp = %v, want %v", r.Timestamp, want)
	}

	ok := []struct {
		name string
		edit func(m map[string]any)
	}{
		{"version 3", func(m map[string]any) { m["version"] = 3 }},
		{"version 5", func(m map[string]any) { m["version"] = 5; m["tcbEvaluationDataNumber"] = 16 }},
		{"no fraction", func(m map[string]any) { m["timestamp"] = "2024-03-01T12:00:00" }},
		{"no optional fields", func(m map[string]any) {
			for _, k := range []string{"advisoryURL", "advisoryIDs", "nonce", "epidPseudonym"} {
				delete(m, k)
			}
		}},
		{"unknown field ignored", func(m map[string]any) { m["futureField"] = []int{1} }},
		{"unknown status parses", func(m map[string]any) { m["isvEnclaveQuoteStatus"] = "NEW_STATUS" }},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseReport(synthReport(t, tc.edit)); err != nil {
				t.Errorf("err = %v", err)
			}
		})
	}

	quote := synthQuote()
	bad := []struct {
		name string
		edit func(m map[string]any)
		raw  string // used instead of edit when set
	}{
		{name: "version 2", edit: func(m map[string]any) { m["version"] = 2 }},
		{name: "version 6", edit: func(m map[string]any) { m["version"] = 6 }},
		{name: "version string", edit: func(m map[string]any) { m["version"] = "4" }},
		{name: "version float", edit: func(m map[string]any) { m["version"] = 4.5 }},
		{name: "version null", edit: func(m map[string]any) { m["version"] = nil }},
		{name: "missing id", edit: func(m map[string]any) { delete(m, "id") }},
		{name: "empty id", edit: func(m map[string]any) { m["id"] = "" }},
		{name: "missing timestamp", edit: func(m map[string]any) { delete(m, "timestamp") }},
		{name: "missing version", edit: func(m map[string]any) { delete(m, "version") }},
		{name: "missing status", edit: func(m map[string]any) { delete(m, "isvEnclaveQuoteStatus") }},
		{name: "empty status", edit: func(m map[string]any) { m["isvEnclaveQuoteStatus"] = "" }},
		{name: "missing quote body", edit: func(m map[string]any) { delete(m, "isvEnclaveQuoteBody") }},
		{name: "timestamp with zone", edit: func(m map[string]any) { m["timestamp"] = "2024-03-01T12:00:00.123456Z" }},
		{name: "timestamp with offset", edit: func(m map[string]any) { m["timestamp"] = "2024-03-01T12:00:00.123456+01:00" }},
		{name: "timestamp date only", edit: func(m map[string]any) { m["timestamp"] = "2024-03-01" }},
		{name: "timestamp number", edit: func(m map[string]any) { m["timestamp"] = 1709294400 }},
		{name: "quote body 431 bytes", edit: func(m map[string]any) {
			m["isvEnclaveQuoteBody"] = base64.StdEncoding.EncodeToString(quote[:431])
		}},
		{name: "quote body 433 bytes", edit: func(m map[string]any) {
			m["isvEnclaveQuoteBody"] = base64.StdEncoding.EncodeToString(append(bytes.Clone(quote), 0))
		}},
		{name: "quote body not base64", edit: func(m map[string]any) { m["isvEnclaveQuoteBody"] = "!!!!" }},
		{name: "quote body unpadded", edit: func(m map[string]any) {
			m["isvEnclaveQuoteBody"] = base64.RawStdEncoding.EncodeToString(quote[:431])
		}},
		{name: "quote body URL alphabet", edit: func(m map[string]any) {
			m["isvEnclaveQuoteBody"] = base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 216))
		}},
		{name: "quote body with line break", edit: func(m map[string]any) {
			s := base64.StdEncoding.EncodeToString(quote)
			m["isvEnclaveQuoteBody"] = s[:64] + "\n" + s[64:]
		}},
		{name: "advisoryIDs not a list", edit: func(m map[string]any) { m["advisoryIDs"] = "INTEL-SA-00334" }},
		{name: "advisoryIDs empty entry", edit: func(m map[string]any) { m["advisoryIDs"] = []string{""} }},
		{name: "nonce number", edit: func(m map[string]any) { m["nonce"] = 5 }},
		{name: "tcbEvaluationDataNumber string", edit: func(m map[string]any) { m["tcbEvaluationDataNumber"] = "16" }},
		{name: "differently cased key", edit: func(m map[string]any) {
			m["ISVENCLAVEQUOTESTATUS"] = m["isvEnclaveQuoteStatus"]
			delete(m, "isvEnclaveQuoteStatus")
		}},
		{name: "duplicate key", raw: `{"id":"1","id":"2"}`},
		{name: "duplicate status", raw: strings.Replace(string(synthReport(t, nil)), `"isvEnclaveQuoteStatus":"OK"`, `"isvEnclaveQuoteStatus":"GROUP_REVOKED","isvEnclaveQuoteStatus":"OK"`, 1)},
		{name: "trailing data", raw: string(synthReport(t, nil)) + `{}`},
		{name: "truncated", raw: string(synthReport(t, nil))[:100]},
		{name: "array", raw: `[1,2]`},
		{name: "string", raw: `"x"`},
		{name: "empty", raw: ``},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte(tc.raw)
			if tc.edit != nil {
				b = synthReport(t, tc.edit)
			}
			r, err := ParseReport(b)
			if !errors.Is(err, ErrMalformed) || r != nil {
				t.Errorf("ParseReport = %v, %v; want ErrMalformed", r, err)
			}
		})
	}
}

func TestMapStatus(t *testing.T) {
	tests := []struct {
		in   string
		want attestation.TCBStatus
	}{
		{"OK", attestation.StatusUpToDate},
		{"GROUP_OUT_OF_DATE", attestation.StatusOutOfDate},
		{"CONFIGURATION_NEEDED", attestation.StatusConfigurationNeeded},
		{"SW_HARDENING_NEEDED", attestation.StatusSWHardeningNeeded},
		{"CONFIGURATION_AND_SW_HARDENING_NEEDED", attestation.StatusConfigurationAndSWHardeningNeeded},
		{"GROUP_REVOKED", attestation.StatusRevoked},
		{"KEY_REVOKED", attestation.StatusRevoked},
		{"SIGNATURE_REVOKED", attestation.StatusRevoked},
		{"SIGNATURE_INVALID", ""},
		{"SIGRL_VERSION_MISMATCH", ""},
		{"ok", ""},
		{"", ""},
		{"UpToDate", ""},
	}
	for _, tc := range tests {
		got, err := MapStatus(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ErrQuoteStatus) {
				t.Errorf("MapStatus(%q) = %q, %v; want ErrQuoteStatus", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want || !got.Known() {
			t.Errorf("MapStatus(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestVerifySynthetic drives Verify with reports signed by a test PKI, for
// the statuses and shapes the real vectors do not cover.
func TestVerifySynthetic(t *testing.T) {
	pki := newTestPKI(t, x509.KeyUsageDigitalSignature)
	at := time.Date(2024, 3, 1, 12, 0, 1, 0, time.UTC)
	opts := Options{Roots: []*x509.Certificate{pki.root}, Time: at}
	status := func(s string) func(m map[string]any) {
		return func(m map[string]any) { m["isvEnclaveQuoteStatus"] = s }
	}

	tests := []struct {
		name   string
		edit   func(m map[string]any)
		want   attestation.TCBStatus
		errIs  error
		revoke bool
	}{
		{name: "OK", want: attestation.StatusUpToDate},
		{name: "GROUP_REVOKED", edit: status("GROUP_REVOKED"), want: attestation.StatusRevoked},
		{name: "KEY_REVOKED", edit: func(m map[string]any) { m["isvEnclaveQuoteStatus"] = "KEY_REVOKED"; m["revocationReason"] = 1 }, want: attestation.StatusRevoked},
		{name: "SIGNATURE_REVOKED", edit: status("SIGNATURE_REVOKED"), want: attestation.StatusRevoked},
		{name: "SIGNATURE_INVALID", edit: status("SIGNATURE_INVALID"), errIs: ErrQuoteStatus},
		{name: "SIGRL_VERSION_MISMATCH", edit: status("SIGRL_VERSION_MISMATCH"), errIs: ErrQuoteStatus},
		{name: "unknown status", edit: status("SOMETHING_NEW"), errIs: ErrQuoteStatus},
		{name: "future report", edit: func(m map[string]any) { m["timestamp"] = "2024-03-01T12:00:01.000001" }, errIs: attestation.ErrFromFuture},
		{name: "report at verification time", edit: func(m map[string]any) { m["timestamp"] = "2024-03-01T12:00:01" }, want: attestation.StatusUpToDate},
		{name: "signed but malformed", edit: func(m map[string]any) { m["version"] = 7 }, errIs: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verify(pki.evidence(t, synthReport(t, tc.edit)), opts)
			if tc.errIs != nil {
				if !errors.Is(err, tc.errIs) || res != nil {
					t.Fatalf("Verify = %v, %v; want %v", res, err, tc.errIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			q := synthQuote()[48:]
			if res.TCBStatus != tc.want || !bytes.Equal(res.MRENCLAVE[:], q[64:96]) || !bytes.Equal(res.ReportData[:], q[320:384]) ||
				res.ISVProdID != binary.LittleEndian.Uint16(q[256:]) || !bytes.Equal(res.CPUSVN[:], q[:16]) {
				t.Errorf("result = %+v, want status %s and the synthetic quote's fields", res, tc.want)
			}
		})
	}

	t.Run("signing cert without digitalSignature", func(t *testing.T) {
		p := newTestPKI(t, x509.KeyUsageCertSign)
		_, err := Verify(p.evidence(t, synthReport(t, nil)), Options{Roots: []*x509.Certificate{p.root}, Time: at})
		if !errors.Is(err, ErrUntrustedSigner) {
			t.Errorf("err = %v, want ErrUntrustedSigner", err)
		}
	})
	t.Run("ECDSA signing key", func(t *testing.T) {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "ECDSA report signer"},
			NotBefore: notBefore, NotAfter: notBefore.AddDate(20, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		}
		leaf := createCert(t, tmpl, pki.root, ecKey().Public(), ecKey())
		ev := pki.evidence(t, synthReport(t, nil))
		ev.Chain = []*x509.Certificate{leaf}
		if _, err := Verify(ev, opts); !errors.Is(err, ErrSignature) {
			t.Errorf("err = %v, want ErrSignature", err)
		}
	})
	t.Run("bad evidence shapes", func(t *testing.T) {
		good := pki.evidence(t, synthReport(t, nil))
		for name, ev := range map[string]*Evidence{
			"nil":         nil,
			"no chain":    {Body: good.Body, Signature: good.Signature},
			"nil cert":    {Body: good.Body, Signature: good.Signature, Chain: []*x509.Certificate{nil}},
			"nil in tail": {Body: good.Body, Signature: good.Signature, Chain: []*x509.Certificate{pki.leaf, nil}},
		} {
			if res, err := Verify(ev, opts); err == nil || res != nil {
				t.Errorf("%s: accepted", name)
			}
		}
	})
}

func TestParseNetscapeComment(t *testing.T) {
	ev, _ := loadCert(t, pallets+"ra_dump_cert_TEST4.der")
	good := string(netscapeComment(ev))
	parts := strings.Split(good, "|")
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	report, sig, cert := parts[0], parts[1], parts[2]

	got, err := ParseNetscapeComment([]byte(good))
	if err != nil || !bytes.Equal(got.Body, ev.Body) {
		t.Fatalf("round trip: %v", err)
	}
	// A '|' inside the report stays part of the report (split from the right).
	withBar := strings.Replace(report, `"id"`, `"x":"a|b","id"`, 1)
	got, err = ParseNetscapeComment([]byte(withBar + "|" + sig + "|" + cert))
	if err != nil || string(got.Body) != withBar {
		t.Errorf("report containing '|': %v", err)
	}

	bad := map[string]string{
		"no separator":        report,
		"one separator":       report + "|" + sig,
		"empty report":        "|" + sig + "|" + cert,
		"signature not b64":   report + "|" + sig[:10] + "*" + sig[11:] + "|" + cert,
		"cert not b64":        report + "|" + sig + "|" + cert[:10] + "*" + cert[11:],
		"cert truncated":      report + "|" + sig + "|" + cert[:400],
		"cert garbage":        report + "|" + sig + "|" + base64.StdEncoding.EncodeToString([]byte("not a certificate")),
		"empty cert":          report + "|" + sig + "|",
		"trailing separator":  good + "|",
		"cert with newline":   report + "|" + sig + "|" + cert[:64] + "\n" + cert[64:],
		"signature with null": report + "|" + sig + "\x00|" + cert,
	}
	for name, in := range bad {
		if _, err := ParseNetscapeComment([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestEvidenceFromResponse(t *testing.T) {
	body := testvectors.Read(t, oasisDir+"avr_v4_body_sw_hardening_needed.json")
	sig := string(testvectors.Read(t, oasisDir+"avr_v4_body_sw_hardening_needed.sig"))
	chain := string(testvectors.Read(t, oasisChainPath))

	ev, err := EvidenceFromResponse(body, sig, chain)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Chain) != 2 || ev.Chain[0].Subject.CommonName != "Intel SGX Attestation Report Signing" ||
		!ev.Chain[1].Equal(iasRoots(t)[0]) {
		t.Errorf("chain = %d certs, leaf %q", len(ev.Chain), ev.Chain[0].Subject.CommonName)
	}
	// The same chain as plain (already decoded) PEM is accepted too.
	plain, err := url.PathUnescape(chain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EvidenceFromResponse(body, sig, plain); err != nil {
		t.Errorf("plain PEM: %v", err)
	}
	leafOnly := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ev.Chain[0].Raw}))

	bad := []struct {
		name            string
		body            []byte
		sig, chain      string
		wantMalformed   bool
		wantVerifyError error
	}{
		{name: "empty body", body: nil, sig: sig, chain: chain, wantMalformed: true},
		{name: "signature not base64", body: body, sig: "%%%", chain: chain, wantMalformed: true},
		{name: "no certificates", body: body, sig: sig, chain: "", wantMalformed: true},
		{name: "bad escape", body: body, sig: sig, chain: "%zz", wantMalformed: true},
		{name: "query-unescaped chain", body: body, sig: sig, chain: strings.ReplaceAll(plain, "+", " "), wantMalformed: true},
		{name: "trailing garbage", body: body, sig: sig, chain: chain + "garbage", wantMalformed: true},
		{name: "private key block", body: body, sig: sig, chain: "-----BEGIN PRIVATE KEY-----%0AAAAA%0A-----END PRIVATE KEY-----%0A", wantMalformed: true},
		{name: "corrupt certificate", body: body, sig: sig, chain: "-----BEGIN CERTIFICATE-----%0AAAAA%0A-----END CERTIFICATE-----%0A", wantMalformed: true},
		{name: "v5 signature on v4 body", body: body, sig: string(testvectors.Read(t, oasisDir+"avr_v5_body_sw_hardening_needed.sig")), chain: leafOnly, wantVerifyError: ErrSignature},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := EvidenceFromResponse(tc.body, tc.sig, tc.chain)
			if tc.wantMalformed {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = Verify(ev, Options{Roots: iasRoots(t), Time: mustTime(t, "2020-05-11T09:21:15.454051")})
			if !errors.Is(err, tc.wantVerifyError) {
				t.Errorf("Verify: err = %v, want %v", err, tc.wantVerifyError)
			}
		})
	}
}

func TestEvidenceFromPhala(t *testing.T) {
	ev := loadPhala(t, "phala/pallet_ias_attestation.json")
	sigHex := hex.EncodeToString(ev.Signature)
	certHex := hex.EncodeToString(ev.Chain[0].Raw)
	mk := func(report, sig, cert string) []byte {
		return []byte(`{"raReport":` + quoteJSON(report) + `,"signature":"` + sig + `","rawSigningCert":"` + cert + `"}`)
	}
	// Base64 and hex forms of the same evidence are equivalent.
	b64 := mk(string(ev.Body), base64.StdEncoding.EncodeToString(ev.Signature), base64.StdEncoding.EncodeToString(ev.Chain[0].Raw))
	got, err := EvidenceFromPhala(b64)
	if err != nil || !bytes.Equal(got.Signature, ev.Signature) || !got.Chain[0].Equal(ev.Chain[0]) {
		t.Fatalf("base64 form: %v", err)
	}
	bad := map[string][]byte{
		"not JSON":          []byte("raReport"),
		"missing raReport":  []byte(`{"signature":"` + sigHex + `","rawSigningCert":"` + certHex + `"}`),
		"missing signature": []byte(`{"raReport":"{}","rawSigningCert":"` + certHex + `"}`),
		"missing cert":      []byte(`{"raReport":"{}","signature":"` + sigHex + `"}`),
		"empty raReport":    mk("", sigHex, certHex),
		"raReport object":   []byte(`{"raReport":{},"signature":"` + sigHex + `","rawSigningCert":"` + certHex + `"}`),
		"odd hex signature": mk("{}", sigHex[1:], certHex),
		"bad cert":          mk("{}", sigHex, certHex[:200]),
		"duplicate key":     []byte(`{"raReport":"{}","raReport":"{}","signature":"` + sigHex + `","rawSigningCert":"` + certHex + `"}`),
	}
	for name, in := range bad {
		if _, err := EvidenceFromPhala(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
