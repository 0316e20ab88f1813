package ias

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// QuoteBodySize is the length of isvEnclaveQuoteBody: an EPID quote without
// its signature length and signature (48-byte header, 384-byte report body).
const QuoteBodySize = 432

// quoteHeaderSize is the EPID quote header; the report body follows it.
const quoteHeaderSize = 48

// timestampLayout is the IAS report timestamp: UTC without a zone
// designator, with an optional fractional second (IAS sends microseconds).
const timestampLayout = "2006-01-02T15:04:05"

// QuoteHeader is the 48-byte EPID quote header.
type QuoteHeader struct {
	Version     uint16
	SignType    uint16 // 0 unlinkable, 1 linkable
	EPIDGroupID uint32
	QESVN       uint16
	PCESVN      uint16
	XEID        uint32
	Basename    [32]byte
}

// ReportBody is the part of the 384-byte SGX report body an IAS verdict is
// about. Reserved fields are not kept.
type ReportBody struct {
	CPUSVN     [16]byte
	MiscSelect uint32
	Attributes [16]byte
	MRENCLAVE  [32]byte
	MRSIGNER   [32]byte
	ISVProdID  uint16
	ISVSVN     uint16
	ReportData [64]byte
}

// Quote is a parsed isvEnclaveQuoteBody.
type Quote struct {
	Header QuoteHeader
	Body   ReportBody
}

// ParseQuote parses the 432-byte quote body IAS returns in
// isvEnclaveQuoteBody. All integers are little-endian.
func ParseQuote(b []byte) (*Quote, error) {
	q, err := parseQuote(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return q, nil
}

func parseQuote(b []byte) (*Quote, error) {
	if len(b) != QuoteBodySize {
		return nil, fmt.Errorf("quote body is %d bytes, want %d", len(b), QuoteBodySize)
	}
	le := binary.LittleEndian
	q := &Quote{Header: QuoteHeader{
		Version:     le.Uint16(b[0:2]),
		SignType:    le.Uint16(b[2:4]),
		EPIDGroupID: le.Uint32(b[4:8]),
		QESVN:       le.Uint16(b[8:10]),
		PCESVN:      le.Uint16(b[10:12]),
		XEID:        le.Uint32(b[12:16]),
	}}
	copy(q.Header.Basename[:], b[16:48])

	r := b[quoteHeaderSize:]
	body := &q.Body
	copy(body.CPUSVN[:], r[0:16])
	body.MiscSelect = le.Uint32(r[16:20])
	copy(body.Attributes[:], r[48:64])
	copy(body.MRENCLAVE[:], r[64:96])
	copy(body.MRSIGNER[:], r[128:160])
	body.ISVProdID = le.Uint16(r[256:258])
	body.ISVSVN = le.Uint16(r[258:260])
	copy(body.ReportData[:], r[320:384])
	return q, nil
}

// Report is a parsed attestation verification report. It is what IAS
// asserted; it means nothing until Verify has checked IAS's signature over
// Raw.
type Report struct {
	ID          string
	Timestamp   time.Time // UTC, microsecond precision
	Version     int       // 3, 4 or 5
	QuoteStatus string    // isvEnclaveQuoteStatus, verbatim
	AdvisoryIDs []string
	AdvisoryURL string
	// QuoteBody is the decoded isvEnclaveQuoteBody (QuoteBodySize bytes);
	// Quote is its parsed form.
	QuoteBody               []byte
	Quote                   Quote
	Nonce                   string
	EPIDPseudonym           string
	PlatformInfoBlob        string // hex TLV, present for some non-OK statuses
	TCBEvaluationDataNumber int    // version 5 only
	// Raw is the exact JSON the signature covers.
	Raw []byte
}

// ParseReport parses the JSON body of an attestation verification report.
// It is strict about what it reads: duplicate or differently cased keys,
// wrong types, unknown report versions, non-canonical base64 and a quote body
// of the wrong length are errors (wrapping ErrMalformed). Fields it does not
// know are ignored, as IAS adds fields in new report versions.
func ParseReport(b []byte) (*Report, error) {
	r, err := parseReport(b)
	if err != nil {
		return nil, fmt.Errorf("%w: parse report: %w", ErrMalformed, err)
	}
	return r, nil
}

func parseReport(b []byte) (*Report, error) {
	obj, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	r := &Report{Raw: bytes.Clone(b)}
	var ts, body string
	fields := []struct {
		key      string
		dst      any
		required bool
	}{
		{"id", &r.ID, true},
		{"timestamp", &ts, true},
		{"version", &r.Version, true},
		{"isvEnclaveQuoteStatus", &r.QuoteStatus, true},
		{"isvEnclaveQuoteBody", &body, true},
		{"advisoryIDs", &r.AdvisoryIDs, false},
		{"advisoryURL", &r.AdvisoryURL, false},
		{"nonce", &r.Nonce, false},
		{"epidPseudonym", &r.EPIDPseudonym, false},
		{"platformInfoBlob", &r.PlatformInfoBlob, false},
		{"tcbEvaluationDataNumber", &r.TCBEvaluationDataNumber, false},
	}
	for _, f := range fields {
		if err := obj.get(f.key, f.dst, f.required); err != nil {
			return nil, err
		}
	}

	switch r.Version {
	case 3, 4, 5:
	default:
		return nil, fmt.Errorf("unsupported report version %d", r.Version)
	}
	if r.ID == "" {
		return nil, errors.New("empty id")
	}
	if r.QuoteStatus == "" {
		return nil, errors.New("empty isvEnclaveQuoteStatus")
	}
	for i, id := range r.AdvisoryIDs {
		if id == "" {
			return nil, fmt.Errorf("advisoryIDs[%d] is empty", i)
		}
	}
	r.Timestamp, err = parseTimestamp(ts)
	if err != nil {
		return nil, err
	}
	r.QuoteBody, err = decodeBase64(body)
	if err != nil {
		return nil, fmt.Errorf("isvEnclaveQuoteBody: %w", err)
	}
	q, err := parseQuote(r.QuoteBody)
	if err != nil {
		return nil, fmt.Errorf("isvEnclaveQuoteBody: %w", err)
	}
	r.Quote = *q
	return r, nil
}

func parseTimestamp(s string) (time.Time, error) {
	// time.Parse would accept a trailing fraction of any length, and the
	// layout leaves no room for a zone, so "…Z" or "+01:00" is rejected.
	t, err := time.ParseInLocation(timestampLayout, s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", s, err)
	}
	return t, nil
}

// decodeBase64 decodes canonical standard base64. The decoder in
// encoding/base64 skips CR and LF; a signed value containing them is not
// what IAS produces, so it is refused rather than silently normalised.
func decodeBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("base64 contains line breaks")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("base64: %w", err)
	}
	return b, nil
}

// object is a JSON object split into its members.
type object map[string]json.RawMessage

// decodeObject splits a JSON object into its members, rejecting duplicate
// keys and trailing data. encoding/json alone would keep the last of two
// duplicates and match keys case-insensitively, so the same signed bytes
// could be read differently here than by other verifiers.
func decodeObject(b []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("json: not an object")
	}
	obj := object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("json: object key is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("json: value of %q: %w", key, err)
		}
		if _, dup := obj[key]; dup {
			return nil, fmt.Errorf("json: duplicate key %q", key)
		}
		obj[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("json: trailing data after object")
	}
	return obj, nil
}

// get decodes member key into dst. null counts as a type error, not as
// absent: IAS never sends null.
func (o object) get(key string, dst any, required bool) error {
	raw, ok := o[key]
	if !ok {
		if required {
			return fmt.Errorf("missing %q", key)
		}
		return nil
	}
	if string(raw) == "null" {
		return fmt.Errorf("%q is null", key)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%q: %w", key, err)
	}
	return nil
}
