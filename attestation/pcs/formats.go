package pcs

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
)

// ParseCertificates reads a certificate chain in any of the encodings the
// collateral sources use: PEM blocks, URL-encoded PEM (PCS issuer-chain
// headers), concatenated DER, or bare base64 without PEM armour. Empty input
// gives an empty chain.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	// DER is binary: test for it before trimming, since its last bytes may
	// well be whitespace characters.
	if len(b) > 0 && b[0] == 0x30 {
		certs, err := x509.ParseCertificates(b)
		if err != nil {
			return nil, fmt.Errorf("%w: DER chain: %v", ErrMalformed, err)
		}
		return certs, nil
	}
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return nil, nil
	case bytes.Contains(b, []byte("BEGIN%20CERTIFICATE")) || bytes.HasPrefix(b, []byte("%2D")) || bytes.HasPrefix(b, []byte("%2d")):
		// PathUnescape, not QueryUnescape: a literal '+' is base64, not a space.
		s, err := url.PathUnescape(string(b))
		if err != nil {
			return nil, fmt.Errorf("%w: URL-encoded chain: %v", ErrMalformed, err)
		}
		return parsePEMCertificates([]byte(s))
	case bytes.Contains(b, []byte("-----BEGIN")):
		return parsePEMCertificates(b)
	default:
		der, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(b), nil)))
		if err != nil {
			return nil, fmt.Errorf("%w: chain is neither PEM, DER nor base64: %v", ErrMalformed, err)
		}
		certs, err := x509.ParseCertificates(der)
		if err != nil {
			return nil, fmt.Errorf("%w: base64 chain: %v", ErrMalformed, err)
		}
		return certs, nil
	}
}

func parsePEMCertificates(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: unexpected PEM block %q in chain", ErrMalformed, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrMalformed, len(certs), err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(b)) != 0 || len(certs) == 0 {
		return nil, fmt.Errorf("%w: garbage in PEM chain", ErrMalformed)
	}
	return certs, nil
}

// ParseCRL parses a CRL given as DER, PEM, or hex text of DER (several
// sources ship hex under a .der name), with its issuer chain (any encoding
// ParseCertificates accepts; empty for a list issued by a root). The list
// must carry a nextUpdate, since validity is judged by it.
func ParseCRL(data, chainPEM []byte) (*CRL, error) {
	der, err := crlDER(data)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w: %v", ErrMalformed, err)
	}
	if l.NextUpdate.IsZero() {
		return nil, fmt.Errorf("parse CRL: %w: no nextUpdate", ErrMalformed)
	}
	chain, err := ParseCertificates(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: issuer chain: %w", err)
	}
	return &CRL{List: l, Chain: chain}, nil
}

func crlDER(data []byte) ([]byte, error) {
	t := bytes.TrimSpace(data)
	if bytes.HasPrefix(t, []byte("-----BEGIN")) {
		block, rest := pem.Decode(t)
		if block == nil || block.Type != "X509 CRL" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, fmt.Errorf("%w: want a single X509 CRL PEM block", ErrMalformed)
		}
		return block.Bytes, nil
	}
	if len(t) > 0 && isHex(t) {
		der, err := hex.DecodeString(string(t))
		if err != nil {
			return nil, fmt.Errorf("%w: hex CRL: %v", ErrMalformed, err)
		}
		return der, nil
	}
	return data, nil
}

// isHex reports whether b is only hex digits. DER never is: its length
// bytes after the leading SEQUENCE tag (0x30, '0') are not all digits.
func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// ParseQVLCollateral parses the collateral JSON of Phala's dcap-qvl
// (QuoteCollateralV3, sgx_quote_collateral.json): the signed bodies are JSON
// strings holding the exact signed bytes, signatures are hex r||s, chains
// PEM, CRLs hex DER. The root CA CRL is given the PCK CRL issuer chain, which
// ends in the root.
func ParseQVLCollateral(b []byte) (*Collateral, error) {
	var j struct {
		PCKCRLIssuerChain     string          `json:"pck_crl_issuer_chain"`
		RootCACRL             string          `json:"root_ca_crl"`
		PCKCRL                string          `json:"pck_crl"`
		TCBInfoIssuerChain    string          `json:"tcb_info_issuer_chain"`
		TCBInfo               json.RawMessage `json:"tcb_info"`
		TCBInfoSignature      string          `json:"tcb_info_signature"`
		QEIdentityIssuerChain string          `json:"qe_identity_issuer_chain"`
		QEIdentity            json.RawMessage `json:"qe_identity"`
		QEIdentitySignature   string          `json:"qe_identity_signature"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("parse QVL collateral: %w: %v", ErrMalformed, err)
	}
	var c Collateral
	var err error
	if c.TCBInfo, err = qvlSigned(j.TCBInfo, j.TCBInfoSignature, j.TCBInfoIssuerChain, newSignedTCBInfo); err != nil {
		return nil, fmt.Errorf("parse QVL collateral: tcb_info: %w", err)
	}
	if c.QEIdentity, err = qvlSigned(j.QEIdentity, j.QEIdentitySignature, j.QEIdentityIssuerChain, newSignedQEIdentity); err != nil {
		return nil, fmt.Errorf("parse QVL collateral: qe_identity: %w", err)
	}
	if j.PCKCRL != "" {
		if c.PCKCRL, err = ParseCRL([]byte(j.PCKCRL), []byte(j.PCKCRLIssuerChain)); err != nil {
			return nil, fmt.Errorf("parse QVL collateral: pck_crl: %w", err)
		}
	}
	if j.RootCACRL != "" {
		if c.RootCRL, err = ParseCRL([]byte(j.RootCACRL), []byte(j.PCKCRLIssuerChain)); err != nil {
			return nil, fmt.Errorf("parse QVL collateral: root_ca_crl: %w", err)
		}
	}
	return &c, nil
}

// qvlSigned decodes one signed document of the QVL format. The body is
// normally a JSON string of the signed bytes; an inline object is taken
// verbatim.
func qvlSigned[T any](raw json.RawMessage, sigHex, chainPEM string, build func(body, sig []byte, chain []*x509.Certificate) (T, error)) (T, error) {
	var zero T
	body := []byte(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return zero, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		body = []byte(s)
	}
	sig, err := decodeSignatureHex(sigHex)
	if err != nil {
		return zero, err
	}
	chain, err := ParseCertificates([]byte(chainPEM))
	if err != nil {
		return zero, fmt.Errorf("issuer chain: %w", err)
	}
	return build(body, sig, chain)
}

// fortanixSigned is Fortanix rust-sgx's on-disk form of a signed document
// (.tcb, .id): the exact signed JSON as a string, an ASN.1 DER ECDSA
// signature as an array of byte values, and the chain as PEM strings.
type fortanixSigned struct {
	RawTCBInfo         *string  `json:"raw_tcb_info"`
	RawEnclaveIdentity *string  `json:"raw_enclave_identity"`
	Signature          []int    `json:"signature"`
	CAChain            []string `json:"ca_chain"`
}

func (f *fortanixSigned) decode() (sig []byte, chain []*x509.Certificate, err error) {
	der := make([]byte, len(f.Signature))
	for i, v := range f.Signature {
		if v < 0 || v > 0xff {
			return nil, nil, fmt.Errorf("%w: signature byte %d out of range", ErrMalformed, v)
		}
		der[i] = byte(v)
	}
	if sig, err = derToRaw(der); err != nil {
		return nil, nil, err
	}
	chain, err = parseCAChain(f.CAChain)
	return sig, chain, err
}

// ParseFortanixTCBInfo parses Fortanix's .tcb file format.
func ParseFortanixTCBInfo(b []byte) (*SignedTCBInfo, error) {
	var f fortanixSigned
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse Fortanix TCB info: %w: %v", ErrMalformed, err)
	}
	if f.RawTCBInfo == nil {
		return nil, fmt.Errorf("parse Fortanix TCB info: %w: no raw_tcb_info", ErrMalformed)
	}
	sig, chain, err := f.decode()
	if err != nil {
		return nil, fmt.Errorf("parse Fortanix TCB info: %w", err)
	}
	return newSignedTCBInfo([]byte(*f.RawTCBInfo), sig, chain)
}

// ParseFortanixQEIdentity parses Fortanix's .id file format.
func ParseFortanixQEIdentity(b []byte) (*SignedQEIdentity, error) {
	var f fortanixSigned
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse Fortanix QE identity: %w: %v", ErrMalformed, err)
	}
	if f.RawEnclaveIdentity == nil {
		return nil, fmt.Errorf("parse Fortanix QE identity: %w: no raw_enclave_identity", ErrMalformed)
	}
	sig, chain, err := f.decode()
	if err != nil {
		return nil, fmt.Errorf("parse Fortanix QE identity: %w", err)
	}
	return newSignedQEIdentity([]byte(*f.RawEnclaveIdentity), sig, chain)
}

// ParseFortanixCRL parses Fortanix's .crl format {"crl": PEM, "ca_chain": [PEM...]}.
func ParseFortanixCRL(b []byte) (*CRL, error) {
	var f struct {
		CRL     string   `json:"crl"`
		CAChain []string `json:"ca_chain"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse Fortanix CRL: %w: %v", ErrMalformed, err)
	}
	chain, err := parseCAChain(f.CAChain)
	if err != nil {
		return nil, fmt.Errorf("parse Fortanix CRL: %w", err)
	}
	crl, err := ParseCRL([]byte(f.CRL), nil)
	if err != nil {
		return nil, fmt.Errorf("parse Fortanix CRL: %w", err)
	}
	crl.Chain = chain
	return crl, nil
}

// ParseFortanixPCKCert parses Fortanix's .pckcert format
// {"cert": PEM, "ca_chain": [PEM...]} into a chain, leaf first.
func ParseFortanixPCKCert(b []byte) ([]*x509.Certificate, error) {
	var f struct {
		Cert    string   `json:"cert"`
		CAChain []string `json:"ca_chain"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse Fortanix PCK cert: %w: %v", ErrMalformed, err)
	}
	leaf, err := ParseCertificates([]byte(f.Cert))
	if err != nil || len(leaf) != 1 {
		return nil, fmt.Errorf("parse Fortanix PCK cert: %w: want one leaf certificate", ErrMalformed)
	}
	chain, err := parseCAChain(f.CAChain)
	if err != nil {
		return nil, fmt.Errorf("parse Fortanix PCK cert: %w", err)
	}
	return append(leaf, chain...), nil
}

func parseCAChain(pems []string) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for i, p := range pems {
		certs, err := ParseCertificates([]byte(p))
		if err != nil {
			return nil, fmt.Errorf("ca_chain[%d]: %w", i, err)
		}
		chain = append(chain, certs...)
	}
	return chain, nil
}

// derToRaw converts an ASN.1 DER ECDSA-Sig-Value to Intel's 64-byte r||s.
func derToRaw(der []byte) ([]byte, error) {
	var v struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &v)
	if err != nil {
		return nil, fmt.Errorf("%w: DER signature: %v", ErrMalformed, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes after DER signature", ErrMalformed)
	}
	if v.R.Sign() <= 0 || v.S.Sign() <= 0 || v.R.BitLen() > 256 || v.S.BitLen() > 256 {
		return nil, fmt.Errorf("%w: DER signature integers out of range", ErrMalformed)
	}
	raw := make([]byte, 64)
	v.R.FillBytes(raw[:32])
	v.S.FillBytes(raw[32:])
	return raw, nil
}
