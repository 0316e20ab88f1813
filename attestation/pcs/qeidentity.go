package pcs

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

type qeIdentityJSON struct {
	ID                      string        `json:"id"`
	Version                 int           `json:"version"`
	IssueDate               string        `json:"issueDate"`
	NextUpdate              string        `json:"nextUpdate"`
	TCBEvaluationDataNumber int           `json:"tcbEvaluationDataNumber"`
	MiscSelect              string        `json:"miscselect"`
	MiscSelectMask          string        `json:"miscselectMask"`
	Attributes              string        `json:"attributes"`
	AttributesMask          string        `json:"attributesMask"`
	MRSIGNER                string        `json:"mrsigner"`
	ISVProdID               *int          `json:"isvprodid"`
	TCBLevels               []qeLevelJSON `json:"tcbLevels"`
}

type qeLevelJSON struct {
	TCB struct {
		ISVSVN *int `json:"isvsvn"`
	} `json:"tcb"`
	TCBDate     string   `json:"tcbDate"`
	TCBStatus   string   `json:"tcbStatus"`
	AdvisoryIDs []string `json:"advisoryIDs,omitempty"`
}

// ParseQEIdentity parses a PCS enclave identity response
// {"enclaveIdentity":{...},"signature":"hex"} and its issuer chain. Body keeps
// the exact bytes of the enclaveIdentity value.
func ParseQEIdentity(envelope, chainPEM []byte) (*SignedQEIdentity, error) {
	var env struct {
		EnclaveIdentity json.RawMessage `json:"enclaveIdentity"`
		Signature       string          `json:"signature"`
	}
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, fmt.Errorf("parse QE identity: %w: %v", ErrMalformed, err)
	}
	sig, err := decodeSignatureHex(env.Signature)
	if err != nil {
		return nil, fmt.Errorf("parse QE identity: %w", err)
	}
	chain, err := ParseCertificates(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("parse QE identity: issuer chain: %w", err)
	}
	return newSignedQEIdentity(env.EnclaveIdentity, sig, chain)
}

func newSignedQEIdentity(body, sig []byte, chain []*x509.Certificate) (*SignedQEIdentity, error) {
	id, err := parseQEIdentityBody(body)
	if err != nil {
		return nil, fmt.Errorf("parse QE identity: %w", err)
	}
	return &SignedQEIdentity{Body: bytes.Clone(body), Signature: sig, Chain: chain, Identity: *id}, nil
}

func parseQEIdentityBody(body []byte) (*QEIdentity, error) {
	if err := checkObject(body); err != nil {
		return nil, err
	}
	var j qeIdentityJSON
	if err := json.Unmarshal(body, &j); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if j.Version != 2 {
		return nil, fmt.Errorf("%w: enclave identity version %d", ErrUnsupportedVersion, j.Version)
	}
	switch j.ID {
	case IDQE, IDTDQE, IDQVE:
	default:
		return nil, fmt.Errorf("%w: enclave identity id %q", ErrMalformed, j.ID)
	}
	q := &QEIdentity{ID: j.ID, Version: j.Version, TCBEvaluationDataNumber: j.TCBEvaluationDataNumber}
	var err error
	if q.IssueDate, err = parseTime("issueDate", j.IssueDate); err != nil {
		return nil, err
	}
	if q.NextUpdate, err = parseTime("nextUpdate", j.NextUpdate); err != nil {
		return nil, err
	}
	if q.MiscSelect, err = parseUint32Hex("miscselect", j.MiscSelect); err != nil {
		return nil, err
	}
	if q.MiscSelectMask, err = parseUint32Hex("miscselectMask", j.MiscSelectMask); err != nil {
		return nil, err
	}
	if err := decodeHexInto(q.Attributes[:], "attributes", j.Attributes); err != nil {
		return nil, err
	}
	if err := decodeHexInto(q.AttributesMask[:], "attributesMask", j.AttributesMask); err != nil {
		return nil, err
	}
	if err := decodeHexInto(q.MRSIGNER[:], "mrsigner", j.MRSIGNER); err != nil {
		return nil, err
	}
	if j.ISVProdID == nil || *j.ISVProdID < 0 || *j.ISVProdID > 0xffff {
		return nil, fmt.Errorf("%w: isvprodid missing or out of range", ErrMalformed)
	}
	q.ISVProdID = uint16(*j.ISVProdID)
	if j.TCBEvaluationDataNumber < 0 {
		return nil, fmt.Errorf("%w: negative tcbEvaluationDataNumber", ErrMalformed)
	}
	if len(j.TCBLevels) == 0 {
		return nil, fmt.Errorf("%w: no TCB levels", ErrMalformed)
	}
	if q.Levels, err = parseQELevels(j.TCBLevels); err != nil {
		return nil, err
	}
	return q, nil
}

func parseQELevels(js []qeLevelJSON) ([]QELevel, error) {
	levels := make([]QELevel, 0, len(js))
	for i, lj := range js {
		var l QELevel
		var err error
		if lj.TCB.ISVSVN == nil || *lj.TCB.ISVSVN < 0 || *lj.TCB.ISVSVN > 0xffff {
			return nil, fmt.Errorf("TCB level %d: %w: isvsvn missing or out of range", i, ErrMalformed)
		}
		l.ISVSVN = uint16(*lj.TCB.ISVSVN)
		if l.TCBDate, err = parseTime("tcbDate", lj.TCBDate); err != nil {
			return nil, fmt.Errorf("TCB level %d: %w", i, err)
		}
		if l.Status, err = parseStatus(lj.TCBStatus); err != nil {
			return nil, fmt.Errorf("TCB level %d: %w", i, err)
		}
		l.AdvisoryIDs = advisories(lj.AdvisoryIDs)
		levels = append(levels, l)
	}
	return levels, nil
}

// parseUint32Hex reads Intel's 8-digit hex MISCSELECT fields as a number,
// the way the report's little-endian field reads as one.
func parseUint32Hex(field, s string) (uint32, error) {
	if len(s) != 8 {
		return 0, fmt.Errorf("%w: %s is %d hex digits, want 8", ErrMalformed, field, len(s))
	}
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrMalformed, field, err)
	}
	return uint32(v), nil
}

func marshalQEIdentity(q *QEIdentity) ([]byte, error) {
	j := qeIdentityJSON{
		ID:                      q.ID,
		Version:                 q.Version,
		IssueDate:               formatTime(q.IssueDate),
		NextUpdate:              formatTime(q.NextUpdate),
		TCBEvaluationDataNumber: q.TCBEvaluationDataNumber,
		MiscSelect:              fmt.Sprintf("%08X", q.MiscSelect),
		MiscSelectMask:          fmt.Sprintf("%08X", q.MiscSelectMask),
		Attributes:              strings.ToUpper(hex.EncodeToString(q.Attributes[:])),
		AttributesMask:          strings.ToUpper(hex.EncodeToString(q.AttributesMask[:])),
		MRSIGNER:                strings.ToUpper(hex.EncodeToString(q.MRSIGNER[:])),
		ISVProdID:               ptr(int(q.ISVProdID)),
		TCBLevels:               marshalQELevels(q.Levels),
	}
	return marshalCompact(j)
}

func marshalQELevels(levels []QELevel) []qeLevelJSON {
	out := make([]qeLevelJSON, len(levels))
	for i, l := range levels {
		out[i].TCB.ISVSVN = ptr(int(l.ISVSVN))
		out[i].TCBDate = formatTime(l.TCBDate)
		out[i].TCBStatus = string(l.Status)
		out[i].AdvisoryIDs = l.AdvisoryIDs
	}
	return out
}

// CheckID requires the identity to be the one the caller evaluates against:
// "QE" for SGX quotes, "TD_QE" for TDX quotes. A QE identity of the wrong
// kind describes a different enclave.
func (q *QEIdentity) CheckID(want string) error {
	if q.ID != want {
		return fmt.Errorf("%w: QE identity %s expected, got %s", ErrQEIdentityMismatch, want, q.ID)
	}
	return nil
}

// Evaluate matches a QE report against the identity as Intel does: MRSIGNER
// and ISVPRODID equal, MISCSELECT and ATTRIBUTES equal under their masks; the
// result is the first level (highest first) whose isvsvn the report's ISVSVN
// reaches.
func (q *QEIdentity) Evaluate(r QEReport) (QELevel, error) {
	if q.Version != 2 {
		return QELevel{}, fmt.Errorf("evaluate QE identity: %w: version %d", ErrUnsupportedVersion, q.Version)
	}
	if r.MRSIGNER != q.MRSIGNER {
		return QELevel{}, fmt.Errorf("evaluate QE identity: %w: MRSIGNER %x, want %x", ErrQEIdentityMismatch, r.MRSIGNER, q.MRSIGNER)
	}
	if r.ISVProdID != q.ISVProdID {
		return QELevel{}, fmt.Errorf("evaluate QE identity: %w: ISVPRODID %d, want %d", ErrQEIdentityMismatch, r.ISVProdID, q.ISVProdID)
	}
	if r.MiscSelect&q.MiscSelectMask != q.MiscSelect&q.MiscSelectMask {
		return QELevel{}, fmt.Errorf("evaluate QE identity: %w: MISCSELECT %08x, want %08x under mask %08x", ErrQEIdentityMismatch, r.MiscSelect, q.MiscSelect, q.MiscSelectMask)
	}
	for i := range r.Attributes {
		if r.Attributes[i]&q.AttributesMask[i] != q.Attributes[i]&q.AttributesMask[i] {
			return QELevel{}, fmt.Errorf("evaluate QE identity: %w: ATTRIBUTES %x, want %x under mask %x", ErrQEIdentityMismatch, r.Attributes, q.Attributes, q.AttributesMask)
		}
	}
	for _, l := range q.Levels {
		if l.ISVSVN > r.ISVSVN {
			continue
		}
		if !l.Status.Known() {
			return QELevel{}, fmt.Errorf("evaluate QE identity: %w: %q", ErrUnknownStatus, l.Status)
		}
		l.AdvisoryIDs = append([]string(nil), l.AdvisoryIDs...)
		return l, nil
	}
	return QELevel{}, fmt.Errorf("evaluate QE identity: %w: ISVSVN %d", ErrTCBLevelNotFound, r.ISVSVN)
}
