package dcap

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
)

// ErrPCKExtension reports a PCK certificate without a well-formed Intel SGX
// extension.
var ErrPCKExtension = errors.New("invalid PCK certificate SGX extension")

// OIDs of Intel's SGX extension (SGX PCK Certificate and CRL Profile).
var (
	oidSGXExtension = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}
	oidPPID         = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 1}
	oidTCB          = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 2}
	oidPCEID        = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 3}
	oidFMSPC        = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 4}
	oidSGXType      = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 5}
)

// Indices of the TCB sub-OIDs 1.2.840.113741.1.13.1.2.N.
const (
	tcbPCESVN = 17
	tcbCPUSVN = 18
)

// PCKExtensions is the content of the Intel SGX extension of a PCK
// certificate: the platform's identity and the TCB it was certified at.
type PCKExtensions struct {
	PPID    [16]byte
	CompSVN [16]uint8
	PCESVN  uint16
	CPUSVN  [16]byte
	PCEID   [2]byte
	FMSPC   [6]byte
	SGXType int // 0 Standard, 1 Scalable, 2 Scalable with integrity
}

// extEntry is one SEQUENCE { OID, value } of the extension.
type extEntry struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

// ParsePCKExtensions decodes the SGX extension of a PCK certificate. Every
// field Intel defines for all PCK certificates must be present exactly once;
// the platform-CA-only fields (platform instance ID, configuration) and
// unknown sub-OIDs are ignored.
func ParsePCKExtensions(c *x509.Certificate) (*PCKExtensions, error) {
	var value []byte
	for _, ext := range c.Extensions {
		if ext.Id.Equal(oidSGXExtension) {
			if value != nil {
				return nil, fmt.Errorf("%w: duplicate extension", ErrPCKExtension)
			}
			value = ext.Value
		}
	}
	if value == nil {
		return nil, fmt.Errorf("%w: extension %s missing", ErrPCKExtension, oidSGXExtension)
	}
	e, err := parseSGXExtension(value)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPCKExtension, err)
	}
	return e, nil
}

func unmarshalAll(b []byte, v any) error {
	rest, err := asn1.Unmarshal(b, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d trailing bytes", len(rest))
	}
	return nil
}

func octets(v asn1.RawValue, dst []byte, what string) error {
	var s []byte
	if err := unmarshalAll(v.FullBytes, &s); err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	if len(s) != len(dst) {
		return fmt.Errorf("%s: %d bytes, want %d", what, len(s), len(dst))
	}
	copy(dst, s)
	return nil
}

func integer(v asn1.RawValue, maxVal int, what string) (int, error) {
	var n int
	if err := unmarshalAll(v.FullBytes, &n); err != nil {
		return 0, fmt.Errorf("%s: %v", what, err)
	}
	if n < 0 || n > maxVal {
		return 0, fmt.Errorf("%s: %d out of range [0, %d]", what, n, maxVal)
	}
	return n, nil
}

func parseSGXExtension(b []byte) (*PCKExtensions, error) {
	var entries []extEntry
	if err := unmarshalAll(b, &entries); err != nil {
		return nil, err
	}
	e := new(PCKExtensions)
	seen := map[string]bool{}
	for _, ent := range entries {
		key := ent.ID.String()
		if seen[key] {
			return nil, fmt.Errorf("duplicate field %s", key)
		}
		seen[key] = true
		var err error
		switch {
		case ent.ID.Equal(oidPPID):
			err = octets(ent.Value, e.PPID[:], "PPID")
		case ent.ID.Equal(oidTCB):
			err = e.parseTCB(ent.Value)
		case ent.ID.Equal(oidPCEID):
			err = octets(ent.Value, e.PCEID[:], "PCE-ID")
		case ent.ID.Equal(oidFMSPC):
			err = octets(ent.Value, e.FMSPC[:], "FMSPC")
		case ent.ID.Equal(oidSGXType):
			var t asn1.Enumerated
			if err = unmarshalAll(ent.Value.FullBytes, &t); err != nil {
				err = fmt.Errorf("SGX type: %v", err)
			} else if t < 0 || t > 2 {
				err = fmt.Errorf("SGX type: unknown value %d", t)
			}
			e.SGXType = int(t)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, oid := range []asn1.ObjectIdentifier{oidPPID, oidTCB, oidPCEID, oidFMSPC, oidSGXType} {
		if !seen[oid.String()] {
			return nil, fmt.Errorf("field %s missing", oid)
		}
	}
	return e, nil
}

func (e *PCKExtensions) parseTCB(v asn1.RawValue) error {
	var entries []extEntry
	if err := unmarshalAll(v.FullBytes, &entries); err != nil {
		return fmt.Errorf("TCB: %v", err)
	}
	var seen [tcbCPUSVN + 1]bool
	for _, ent := range entries {
		n := len(oidTCB)
		if len(ent.ID) != n+1 || !ent.ID[:n].Equal(oidTCB) {
			continue // not a TCB component; ignore like any unknown sub-OID
		}
		idx := ent.ID[n]
		if idx < 1 || idx > tcbCPUSVN {
			continue
		}
		if seen[idx] {
			return fmt.Errorf("TCB: duplicate component %d", idx)
		}
		seen[idx] = true
		switch {
		case idx <= 16:
			svn, err := integer(ent.Value, 0xff, fmt.Sprintf("TCB component %d", idx))
			if err != nil {
				return err
			}
			e.CompSVN[idx-1] = uint8(svn)
		case idx == tcbPCESVN:
			svn, err := integer(ent.Value, 0xffff, "PCESVN")
			if err != nil {
				return err
			}
			e.PCESVN = uint16(svn)
		case idx == tcbCPUSVN:
			if err := octets(ent.Value, e.CPUSVN[:], "CPUSVN"); err != nil {
				return err
			}
		}
	}
	for i := 1; i <= tcbCPUSVN; i++ {
		if !seen[i] {
			return fmt.Errorf("TCB: component %d missing", i)
		}
	}
	return nil
}

// Extension encodes e as Intel's SGX extension, in the field order of
// Intel's processor-CA PCK certificates, for issuing development PCK
// certificates that ParsePCKExtensions and Verify accept.
func (e *PCKExtensions) Extension() (pkix.Extension, error) {
	if e.SGXType < 0 || e.SGXType > 2 {
		return pkix.Extension{}, fmt.Errorf("encode PCK extension: SGX type %d", e.SGXType)
	}
	tcb := make([]extEntry, 0, tcbCPUSVN)
	for i := 1; i <= tcbCPUSVN; i++ {
		var v any
		switch {
		case i <= 16:
			v = int(e.CompSVN[i-1])
		case i == tcbPCESVN:
			v = int(e.PCESVN)
		default:
			v = e.CPUSVN[:]
		}
		ent, err := entry(append(append(asn1.ObjectIdentifier{}, oidTCB...), i), v)
		if err != nil {
			return pkix.Extension{}, err
		}
		tcb = append(tcb, ent)
	}
	tcbDER, err := asn1.Marshal(tcb)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encode PCK extension: %w", err)
	}
	fields := []struct {
		id asn1.ObjectIdentifier
		v  any
	}{
		{oidPPID, e.PPID[:]},
		{oidTCB, asn1.RawValue{FullBytes: tcbDER}},
		{oidPCEID, e.PCEID[:]},
		{oidFMSPC, e.FMSPC[:]},
		{oidSGXType, asn1.Enumerated(e.SGXType)},
	}
	entries := make([]extEntry, 0, len(fields))
	for _, f := range fields {
		ent, err := entry(f.id, f.v)
		if err != nil {
			return pkix.Extension{}, err
		}
		entries = append(entries, ent)
	}
	der, err := asn1.Marshal(entries)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encode PCK extension: %w", err)
	}
	return pkix.Extension{Id: oidSGXExtension, Value: der}, nil
}

func entry(id asn1.ObjectIdentifier, v any) (extEntry, error) {
	if rv, ok := v.(asn1.RawValue); ok {
		return extEntry{ID: id, Value: rv}, nil
	}
	der, err := asn1.Marshal(v)
	if err != nil {
		return extEntry{}, fmt.Errorf("encode PCK extension %s: %w", id, err)
	}
	return extEntry{ID: id, Value: asn1.RawValue{FullBytes: der}}, nil
}
