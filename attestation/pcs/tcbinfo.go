package pcs

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/integritee-go/integritee/attestation"
)

// Wire forms of Intel's TCB Info. Field order is Intel's, so that marshalling
// reproduces the layout PCS serves.
type tcbInfoJSON struct {
	ID                      string                  `json:"id,omitempty"`
	Version                 int                     `json:"version"`
	IssueDate               string                  `json:"issueDate"`
	NextUpdate              string                  `json:"nextUpdate"`
	FMSPC                   string                  `json:"fmspc"`
	PCEID                   string                  `json:"pceId"`
	TCBType                 int                     `json:"tcbType"`
	TCBEvaluationDataNumber int                     `json:"tcbEvaluationDataNumber"`
	TDXModule               *tdxModuleJSON          `json:"tdxModule,omitempty"`
	TDXModuleIdentities     []tdxModuleIdentityJSON `json:"tdxModuleIdentities,omitempty"`
	TCBLevels               []tcbLevelJSON          `json:"tcbLevels"`
}

type tdxModuleJSON struct {
	MRSIGNER       string `json:"mrsigner"`
	Attributes     string `json:"attributes"`
	AttributesMask string `json:"attributesMask"`
}

type tdxModuleIdentityJSON struct {
	ID string `json:"id"`
	tdxModuleJSON
	TCBLevels []qeLevelJSON `json:"tcbLevels"`
}

type tcbLevelJSON struct {
	TCB         json.RawMessage `json:"tcb"`
	TCBDate     string          `json:"tcbDate"`
	TCBStatus   string          `json:"tcbStatus"`
	AdvisoryIDs []string        `json:"advisoryIDs,omitempty"`
}

// tcbV3JSON is the "tcb" object of version 3.
type tcbV3JSON struct {
	SGX    []componentJSON `json:"sgxtcbcomponents"`
	PCESVN *int            `json:"pcesvn"`
	TDX    []componentJSON `json:"tdxtcbcomponents,omitempty"`
}

type componentJSON struct {
	SVN *int `json:"svn"`
}

// ParseTCBInfo parses a PCS TCB Info response {"tcbInfo":{...},"signature":"hex"}
// and its issuer chain (PEM, DER, or URL-encoded PEM as in PCS headers; may be
// empty and set later). Body keeps the exact bytes of the tcbInfo value.
func ParseTCBInfo(envelope, chainPEM []byte) (*SignedTCBInfo, error) {
	var env struct {
		TCBInfo   json.RawMessage `json:"tcbInfo"`
		Signature string          `json:"signature"`
	}
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, fmt.Errorf("parse TCB info: %w: %v", ErrMalformed, err)
	}
	sig, err := decodeSignatureHex(env.Signature)
	if err != nil {
		return nil, fmt.Errorf("parse TCB info: %w", err)
	}
	chain, err := ParseCertificates(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("parse TCB info: issuer chain: %w", err)
	}
	return newSignedTCBInfo(env.TCBInfo, sig, chain)
}

func newSignedTCBInfo(body, sig []byte, chain []*x509.Certificate) (*SignedTCBInfo, error) {
	info, err := parseTCBInfoBody(body)
	if err != nil {
		return nil, fmt.Errorf("parse TCB info: %w", err)
	}
	return &SignedTCBInfo{Body: bytes.Clone(body), Signature: sig, Chain: chain, Info: *info}, nil
}

// parseTCBInfoBody parses the signed tcbInfo object itself.
func parseTCBInfoBody(body []byte) (*TCBInfo, error) {
	if err := checkObject(body); err != nil {
		return nil, err
	}
	var j tcbInfoJSON
	if err := json.Unmarshal(body, &j); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	t := &TCBInfo{ID: j.ID, Version: j.Version, TCBType: j.TCBType, TCBEvaluationDataNumber: j.TCBEvaluationDataNumber}
	switch j.Version {
	case 2:
		if j.ID != "" && j.ID != IDSGX {
			return nil, fmt.Errorf("%w: version 2 TCB info with id %q", ErrMalformed, j.ID)
		}
	case 3:
		if j.ID != IDSGX && j.ID != IDTDX {
			return nil, fmt.Errorf("%w: TCB info id %q", ErrMalformed, j.ID)
		}
	default:
		return nil, fmt.Errorf("%w: TCB info version %d", ErrUnsupportedVersion, j.Version)
	}
	var err error
	if t.IssueDate, err = parseTime("issueDate", j.IssueDate); err != nil {
		return nil, err
	}
	if t.NextUpdate, err = parseTime("nextUpdate", j.NextUpdate); err != nil {
		return nil, err
	}
	if err := decodeHexInto(t.FMSPC[:], "fmspc", j.FMSPC); err != nil {
		return nil, err
	}
	if err := decodeHexInto(t.PCEID[:], "pceId", j.PCEID); err != nil {
		return nil, err
	}
	if j.TCBType < 0 || j.TCBEvaluationDataNumber < 0 {
		return nil, fmt.Errorf("%w: negative tcbType or tcbEvaluationDataNumber", ErrMalformed)
	}
	if len(j.TCBLevels) == 0 {
		return nil, fmt.Errorf("%w: no TCB levels", ErrMalformed)
	}
	tdx := t.ID == IDTDX
	if tdx {
		if j.TDXModule != nil {
			m, err := parseTDXModule(*j.TDXModule)
			if err != nil {
				return nil, err
			}
			t.TDXModule = &m
		}
		for _, mi := range j.TDXModuleIdentities {
			m, err := parseTDXModule(mi.tdxModuleJSON)
			if err != nil {
				return nil, err
			}
			levels, err := parseQELevels(mi.TCBLevels)
			if err != nil {
				return nil, fmt.Errorf("TDX module identity %q: %w", mi.ID, err)
			}
			t.TDXModuleIdentities = append(t.TDXModuleIdentities, TDXModuleIdentity{ID: mi.ID, TDXModule: m, Levels: levels})
		}
	}
	t.Levels = make([]TCBLevel, 0, len(j.TCBLevels))
	for i, lj := range j.TCBLevels {
		l, err := parseTCBLevel(lj, j.Version, tdx)
		if err != nil {
			return nil, fmt.Errorf("TCB level %d: %w", i, err)
		}
		t.Levels = append(t.Levels, l)
	}
	return t, nil
}

func parseTCBLevel(lj tcbLevelJSON, version int, tdx bool) (TCBLevel, error) {
	var l TCBLevel
	var err error
	if l.TCBDate, err = parseTime("tcbDate", lj.TCBDate); err != nil {
		return l, err
	}
	if l.Status, err = parseStatus(lj.TCBStatus); err != nil {
		return l, err
	}
	l.AdvisoryIDs = advisories(lj.AdvisoryIDs)
	if len(lj.TCB) == 0 {
		return l, fmt.Errorf("%w: missing tcb", ErrMalformed)
	}
	var pcesvn *int
	if version == 2 {
		var m map[string]*int
		if err := json.Unmarshal(lj.TCB, &m); err != nil {
			return l, fmt.Errorf("%w: tcb: %v", ErrMalformed, err)
		}
		for i := range l.CompSVN {
			v, err := svn8(m[fmt.Sprintf("sgxtcbcomp%02dsvn", i+1)])
			if err != nil {
				return l, fmt.Errorf("sgxtcbcomp%02dsvn: %w", i+1, err)
			}
			l.CompSVN[i] = v
		}
		pcesvn = m["pcesvn"]
	} else {
		var v3 tcbV3JSON
		if err := json.Unmarshal(lj.TCB, &v3); err != nil {
			return l, fmt.Errorf("%w: tcb: %v", ErrMalformed, err)
		}
		if err := components(&l.CompSVN, v3.SGX, "sgxtcbcomponents"); err != nil {
			return l, err
		}
		if tdx {
			if err := components(&l.TDXCompSVN, v3.TDX, "tdxtcbcomponents"); err != nil {
				return l, err
			}
		}
		pcesvn = v3.PCESVN
	}
	if pcesvn == nil || *pcesvn < 0 || *pcesvn > 0xffff {
		return l, fmt.Errorf("%w: pcesvn missing or out of range", ErrMalformed)
	}
	l.PCESVN = uint16(*pcesvn)
	return l, nil
}

func components(dst *[16]uint8, cs []componentJSON, name string) error {
	if len(cs) != len(dst) {
		return fmt.Errorf("%w: %s has %d entries, want %d", ErrMalformed, name, len(cs), len(dst))
	}
	for i, c := range cs {
		v, err := svn8(c.SVN)
		if err != nil {
			return fmt.Errorf("%s[%d]: %w", name, i, err)
		}
		dst[i] = v
	}
	return nil
}

func svn8(p *int) (uint8, error) {
	if p == nil {
		return 0, fmt.Errorf("%w: missing svn", ErrMalformed)
	}
	if *p < 0 || *p > 0xff {
		return 0, fmt.Errorf("%w: svn %d out of range", ErrMalformed, *p)
	}
	return uint8(*p), nil
}

func parseTDXModule(j tdxModuleJSON) (TDXModule, error) {
	var m TDXModule
	if err := decodeHexInto(m.MRSIGNER[:], "mrsigner", j.MRSIGNER); err != nil {
		return m, err
	}
	if err := decodeHexInto(m.Attributes[:], "attributes", j.Attributes); err != nil {
		return m, err
	}
	if err := decodeHexInto(m.AttributesMask[:], "attributesMask", j.AttributesMask); err != nil {
		return m, err
	}
	return m, nil
}

// marshalTCBInfo renders t compactly in Intel's layout for its version
// (2: sgxtcbcompNNsvn keys; 3: sgxtcbcomponents arrays).
func marshalTCBInfo(t *TCBInfo) ([]byte, error) {
	j := tcbInfoJSON{
		ID:                      t.ID,
		Version:                 t.Version,
		IssueDate:               formatTime(t.IssueDate),
		NextUpdate:              formatTime(t.NextUpdate),
		FMSPC:                   strings.ToUpper(hex.EncodeToString(t.FMSPC[:])),
		PCEID:                   strings.ToUpper(hex.EncodeToString(t.PCEID[:])),
		TCBType:                 t.TCBType,
		TCBEvaluationDataNumber: t.TCBEvaluationDataNumber,
	}
	if t.Version == 2 {
		// Version 2 documents spell the FMSPC in lower case.
		j.FMSPC = hex.EncodeToString(t.FMSPC[:])
	}
	tdx := t.ID == IDTDX
	if tdx {
		if t.TDXModule != nil {
			m := marshalTDXModule(*t.TDXModule)
			j.TDXModule = &m
		}
		for _, mi := range t.TDXModuleIdentities {
			j.TDXModuleIdentities = append(j.TDXModuleIdentities, tdxModuleIdentityJSON{
				ID: mi.ID, tdxModuleJSON: marshalTDXModule(mi.TDXModule), TCBLevels: marshalQELevels(mi.Levels),
			})
		}
	}
	for _, l := range t.Levels {
		var tcb []byte
		var err error
		if t.Version == 2 {
			tcb = marshalTCBV2(l)
		} else {
			v3 := tcbV3JSON{SGX: marshalComponents(l.CompSVN), PCESVN: ptr(int(l.PCESVN))}
			if tdx {
				v3.TDX = marshalComponents(l.TDXCompSVN)
			}
			if tcb, err = marshalCompact(v3); err != nil {
				return nil, err
			}
		}
		j.TCBLevels = append(j.TCBLevels, tcbLevelJSON{
			TCB: tcb, TCBDate: formatTime(l.TCBDate), TCBStatus: string(l.Status), AdvisoryIDs: l.AdvisoryIDs,
		})
	}
	return marshalCompact(j)
}

// marshalTCBV2 writes the version-2 "tcb" object by hand: its sixteen
// numbered keys have a fixed order that a map would not keep.
func marshalTCBV2(l TCBLevel) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, v := range l.CompSVN {
		fmt.Fprintf(&b, `"sgxtcbcomp%02dsvn":%d,`, i+1, v)
	}
	fmt.Fprintf(&b, `"pcesvn":%d}`, l.PCESVN)
	return b.Bytes()
}

func marshalComponents(svns [16]uint8) []componentJSON {
	cs := make([]componentJSON, len(svns))
	for i, v := range svns {
		cs[i] = componentJSON{SVN: ptr(int(v))}
	}
	return cs
}

func marshalTDXModule(m TDXModule) tdxModuleJSON {
	return tdxModuleJSON{
		MRSIGNER:       strings.ToUpper(hex.EncodeToString(m.MRSIGNER[:])),
		Attributes:     strings.ToUpper(hex.EncodeToString(m.Attributes[:])),
		AttributesMask: strings.ToUpper(hex.EncodeToString(m.AttributesMask[:])),
	}
}

// Evaluate finds the platform's TCB level by Intel's algorithm: FMSPC and
// PCEID must match, and the result is the first level (in the document's
// order, which Intel sorts from newest) whose 16 SGX component SVNs and
// PCESVN are all less than or equal to the platform's. Only SGX TCB info
// (id "SGX", or none in version 2) of TCB type 0 can be evaluated here.
func (t *TCBInfo) Evaluate(fmspc [6]byte, pceID [2]byte, compSVN [16]uint8, pceSVN uint16) (TCBLevel, error) {
	if t.ID != IDSGX && !(t.ID == "" && t.Version == 2) {
		return TCBLevel{}, fmt.Errorf("evaluate TCB: %w: TCB info id %q, want %q", ErrWrongTEE, t.ID, IDSGX)
	}
	if t.Version != 2 && t.Version != 3 {
		return TCBLevel{}, fmt.Errorf("evaluate TCB: %w: version %d", ErrUnsupportedVersion, t.Version)
	}
	if t.TCBType != 0 {
		return TCBLevel{}, fmt.Errorf("evaluate TCB: %w: tcbType %d", ErrUnsupportedVersion, t.TCBType)
	}
	if fmspc != t.FMSPC {
		return TCBLevel{}, fmt.Errorf("evaluate TCB: %w: platform %x, TCB info %x", ErrFMSPCMismatch, fmspc, t.FMSPC)
	}
	if pceID != t.PCEID {
		return TCBLevel{}, fmt.Errorf("evaluate TCB: %w: platform %x, TCB info %x", ErrPCEIDMismatch, pceID, t.PCEID)
	}
	for _, l := range t.Levels {
		if !componentsAtLeast(compSVN, l.CompSVN) || pceSVN < l.PCESVN {
			continue
		}
		if !l.Status.Known() {
			return TCBLevel{}, fmt.Errorf("evaluate TCB: %w: %q", ErrUnknownStatus, l.Status)
		}
		l.AdvisoryIDs = append([]string(nil), l.AdvisoryIDs...)
		return l, nil
	}
	return TCBLevel{}, fmt.Errorf("evaluate TCB: %w: components %v, PCESVN %d", ErrTCBLevelNotFound, compSVN, pceSVN)
}

func componentsAtLeast(have, want [16]uint8) bool {
	for i := range have {
		if have[i] < want[i] {
			return false
		}
	}
	return true
}

// Shared helpers of the JSON parsers.

// checkObject requires a JSON object: the signed bodies are always objects,
// and a string or array here means the caller picked the wrong field.
func checkObject(b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("%w: signed body is not a JSON object", ErrMalformed)
	}
	return nil
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q: %v", ErrMalformed, field, s, err)
	}
	return t.UTC(), nil
}

// formatTime writes whole seconds as Intel does, and keeps any fraction so
// that a parsed document marshals back to the same instant.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// advisories normalises an empty list to nil: marshalling omits it.
func advisories(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	return ids
}

func parseStatus(s string) (attestation.TCBStatus, error) {
	st := attestation.TCBStatus(s)
	if !st.Known() {
		return "", fmt.Errorf("%w: %q", ErrUnknownStatus, s)
	}
	return st, nil
}

func decodeHexInto(dst []byte, field, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("%w: %s is %d hex digits, want %d", ErrMalformed, field, len(s), 2*len(dst))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, field, err)
	}
	return nil
}

func decodeSignatureHex(s string) ([]byte, error) {
	if len(s) != 128 {
		return nil, fmt.Errorf("%w: signature is %d hex digits, want 128", ErrMalformed, len(s))
	}
	sig, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	return sig, nil
}

// marshalCompact encodes v without HTML escaping or a trailing newline.
func marshalCompact(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func ptr[T any](v T) *T { return &v }
