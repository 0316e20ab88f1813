package sim

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/integritee-go/integritee/attestation/dcap"
)

// DefaultSeed seeds the shared dev PKI. It is public: anyone can derive the
// dev root key from it and forge quotes that the dev root accepts. Use it for
// local development and tests only, never where attestation has to mean
// anything.
const DefaultSeed = "integritee-go dev sgx pki: PUBLIC AND INSECURE, development only"

// TestSeed seeds the test PKI of enclaves built with production rules for
// tests (cmd/integritee-enclave's `testtee` build tag): a trust root that is
// not the dev chain's, so production builds are exercised without SGX and
// never accept dev-PKI peers. Public too: never trust it on a real chain.
const TestSeed = "integritee-go test sgx pki: production rules without SGX, PUBLIC AND INSECURE, tests only"

// Subjects of the dev hierarchy. Verifiers anchor on the root's subject and
// key, so certificates may be regenerated freely from the same seed.
const (
	RootCommonName       = "Integritee Dev SGX Root CA"
	PCKCACommonName      = "Integritee Dev SGX PCK Processor CA"
	PCKCommonName        = "Integritee Dev SGX PCK Certificate"
	TCBSigningCommonName = "Integritee Dev SGX TCB Signing"
	organization         = "Integritee Dev (insecure, development only)"
)

// Files written by WriteFiles and read by LoadPKI. Keys are PKCS#8 PEM.
const (
	RootCertFile       = "dev-sgx-root-ca.pem"
	RootKeyFile        = "dev-sgx-root-ca.key"
	PCKCACertFile      = "dev-sgx-pck-ca.pem"
	PCKCAKeyFile       = "dev-sgx-pck-ca.key"
	PCKCertFile        = "dev-sgx-pck.pem"
	PCKKeyFile         = "dev-sgx-pck.key"
	TCBSigningCertFile = "dev-sgx-tcb-signing.pem"
	TCBSigningKeyFile  = "dev-sgx-tcb-signing.key"
)

// minSeedLen guards against accidentally empty or trivial seeds.
const minSeedLen = 16

// Dev platform values carried by the PCK certificate and matched by the dev
// TCB info. PCEID 0000 is what every Intel platform has.
const (
	devPCESVN  = 13
	devSGXType = 0 // Standard
)

func devFMSPC() [6]byte { return [6]byte{0x00, 0xde, 0x5e, 0x00, 0x00, 0x00} }

func devPCEID() [2]byte { return [2]byte{0x00, 0x00} }

func devCompSVN() [16]uint8 {
	return [16]uint8{7, 7, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}
}

// PKI is a dev SGX provisioning hierarchy standing in for Intel's:
//
//	Integritee Dev SGX Root CA
//	├── Integritee Dev SGX PCK Processor CA
//	│   └── Integritee Dev SGX PCK Certificate  (Intel SGX extensions, signs QE reports)
//	└── Integritee Dev SGX TCB Signing           (signs TCB info and QE identity)
//
// Quotes and collateral it produces verify with the real DCAP verifier when
// its Root is the trusted root.
type PKI struct {
	rootKey, pckCAKey, pckKey, tcbKey *ecdsa.PrivateKey
	root, pckCA, pck, tcb             *x509.Certificate
	ext                               dcap.PCKExtensions
	// secret derives the backends' attestation keys and default sealing
	// secret. It comes from the root key, so a PKI loaded from files derives
	// the same values as the one that wrote them.
	secret []byte
}

// NewPKI derives the dev hierarchy deterministically from seed: the same
// seed gives the same keys, subjects and serial numbers (only the ECDSA
// signatures of the certificates differ between runs).
func NewPKI(seed []byte) (*PKI, error) {
	if len(seed) < minSeedLen {
		return nil, fmt.Errorf("sim: new PKI: seed is %d bytes, want at least %d", len(seed), minSeedLen)
	}
	var p PKI
	for _, k := range []struct {
		dst   **ecdsa.PrivateKey
		label string
	}{
		{&p.rootKey, "root ca"},
		{&p.pckCAKey, "pck processor ca"},
		{&p.pckKey, "pck"},
		{&p.tcbKey, "tcb signing"},
	} {
		key, err := deriveKey(seed, "integritee dev sgx pki key: "+k.label)
		if err != nil {
			return nil, fmt.Errorf("sim: new PKI: %w", err)
		}
		*k.dst = key
	}
	ppid, err := hkdf.Key(sha256.New, seed, nil, "integritee dev sgx pki: ppid", 16)
	if err != nil {
		return nil, fmt.Errorf("sim: new PKI: %w", err)
	}
	p.ext = dcap.PCKExtensions{
		CompSVN: devCompSVN(),
		PCESVN:  devPCESVN,
		CPUSVN:  devCompSVN(),
		PCEID:   devPCEID(),
		FMSPC:   devFMSPC(),
		SGXType: devSGXType,
	}
	copy(p.ext.PPID[:], ppid)
	if err := p.issue(); err != nil {
		return nil, fmt.Errorf("sim: new PKI: %w", err)
	}
	if err := p.deriveSecret(); err != nil {
		return nil, fmt.Errorf("sim: new PKI: %w", err)
	}
	return &p, nil
}

// Root returns the dev root CA certificate: the trust anchor verifiers of a
// dev chain configure instead of Intel's SGX Root CA.
func (p *PKI) Root() *x509.Certificate { return p.root }

// PCKChain returns the PCK certificate chain embedded in quotes, leaf first,
// root last.
func (p *PKI) PCKChain() []*x509.Certificate {
	return []*x509.Certificate{p.pck, p.pckCA, p.root}
}

// TCBSigningChain returns the chain that signs collateral, signer first.
func (p *PKI) TCBSigningChain() []*x509.Certificate {
	return []*x509.Certificate{p.tcb, p.root}
}

// issue creates the four certificates from the keys and p.ext.
func (p *PKI) issue() error {
	ext, err := p.ext.Extension()
	if err != nil {
		return fmt.Errorf("encode SGX extensions: %w", err)
	}
	ca := x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	leaf := x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment

	root := template(RootCommonName, ca)
	root.IsCA, root.MaxPathLen = true, 1
	if p.root, err = createCert(root, root, p.rootKey, p.rootKey); err != nil {
		return err
	}
	pckCA := template(PCKCACommonName, ca)
	pckCA.IsCA, pckCA.MaxPathLen, pckCA.MaxPathLenZero = true, 0, true
	if p.pckCA, err = createCert(pckCA, p.root, p.pckCAKey, p.rootKey); err != nil {
		return err
	}
	pck := template(PCKCommonName, leaf)
	pck.ExtraExtensions = []pkix.Extension{ext}
	if p.pck, err = createCert(pck, p.pckCA, p.pckKey, p.pckCAKey); err != nil {
		return err
	}
	tcb := template(TCBSigningCommonName, leaf)
	if p.tcb, err = createCert(tcb, p.root, p.tcbKey, p.rootKey); err != nil {
		return err
	}
	return nil
}

func template(cn string, usage x509.KeyUsage) *x509.Certificate {
	// Deterministic, positive 127-bit serial from the subject.
	h := sha256.Sum256([]byte("integritee dev sgx serial: " + cn))
	h[0] &= 0x7f
	return &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(h[:16]),
		Subject: pkix.Name{
			CommonName:   cn,
			Organization: []string{organization},
		},
		// Generous, fixed validity: the hierarchy is deterministic, so it
		// must not depend on when it was generated.
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage:              usage,
		BasicConstraintsValid: true,
		SignatureAlgorithm:    x509.ECDSAWithSHA256,
	}
}

func createCert(tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, fmt.Errorf("create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return c, nil
}

func (p *PKI) deriveSecret() error {
	raw, err := p.rootKey.Bytes()
	if err != nil {
		return err
	}
	p.secret, err = hkdf.Key(sha256.New, raw, nil, "integritee dev sgx pki: backend secret", 32)
	return err
}

// deriveKey derives a P-256 key from secret and label. A candidate scalar
// that is zero or not below the group order (probability about 2^-32) is
// rejected and the next counter tried, so the result stays uniform.
func deriveKey(secret []byte, label string) (*ecdsa.PrivateKey, error) {
	for i := range 8 {
		b, err := hkdf.Key(sha256.New, secret, nil, fmt.Sprintf("%s #%d", label, i), 32)
		if err != nil {
			return nil, fmt.Errorf("derive key %q: %w", label, err)
		}
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("derive key %q: no valid scalar", label)
}

// WriteFiles writes the certificates (0644) and keys (0600) as PEM to dir,
// creating it if needed. The key files are as secret as the seed.
func (p *PKI) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sim: write PKI: %w", err)
	}
	for _, e := range p.entries() {
		if err := writePEM(filepath.Join(dir, e.certFile), "CERTIFICATE", e.cert.Raw, 0o644); err != nil {
			return fmt.Errorf("sim: write PKI: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(e.key)
		if err != nil {
			return fmt.Errorf("sim: write PKI: marshal %s: %w", e.keyFile, err)
		}
		if err := writePEM(filepath.Join(dir, e.keyFile), "PRIVATE KEY", der, 0o600); err != nil {
			return fmt.Errorf("sim: write PKI: %w", err)
		}
	}
	return nil
}

type entry struct {
	certFile, keyFile string
	cert              *x509.Certificate
	key               *ecdsa.PrivateKey
}

func (p *PKI) entries() []entry {
	return []entry{
		{RootCertFile, RootKeyFile, p.root, p.rootKey},
		{PCKCACertFile, PCKCAKeyFile, p.pckCA, p.pckCAKey},
		{PCKCertFile, PCKKeyFile, p.pck, p.pckKey},
		{TCBSigningCertFile, TCBSigningKeyFile, p.tcb, p.tcbKey},
	}
}

func writePEM(path, typ string, der []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	// An existing file keeps its mode on open; enforce ours.
	err = f.Chmod(perm)
	if err == nil {
		err = pem.Encode(f, &pem.Block{Type: typ, Bytes: der})
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ErrInvalidPKI means files read by LoadPKI do not form a dev hierarchy.
var ErrInvalidPKI = errors.New("sim: invalid PKI")

// LoadPKI reads a hierarchy written by WriteFiles and checks that each key
// matches its certificate and each certificate is signed by its issuer.
func LoadPKI(dir string) (*PKI, error) {
	var p PKI
	for _, e := range []struct {
		certFile, keyFile string
		cert              **x509.Certificate
		key               **ecdsa.PrivateKey
	}{
		{RootCertFile, RootKeyFile, &p.root, &p.rootKey},
		{PCKCACertFile, PCKCAKeyFile, &p.pckCA, &p.pckCAKey},
		{PCKCertFile, PCKKeyFile, &p.pck, &p.pckKey},
		{TCBSigningCertFile, TCBSigningKeyFile, &p.tcb, &p.tcbKey},
	} {
		c, err := readCert(filepath.Join(dir, e.certFile))
		if err != nil {
			return nil, fmt.Errorf("sim: load PKI: %w", err)
		}
		k, err := readKey(filepath.Join(dir, e.keyFile))
		if err != nil {
			return nil, fmt.Errorf("sim: load PKI: %w", err)
		}
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || !pub.Equal(&k.PublicKey) {
			return nil, fmt.Errorf("%w: %s does not match %s", ErrInvalidPKI, e.keyFile, e.certFile)
		}
		*e.cert, *e.key = c, k
	}
	for _, s := range []struct {
		child, parent *x509.Certificate
	}{
		{p.root, p.root}, {p.pckCA, p.root}, {p.pck, p.pckCA}, {p.tcb, p.root},
	} {
		if !bytes.Equal(s.child.RawIssuer, s.parent.RawSubject) {
			return nil, fmt.Errorf("%w: %q is not issued by %q", ErrInvalidPKI, s.child.Subject.CommonName, s.parent.Subject.CommonName)
		}
		if err := s.child.CheckSignatureFrom(s.parent); err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrInvalidPKI, s.child.Subject.CommonName, err)
		}
	}
	ext, err := dcap.ParsePCKExtensions(p.pck)
	if err != nil {
		return nil, fmt.Errorf("%w: PCK certificate: %v", ErrInvalidPKI, err)
	}
	p.ext = *ext
	if err := p.deriveSecret(); err != nil {
		return nil, fmt.Errorf("sim: load PKI: %w", err)
	}
	return &p, nil
}

func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("%w: %s: no PEM %s block", ErrInvalidPKI, path, typ)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: %s: trailing data after PEM block", ErrInvalidPKI, path)
	}
	return blk.Bytes, nil
}

func readCert(path string) (*x509.Certificate, error) {
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidPKI, path, err)
	}
	return c, nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidPKI, path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: %s: not a P-256 ECDSA key", ErrInvalidPKI, path)
	}
	return ek, nil
}
