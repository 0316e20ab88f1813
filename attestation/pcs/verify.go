package pcs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"math/big"
	"reflect"
	"time"

	"github.com/integritee-go/integritee/attestation"
)

// Verify checks every document of the collateral at time at: signatures,
// signing chains to roots and validity windows. TCBInfo and QEIdentity are
// required; CRLs are checked when present. Revocation of a particular PCK
// chain is CheckRevocation's job.
func (c *Collateral) Verify(roots []*x509.Certificate, at time.Time) error {
	if c == nil || c.TCBInfo == nil {
		return fmt.Errorf("verify collateral: %w: TCB info", ErrMissing)
	}
	if c.QEIdentity == nil {
		return fmt.Errorf("verify collateral: %w: QE identity", ErrMissing)
	}
	if err := c.TCBInfo.Verify(roots, at); err != nil {
		return err
	}
	if err := c.QEIdentity.Verify(roots, at); err != nil {
		return err
	}
	if c.PCKCRL != nil {
		if err := c.PCKCRL.Verify(roots, at); err != nil {
			return fmt.Errorf("PCK CRL: %w", err)
		}
	}
	if c.RootCRL != nil {
		if err := c.RootCRL.Verify(roots, at); err != nil {
			return fmt.Errorf("root CA CRL: %w", err)
		}
	}
	return nil
}

// Verify checks the TCB info's signature, its signing chain to roots at at,
// and that at lies in [issueDate, nextUpdate).
func (s *SignedTCBInfo) Verify(roots []*x509.Certificate, at time.Time) error {
	if err := verifySignature(s.Body, s.Signature, s.Chain); err != nil {
		return fmt.Errorf("verify TCB info: %w", err)
	}
	// Info is exported and could have been edited after parsing: only what
	// the signature covers may be trusted.
	info, err := parseTCBInfoBody(s.Body)
	if err != nil {
		return fmt.Errorf("verify TCB info: %w", err)
	}
	if !reflect.DeepEqual(*info, s.Info) {
		return fmt.Errorf("verify TCB info: %w: parsed info differs from the signed body", ErrMalformed)
	}
	if err := checkWindow(s.Info.IssueDate, s.Info.NextUpdate, at); err != nil {
		return fmt.Errorf("verify TCB info: %w", err)
	}
	if err := verifySigningChain(s.Chain, roots, at); err != nil {
		return fmt.Errorf("verify TCB info: %w", err)
	}
	return nil
}

// Verify checks the QE identity's signature, its signing chain to roots at
// at, and that at lies in [issueDate, nextUpdate).
func (s *SignedQEIdentity) Verify(roots []*x509.Certificate, at time.Time) error {
	if err := verifySignature(s.Body, s.Signature, s.Chain); err != nil {
		return fmt.Errorf("verify QE identity: %w", err)
	}
	id, err := parseQEIdentityBody(s.Body)
	if err != nil {
		return fmt.Errorf("verify QE identity: %w", err)
	}
	if !reflect.DeepEqual(*id, s.Identity) {
		return fmt.Errorf("verify QE identity: %w: parsed identity differs from the signed body", ErrMalformed)
	}
	if err := checkWindow(s.Identity.IssueDate, s.Identity.NextUpdate, at); err != nil {
		return fmt.Errorf("verify QE identity: %w", err)
	}
	if err := verifySigningChain(s.Chain, roots, at); err != nil {
		return fmt.Errorf("verify QE identity: %w", err)
	}
	return nil
}

// Verify checks the CRL's signature by its issuer (found by name in Chain,
// or among roots), the issuer's chain to roots at at, and that at lies in
// [thisUpdate, nextUpdate).
func (c *CRL) Verify(roots []*x509.Certificate, at time.Time) error {
	if c == nil || c.List == nil {
		return fmt.Errorf("verify CRL: %w", ErrMissing)
	}
	issuerChain, err := c.issuerChain(roots)
	if err != nil {
		return fmt.Errorf("verify CRL: %w", err)
	}
	if err := checkWindow(c.List.ThisUpdate, c.List.NextUpdate, at); err != nil {
		return fmt.Errorf("verify CRL: %w", err)
	}
	if _, err := attestation.VerifyChain(issuerChain, roots, at); err != nil {
		return fmt.Errorf("verify CRL: %w: %w", ErrChain, err)
	}
	return nil
}

// issuerChain returns the chain starting at the certificate that signed the
// list: from Chain if it holds the issuer, else a configured root.
func (c *CRL) issuerChain(roots []*x509.Certificate) ([]*x509.Certificate, error) {
	nameSeen := false
	for i, cert := range c.Chain {
		if !bytes.Equal(cert.RawSubject, c.List.RawIssuer) {
			continue
		}
		nameSeen = true
		if c.List.CheckSignatureFrom(cert) == nil {
			return c.Chain[i:], nil
		}
	}
	for _, r := range roots {
		if !bytes.Equal(r.RawSubject, c.List.RawIssuer) {
			continue
		}
		nameSeen = true
		if c.List.CheckSignatureFrom(r) == nil {
			return []*x509.Certificate{r}, nil
		}
	}
	if nameSeen {
		return nil, fmt.Errorf("%w: CRL signature does not verify under its issuer", ErrSignature)
	}
	return nil, fmt.Errorf("%w: issuer %q not in the CRL's chain or the roots", ErrCRLIssuer, issuerName(c.List))
}

// CheckRevocation checks a verified PCK path (leaf first, root last) against
// the CRLs. The PCK CRL must have been issued by path[1] (matched by name and
// key) and must not list path[0]; the root CA CRL must have been issued by
// the root and must not list the certificate the root issued. A CRL from
// another CA is an error, never a silent pass. Absent CRLs are not checked.
func (c *Collateral) CheckRevocation(path []*x509.Certificate) error {
	if len(path) < 2 {
		return fmt.Errorf("check revocation: PCK path has %d certificates, want at least 2", len(path))
	}
	if c.PCKCRL != nil {
		if err := checkListed(c.PCKCRL, path[1], path[0]); err != nil {
			return fmt.Errorf("check revocation: PCK CRL: %w", err)
		}
	}
	if c.RootCRL != nil {
		root := path[len(path)-1]
		if err := checkListed(c.RootCRL, root, path[len(path)-2]); err != nil {
			return fmt.Errorf("check revocation: root CA CRL: %w", err)
		}
	}
	return nil
}

func checkListed(crl *CRL, issuer, cert *x509.Certificate) error {
	if crl.List == nil {
		return fmt.Errorf("%w: no list", ErrMissing)
	}
	if !bytes.Equal(crl.List.RawIssuer, issuer.RawSubject) {
		return fmt.Errorf("%w: CRL issuer %q, certificate issuer %q", ErrCRLIssuer, issuerName(crl.List), issuer.Subject)
	}
	if err := crl.List.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("%w: CRL not signed by %q: %v", ErrCRLIssuer, issuer.Subject, err)
	}
	for _, e := range crl.List.RevokedCertificateEntries {
		if e.SerialNumber != nil && e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return fmt.Errorf("%w: %q serial %x (revoked %s)", ErrRevoked, cert.Subject, cert.SerialNumber, e.RevocationTime.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

func issuerName(l *x509.RevocationList) string { return l.Issuer.String() }

// verifySignature checks a raw r||s signature over body by chain[0].
func verifySignature(body, sig []byte, chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w: no signing chain", ErrChain)
	}
	return verifyRaw(chain[0], body, sig)
}

// verifySigningChain checks that chain[0] chains to a trusted root at at and
// was issued directly by it. The second rule keeps keys that live on
// platforms (PCK keys, one level further down) from signing collateral,
// without pinning Intel's certificate names.
func verifySigningChain(chain, roots []*x509.Certificate, at time.Time) error {
	path, err := attestation.VerifyChain(chain, roots, at)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrChain, err)
	}
	if len(path) != 2 {
		return fmt.Errorf("%w: signing certificate %q is not issued directly by a root (path length %d)", ErrChain, chain[0].Subject, len(path))
	}
	return nil
}

func verifyRaw(cert *x509.Certificate, body, sig []byte) error {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return fmt.Errorf("%w: signing key of %q is not ECDSA P-256", ErrSignature, cert.Subject)
	}
	if len(sig) != 64 {
		return fmt.Errorf("%w: signature is %d bytes, want 64", ErrSignature, len(sig))
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	h := sha256.Sum256(body)
	if !ecdsa.Verify(pub, h[:], r, s) {
		return fmt.Errorf("%w: by %q", ErrSignature, cert.Subject)
	}
	return nil
}

func checkWindow(from, until, at time.Time) error {
	if at.Before(from) {
		return fmt.Errorf("%w: valid from %s, now %s", ErrNotYetValid, from.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	if !at.Before(until) {
		return fmt.Errorf("%w: valid until %s, now %s", ErrExpired, until.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	return nil
}
