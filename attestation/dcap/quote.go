package dcap

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
)

// Errors of quote parsing. ParseQuote wraps them with the offending field.
var (
	ErrMalformed           = errors.New("malformed quote")
	ErrTrailingBytes       = errors.New("trailing bytes after quote")
	ErrUnsupportedVersion  = errors.New("unsupported quote version")
	ErrUnsupportedKeyType  = errors.New("unsupported attestation key type")
	ErrUnsupportedCertData = errors.New("unsupported certification data type")
	ErrUnsupportedTEE      = errors.New("unsupported TEE type")
)

// Sizes of the fixed parts of a quote.
const (
	HeaderSize     = 48
	ReportBodySize = 384
	// TDReportSize is a TDX 1.0 TD report body (quote v4, v5 body type 2).
	TDReportSize = 584
	// TDReport15Size is a TDX 1.5 TD report body (quote v5 body type 3).
	TDReport15Size = 648
	signatureSize  = 64
	keySize        = 64
)

// Header field values this package understands.
const (
	// AttestationKeyECDSAP256 is the only attestation key type of DCAP quotes
	// in use: ECDSA on P-256 with SHA-256.
	AttestationKeyECDSAP256 = 2
	TEETypeSGX              = 0x00000000
	TEETypeTDX              = 0x00000081
)

// Certification data types (Intel SGX ECDSA Quote Library API, appendix A).
const (
	certDataPPIDRSA3072 = 3 // encrypted PPID + CPUSVN + PCESVN + PCEID
	certDataPCKChain    = 5 // PEM concatenation: PCK leaf, intermediate CA, root
	certDataQEReport    = 6 // QE report + signature + auth data + nested cert data
)

// v5 body types.
const (
	bodyTypeSGX  = 1
	bodyTypeTD10 = 2
	bodyTypeTD15 = 3
	maxPCKChain  = 8 // Intel's chains have 3 certificates; more is garbage
)

// Header is the 48-byte quote header. In v4/v5 quotes QESVN and PCESVN are
// reserved; they are kept as read.
type Header struct {
	Version            uint16
	AttestationKeyType uint16
	TEEType            uint32
	QESVN              uint16
	PCESVN             uint16
	QEVendorID         [16]byte
	UserData           [20]byte
}

// MarshalBinary encodes h in the quote's little-endian layout.
func (h *Header) MarshalBinary() ([]byte, error) {
	b := make([]byte, HeaderSize)
	binary.LittleEndian.PutUint16(b[0:], h.Version)
	binary.LittleEndian.PutUint16(b[2:], h.AttestationKeyType)
	binary.LittleEndian.PutUint32(b[4:], h.TEEType)
	binary.LittleEndian.PutUint16(b[8:], h.QESVN)
	binary.LittleEndian.PutUint16(b[10:], h.PCESVN)
	copy(b[12:28], h.QEVendorID[:])
	copy(b[28:48], h.UserData[:])
	return b, nil
}

func parseHeader(b []byte) Header {
	var h Header
	h.Version = binary.LittleEndian.Uint16(b[0:])
	h.AttestationKeyType = binary.LittleEndian.Uint16(b[2:])
	h.TEEType = binary.LittleEndian.Uint32(b[4:])
	h.QESVN = binary.LittleEndian.Uint16(b[8:])
	h.PCESVN = binary.LittleEndian.Uint16(b[10:])
	copy(h.QEVendorID[:], b[12:28])
	copy(h.UserData[:], b[28:48])
	return h
}

// ReportBody is the 384-byte SGX enclave report body (sgx_report_body_t).
// It appears as the ISV enclave report and the QE report of DCAP quotes and
// in EPID quotes returned by IAS.
type ReportBody struct {
	CPUSVN       [16]byte
	MiscSelect   uint32
	ISVExtProdID [16]byte
	Attributes   [16]byte
	MRENCLAVE    [32]byte
	MRSIGNER     [32]byte
	ConfigID     [64]byte
	ISVProdID    uint16
	ISVSVN       uint16
	ConfigSVN    uint16
	ISVFamilyID  [16]byte
	ReportData   [64]byte

	// Reserved bytes are kept so that MarshalBinary reproduces the signed
	// bytes exactly.
	reserved1 [12]byte
	reserved2 [32]byte
	reserved3 [32]byte
	reserved4 [42]byte
}

// ParseReportBody decodes a 384-byte SGX report body.
func ParseReportBody(b []byte) (*ReportBody, error) {
	if len(b) != ReportBodySize {
		return nil, fmt.Errorf("parse report body: %w: %d bytes, want %d", ErrMalformed, len(b), ReportBodySize)
	}
	r := new(ReportBody)
	copy(r.CPUSVN[:], b[0:16])
	r.MiscSelect = binary.LittleEndian.Uint32(b[16:])
	copy(r.reserved1[:], b[20:32])
	copy(r.ISVExtProdID[:], b[32:48])
	copy(r.Attributes[:], b[48:64])
	copy(r.MRENCLAVE[:], b[64:96])
	copy(r.reserved2[:], b[96:128])
	copy(r.MRSIGNER[:], b[128:160])
	copy(r.reserved3[:], b[160:192])
	copy(r.ConfigID[:], b[192:256])
	r.ISVProdID = binary.LittleEndian.Uint16(b[256:])
	r.ISVSVN = binary.LittleEndian.Uint16(b[258:])
	r.ConfigSVN = binary.LittleEndian.Uint16(b[260:])
	copy(r.reserved4[:], b[262:304])
	copy(r.ISVFamilyID[:], b[304:320])
	copy(r.ReportData[:], b[320:384])
	return r, nil
}

// MarshalBinary encodes r in the 384-byte sgx_report_body_t layout.
func (r *ReportBody) MarshalBinary() ([]byte, error) {
	b := make([]byte, ReportBodySize)
	copy(b[0:16], r.CPUSVN[:])
	binary.LittleEndian.PutUint32(b[16:], r.MiscSelect)
	copy(b[20:32], r.reserved1[:])
	copy(b[32:48], r.ISVExtProdID[:])
	copy(b[48:64], r.Attributes[:])
	copy(b[64:96], r.MRENCLAVE[:])
	copy(b[96:128], r.reserved2[:])
	copy(b[128:160], r.MRSIGNER[:])
	copy(b[160:192], r.reserved3[:])
	copy(b[192:256], r.ConfigID[:])
	binary.LittleEndian.PutUint16(b[256:], r.ISVProdID)
	binary.LittleEndian.PutUint16(b[258:], r.ISVSVN)
	binary.LittleEndian.PutUint16(b[260:], r.ConfigSVN)
	copy(b[262:304], r.reserved4[:])
	copy(b[304:320], r.ISVFamilyID[:])
	copy(b[320:384], r.ReportData[:])
	return b, nil
}

// TDReport is a TDX TD report body: 584 bytes (TDX 1.0) or 648 bytes
// (TDX 1.5, which adds TEETCBSVN2 and MRSERVICETD).
type TDReport struct {
	TEETCBSVN      [16]byte
	MRSEAM         [48]byte
	MRSIGNERSEAM   [48]byte
	SEAMAttributes [8]byte
	TDAttributes   [8]byte
	XFAM           [8]byte
	MRTD           [48]byte
	MRCONFIGID     [48]byte
	MROWNER        [48]byte
	MROWNERCONFIG  [48]byte
	RTMR           [4][48]byte
	ReportData     [64]byte
	// TDX 1.5 only; zero in TDX 1.0 bodies.
	TEETCBSVN2  [16]byte
	MRSERVICETD [48]byte
	// V15 reports whether the body was a 648-byte TDX 1.5 body.
	V15 bool
}

func parseTDReport(b []byte) *TDReport {
	td := new(TDReport)
	copy(td.TEETCBSVN[:], b[0:16])
	copy(td.MRSEAM[:], b[16:64])
	copy(td.MRSIGNERSEAM[:], b[64:112])
	copy(td.SEAMAttributes[:], b[112:120])
	copy(td.TDAttributes[:], b[120:128])
	copy(td.XFAM[:], b[128:136])
	copy(td.MRTD[:], b[136:184])
	copy(td.MRCONFIGID[:], b[184:232])
	copy(td.MROWNER[:], b[232:280])
	copy(td.MROWNERCONFIG[:], b[280:328])
	for i := range td.RTMR {
		copy(td.RTMR[i][:], b[328+48*i:376+48*i])
	}
	copy(td.ReportData[:], b[520:584])
	if len(b) == TDReport15Size {
		td.V15 = true
		copy(td.TEETCBSVN2[:], b[584:600])
		copy(td.MRSERVICETD[:], b[600:648])
	}
	return td
}

// Quote is a parsed ECDSA quote: SGX v3/v4/v5 (Body set) or TDX v4/v5 (TD
// set). A Quote from ParseQuote remembers the exact bytes its signatures
// cover; its fields are for reading.
type Quote struct {
	Header Header
	// BodyType is the v5 body type (1 SGX, 2 TDX 1.0, 3 TDX 1.5); 0 for v3/v4.
	BodyType uint16
	Body     *ReportBody
	TD       *TDReport

	Signature         [64]byte // ECDSA r||s over header||body by the attestation key
	AttestationKey    [64]byte // P-256 point X||Y
	QEReport          ReportBody
	QEReportSignature [64]byte // ECDSA r||s over QEReport by the PCK key
	QEAuthData        []byte
	PCKChain          []*x509.Certificate // leaf first

	signed   []byte // header || body as it appears in the quote
	qeReport []byte // the 384 raw QE report bytes
}

// cursor reads fixed-size fields with bounds checks.
type cursor struct {
	b   []byte
	off int
}

func (c *cursor) take(n int, what string) ([]byte, error) {
	if n < 0 || n > len(c.b)-c.off {
		return nil, fmt.Errorf("%w: %s: need %d bytes at offset %d, have %d", ErrMalformed, what, n, c.off, len(c.b)-c.off)
	}
	s := c.b[c.off : c.off+n]
	c.off += n
	return s, nil
}

func (c *cursor) u16(what string) (uint16, error) {
	s, err := c.take(2, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(s), nil
}

func (c *cursor) u32(what string) (uint32, error) {
	s, err := c.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s), nil
}

func (c *cursor) rest() int { return len(c.b) - c.off }

// ParseQuote decodes an ECDSA quote strictly: every length field is checked
// against the data, nothing may follow the declared signature data, the
// attestation key must be ECDSA-256 and the certification data must be a PCK
// certificate chain (type 5, directly in v3 or inside type 6 in v4/v5).
// It checks no signature; see VerifySignatures and Verify.
func ParseQuote(b []byte) (*Quote, error) {
	// The Quote keeps slices of its input for the signature checks; a copy
	// keeps later changes by the caller from reaching them.
	q, err := parseQuote(bytes.Clone(b))
	if err != nil {
		return nil, fmt.Errorf("parse quote: %w", err)
	}
	return q, nil
}

func parseQuote(b []byte) (*Quote, error) {
	c := &cursor{b: b}
	hb, err := c.take(HeaderSize, "header")
	if err != nil {
		return nil, err
	}
	q := &Quote{Header: parseHeader(hb)}
	h := &q.Header
	if h.AttestationKeyType != AttestationKeyECDSAP256 {
		return nil, fmt.Errorf("%w: %d", ErrUnsupportedKeyType, h.AttestationKeyType)
	}
	switch h.Version {
	case 3:
		if h.TEEType != TEETypeSGX {
			return nil, fmt.Errorf("%w: %#x in a v3 quote", ErrUnsupportedTEE, h.TEEType)
		}
		body, err := c.take(ReportBodySize, "report body")
		if err != nil {
			return nil, err
		}
		q.Body, _ = ParseReportBody(body)
	case 4:
		switch h.TEEType {
		case TEETypeSGX:
			body, err := c.take(ReportBodySize, "report body")
			if err != nil {
				return nil, err
			}
			q.Body, _ = ParseReportBody(body)
		case TEETypeTDX:
			body, err := c.take(TDReportSize, "TD report body")
			if err != nil {
				return nil, err
			}
			q.TD = parseTDReport(body)
		default:
			return nil, fmt.Errorf("%w: %#x", ErrUnsupportedTEE, h.TEEType)
		}
	case 5:
		if q.BodyType, err = c.u16("body type"); err != nil {
			return nil, err
		}
		size, err := c.u32("body size")
		if err != nil {
			return nil, err
		}
		var want uint32
		var tee uint32
		switch q.BodyType {
		case bodyTypeSGX:
			want, tee = ReportBodySize, TEETypeSGX
		case bodyTypeTD10:
			want, tee = TDReportSize, TEETypeTDX
		case bodyTypeTD15:
			want, tee = TDReport15Size, TEETypeTDX
		default:
			return nil, fmt.Errorf("%w: v5 body type %d", ErrMalformed, q.BodyType)
		}
		if h.TEEType != TEETypeSGX && h.TEEType != TEETypeTDX {
			return nil, fmt.Errorf("%w: %#x", ErrUnsupportedTEE, h.TEEType)
		}
		if tee != h.TEEType {
			return nil, fmt.Errorf("%w: v5 body type %d with TEE type %#x", ErrMalformed, q.BodyType, h.TEEType)
		}
		if size != want {
			return nil, fmt.Errorf("%w: v5 body type %d has size %d, want %d", ErrMalformed, q.BodyType, size, want)
		}
		body, err := c.take(int(size), "report body")
		if err != nil {
			return nil, err
		}
		if tee == TEETypeSGX {
			q.Body, _ = ParseReportBody(body)
		} else {
			q.TD = parseTDReport(body)
		}
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnsupportedVersion, h.Version)
	}
	q.signed = b[:c.off:c.off]

	sigLen, err := c.u32("signature data length")
	if err != nil {
		return nil, err
	}
	if int64(sigLen) > int64(c.rest()) {
		return nil, fmt.Errorf("%w: signature data length %d, only %d bytes follow", ErrMalformed, sigLen, c.rest())
	}
	if int64(sigLen) < int64(c.rest()) {
		return nil, fmt.Errorf("%w: %d bytes after the %d-byte signature data", ErrTrailingBytes, c.rest()-int(sigLen), sigLen)
	}
	sig := &cursor{b: b[c.off:]}
	if err := q.parseSignatureData(sig); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *Quote) parseSignatureData(c *cursor) error {
	s, err := c.take(signatureSize, "quote signature")
	if err != nil {
		return err
	}
	copy(q.Signature[:], s)
	if s, err = c.take(keySize, "attestation key"); err != nil {
		return err
	}
	copy(q.AttestationKey[:], s)
	if q.Header.Version == 3 {
		if err := q.parseQEReportAndCerts(c); err != nil {
			return err
		}
	} else {
		typ, data, err := certData(c)
		if err != nil {
			return err
		}
		if typ != certDataQEReport {
			return fmt.Errorf("%w: %d, want %d (QE report certification data)", ErrUnsupportedCertData, typ, certDataQEReport)
		}
		inner := &cursor{b: data}
		if err := q.parseQEReportAndCerts(inner); err != nil {
			return err
		}
		if inner.rest() != 0 {
			return fmt.Errorf("%w: %d bytes after the QE report certification data", ErrTrailingBytes, inner.rest())
		}
	}
	if c.rest() != 0 {
		return fmt.Errorf("%w: %d bytes after the certification data", ErrTrailingBytes, c.rest())
	}
	return nil
}

// parseQEReportAndCerts reads QE report, its signature, the QE auth data and
// the PCK chain certification data: the v3 signature data tail, or the
// content of v4/v5 certification data type 6.
func (q *Quote) parseQEReportAndCerts(c *cursor) error {
	rb, err := c.take(ReportBodySize, "QE report")
	if err != nil {
		return err
	}
	r, _ := ParseReportBody(rb)
	q.QEReport = *r
	q.qeReport = rb
	s, err := c.take(signatureSize, "QE report signature")
	if err != nil {
		return err
	}
	copy(q.QEReportSignature[:], s)
	n, err := c.u16("QE auth data length")
	if err != nil {
		return err
	}
	auth, err := c.take(int(n), "QE auth data")
	if err != nil {
		return err
	}
	q.QEAuthData = auth
	typ, data, err := certData(c)
	if err != nil {
		return err
	}
	if typ != certDataPCKChain {
		return fmt.Errorf("%w: %d, want %d (PCK certificate chain)", ErrUnsupportedCertData, typ, certDataPCKChain)
	}
	q.PCKChain, err = parsePEMChain(data)
	return err
}

func certData(c *cursor) (uint16, []byte, error) {
	typ, err := c.u16("certification data type")
	if err != nil {
		return 0, nil, err
	}
	n, err := c.u32("certification data length")
	if err != nil {
		return 0, nil, err
	}
	if int64(n) > int64(c.rest()) {
		return 0, nil, fmt.Errorf("%w: certification data length %d, only %d bytes follow", ErrMalformed, n, c.rest())
	}
	data, err := c.take(int(n), "certification data")
	return typ, data, err
}

// parsePEMChain decodes a PEM certificate chain. Intel's quoting library
// appends a NUL; whitespace and NULs after the last certificate are ignored,
// anything else is an error.
func parsePEMChain(data []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	rest := data
	for {
		trimmed := bytes.TrimLeft(rest, " \t\r\n\x00")
		if len(trimmed) == 0 {
			break
		}
		var block *pem.Block
		block, rest = pem.Decode(trimmed)
		if block == nil {
			return nil, fmt.Errorf("%w: PCK chain: %d bytes of non-PEM data", ErrMalformed, len(trimmed))
		}
		// pem.Decode skips text before a block, and skips a block whose
		// base64 does not decode; the chain must have neither.
		consumed := trimmed[:len(trimmed)-len(rest)]
		if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) || bytes.Count(consumed, []byte("-----BEGIN ")) != 1 {
			return nil, fmt.Errorf("%w: PCK chain: undecodable PEM data", ErrMalformed)
		}
		if block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
			return nil, fmt.Errorf("%w: PCK chain: unexpected PEM block %q", ErrMalformed, block.Type)
		}
		if len(chain) == maxPCKChain {
			return nil, fmt.Errorf("%w: PCK chain: more than %d certificates", ErrMalformed, maxPCKChain)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PCK chain certificate %d: %v", ErrMalformed, len(chain), err)
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: PCK chain: no certificates", ErrMalformed)
	}
	return chain, nil
}
