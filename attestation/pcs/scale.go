package pcs

import (
	"encoding/binary"
	"fmt"
)

// ParsePhalaCollateral parses Phala's SCALE-encoded SgxV30QuoteCollateral
// (pink-types): nine compact-length-prefixed byte strings in the order
// pck_crl_issuer_chain, root_ca_crl (hex), pck_crl (hex),
// tcb_info_issuer_chain, tcb_info, tcb_info_signature (64-byte r||s),
// qe_identity_issuer_chain, qe_identity, qe_identity_signature. Trailing
// bytes are an error.
func ParsePhalaCollateral(b []byte) (*Collateral, error) {
	var f [9][]byte
	for i := range f {
		var err error
		if f[i], b, err = scaleBytes(b); err != nil {
			return nil, fmt.Errorf("parse Phala collateral: field %d: %w", i, err)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("parse Phala collateral: %w: %d trailing bytes", ErrMalformed, len(b))
	}
	pckChain, rootCRL, pckCRL := f[0], f[1], f[2]
	var c Collateral
	var err error
	for _, sig := range [][]byte{f[5], f[8]} {
		if len(sig) != 64 {
			return nil, fmt.Errorf("parse Phala collateral: %w: signature is %d bytes, want 64", ErrMalformed, len(sig))
		}
	}
	tcbChain, err := ParseCertificates(f[3])
	if err != nil {
		return nil, fmt.Errorf("parse Phala collateral: TCB info chain: %w", err)
	}
	if c.TCBInfo, err = newSignedTCBInfo(f[4], f[5], tcbChain); err != nil {
		return nil, fmt.Errorf("parse Phala collateral: %w", err)
	}
	qeChain, err := ParseCertificates(f[6])
	if err != nil {
		return nil, fmt.Errorf("parse Phala collateral: QE identity chain: %w", err)
	}
	if c.QEIdentity, err = newSignedQEIdentity(f[7], f[8], qeChain); err != nil {
		return nil, fmt.Errorf("parse Phala collateral: %w", err)
	}
	if c.PCKCRL, err = ParseCRL(pckCRL, pckChain); err != nil {
		return nil, fmt.Errorf("parse Phala collateral: PCK CRL: %w", err)
	}
	if c.RootCRL, err = ParseCRL(rootCRL, pckChain); err != nil {
		return nil, fmt.Errorf("parse Phala collateral: root CA CRL: %w", err)
	}
	return &c, nil
}

// scaleBytes reads one SCALE Vec<u8>: a compact length, then the bytes.
func scaleBytes(b []byte) (v, rest []byte, err error) {
	if len(b) == 0 {
		return nil, nil, fmt.Errorf("%w: truncated length", ErrMalformed)
	}
	var n uint64
	switch b[0] & 3 {
	case 0:
		n, b = uint64(b[0]>>2), b[1:]
	case 1:
		if len(b) < 2 {
			return nil, nil, fmt.Errorf("%w: truncated length", ErrMalformed)
		}
		n, b = uint64(binary.LittleEndian.Uint16(b)>>2), b[2:]
	case 2:
		if len(b) < 4 {
			return nil, nil, fmt.Errorf("%w: truncated length", ErrMalformed)
		}
		n, b = uint64(binary.LittleEndian.Uint32(b)>>2), b[4:]
	default:
		// Big-integer mode encodes lengths of 2^30 and more: no collateral
		// is that large.
		return nil, nil, fmt.Errorf("%w: length too large", ErrMalformed)
	}
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: length %d exceeds the %d bytes left", ErrMalformed, n, len(b))
	}
	return b[:n], b[n:], nil
}
