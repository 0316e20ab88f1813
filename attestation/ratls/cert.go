package ratls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/integritee-go/integritee/tee"
)

// oidQuote is the Open Enclave / EGo extension carrying an SGX quote
// (unexported: an exported slice could be changed by any importer).
var oidQuote = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 105, 1}

// oidNetscapeComment carries the IAS evidence of Integritee/MesaTEE certs.
var oidNetscapeComment = asn1.ObjectIdentifier{2, 16, 840, 1, 113730, 1, 13}

// Header values of the OE extension.
const (
	extHeaderLen      = 16
	extVersion        = 1
	extReportTypeDCAP = 2 // OE_REPORT_TYPE_SGX_REMOTE
	// maxQuoteLen bounds the quote we accept; real DCAP quotes with a PEM
	// PCK chain are ~5 KiB.
	maxQuoteLen = 64 << 10
)

// ErrMalformedExtension is returned for an extension that is not a
// well-formed OE header followed by exactly report_size quote bytes.
var ErrMalformedExtension = errors.New("malformed RA-TLS quote extension")

// ParseExtension returns the quote carried in an OE/EGo quote extension
// value. It accepts only version 1, report type 2 (remote SGX) and a report
// size that matches the remaining bytes exactly.
func ParseExtension(ext []byte) ([]byte, error) {
	if len(ext) < extHeaderLen {
		return nil, fmt.Errorf("%w: %d bytes, header needs %d", ErrMalformedExtension, len(ext), extHeaderLen)
	}
	if v := binary.LittleEndian.Uint32(ext[0:4]); v != extVersion {
		return nil, fmt.Errorf("%w: version %d", ErrMalformedExtension, v)
	}
	if t := binary.LittleEndian.Uint32(ext[4:8]); t != extReportTypeDCAP {
		return nil, fmt.Errorf("%w: report type %d", ErrMalformedExtension, t)
	}
	size := binary.LittleEndian.Uint64(ext[8:16])
	body := ext[extHeaderLen:]
	if size == 0 || size > maxQuoteLen || size != uint64(len(body)) {
		return nil, fmt.Errorf("%w: report size %d, %d bytes follow", ErrMalformedExtension, size, len(body))
	}
	return body, nil
}

// MarshalExtension encodes a quote as an OE/EGo quote extension value.
func MarshalExtension(quote []byte) ([]byte, error) {
	if len(quote) == 0 || len(quote) > maxQuoteLen {
		return nil, fmt.Errorf("%w: quote of %d bytes", ErrMalformedExtension, len(quote))
	}
	ext := make([]byte, extHeaderLen, extHeaderLen+len(quote))
	binary.LittleEndian.PutUint32(ext[0:4], extVersion)
	binary.LittleEndian.PutUint32(ext[4:8], extReportTypeDCAP)
	binary.LittleEndian.PutUint64(ext[8:16], uint64(len(quote)))
	return append(ext, quote...), nil
}

// ReportData returns the report data an RA-TLS quote must carry for a
// certificate with this DER SubjectPublicKeyInfo.
func ReportData(spkiDER []byte) [64]byte {
	var rd [64]byte
	h := sha256.Sum256(spkiDER)
	copy(rd[:32], h[:])
	return rd
}

// CertOptions configures NewCertificate. The zero value is usable.
type CertOptions struct {
	// CommonName of subject and issuer; default "integritee-enclave".
	CommonName string
	// Validity is the certificate lifetime; default DefaultValidity. Keep it
	// short: the key lives only in enclave memory, and a short life bounds
	// how long a certificate outlives a TCB recovery of its platform.
	Validity time.Duration
	// Now is the issue time; default time.Now().
	Now time.Time
	// DNSNames, if any, are added as subject alternative names. Peers do not
	// rely on them (trust comes from the attestation), but some TLS stacks
	// want a name to match.
	DNSNames []string
}

// DefaultValidity is the lifetime of a certificate when CertOptions leaves
// it unset.
const DefaultValidity = 24 * time.Hour

// clockSkew backdates NotBefore so peers with a slightly slow clock accept
// a fresh certificate.
const clockSkew = time.Minute

// NewCertificate creates a fresh P-256 key inside the enclave, obtains a
// quote over the hash of its SubjectPublicKeyInfo from backend, and returns
// a self-signed certificate carrying that quote, usable as a TLS server or
// client certificate.
func NewCertificate(backend tee.Backend, opts CertOptions) (tls.Certificate, error) {
	if backend == nil {
		return tls.Certificate{}, errors.New("new RA-TLS certificate: nil TEE backend")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("new RA-TLS certificate: generate key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("new RA-TLS certificate: marshal key: %w", err)
	}
	quote, err := backend.Quote(ReportData(spki))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("new RA-TLS certificate: quote: %w", err)
	}
	ext, err := MarshalExtension(quote)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("new RA-TLS certificate: %w", err)
	}
	der, err := selfSign(key, ext, opts)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("new RA-TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("new RA-TLS certificate: parse own certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// selfSign builds the certificate around key and the quote extension value.
func selfSign(key *ecdsa.PrivateKey, ext []byte, opts CertOptions) ([]byte, error) {
	cn := opts.CommonName
	if cn == "" {
		cn = "integritee-enclave"
	}
	validity := opts.Validity
	if validity <= 0 {
		validity = DefaultValidity
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	name := pkix.Name{CommonName: cn}
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         name,
		Issuer:          name,
		NotBefore:       now.Add(-clockSkew).UTC(),
		NotAfter:        now.Add(validity).UTC(),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:        opts.DNSNames,
		ExtraExtensions: []pkix.Extension{{Id: oidQuote, Value: ext}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	return der, nil
}
