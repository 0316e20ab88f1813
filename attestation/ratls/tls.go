package ratls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/attestation"
)

// VerifyPeerCertificate is a tls.Config.VerifyPeerCertificate hook: the
// peer's leaf certificate must pass VerifyCertificate. Further certificates
// the peer sends are ignored; trust comes only from the leaf's attestation.
func (v *Verifier) VerifyPeerCertificate(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	if len(rawCerts) == 0 {
		return fmt.Errorf("verify RA-TLS peer: %w: peer sent no certificate", ErrNoAttestation)
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return fmt.Errorf("verify RA-TLS peer: %w: %w", ErrCertificate, err)
	}
	_, err = v.VerifyCertificate(cert)
	return err
}

// PeerResult re-verifies the peer certificate of an established connection
// and returns its attestation, for callers that need the peer's
// measurement (tls.Config hooks have no per-connection state to carry it).
func (v *Verifier) PeerResult(cs tls.ConnectionState) (*attestation.Result, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, fmt.Errorf("verify RA-TLS peer: %w: no peer certificate", ErrNoAttestation)
	}
	return v.VerifyCertificate(cs.PeerCertificates[0])
}

// ServerConfig returns a TLS 1.3 server configuration for mutual RA-TLS:
// it presents cert and requires a client certificate that v accepts.
func ServerConfig(cert tls.Certificate, v *Verifier) (*tls.Config, error) {
	if err := check(cert, v); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// Any certificate, not a WebPKI-verified one: the client is
		// trusted for its attestation, which VerifyPeerCertificate checks.
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: v.VerifyPeerCertificate,
		// Resumed sessions skip VerifyPeerCertificate; without tickets
		// every connection is a full handshake, verified at its own time.
		SessionTicketsDisabled: true,
	}, nil
}

// ClientConfig returns a TLS 1.3 client configuration for mutual RA-TLS:
// it presents cert and accepts only a server certificate that v accepts.
func ClientConfig(cert tls.Certificate, v *Verifier) (*tls.Config, error) {
	if err := check(cert, v); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// InsecureSkipVerify disables only WebPKI chain and host name
		// checks, which mean nothing for a self-signed enclave certificate:
		// trust comes from the attestation, and VerifyPeerCertificate
		// (which Go still calls) rejects the server unless it verifies.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: v.VerifyPeerCertificate,
		// No ClientSessionCache: no resumption, so every connection is
		// verified by VerifyPeerCertificate.
	}, nil
}

func check(cert tls.Certificate, v *Verifier) error {
	if v == nil {
		return errors.New("RA-TLS config: nil verifier")
	}
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return errors.New("RA-TLS config: empty certificate")
	}
	return nil
}
