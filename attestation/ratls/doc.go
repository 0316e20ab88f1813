// Package ratls implements attested TLS (RA-TLS): X.509 certificates that
// carry an SGX quote committing to the certificate's own key, and the
// tls.Config hooks that accept a peer only if its attestation verifies.
//
// Our certificates use the Open Enclave / EGo layout, so EGo and OE peers
// interoperate and their certificates verify here: a self-signed ECDSA P-256
// certificate with the non-critical extension 1.3.6.1.4.1.311.105.1 holding a
// 16-byte header and a raw DCAP quote whose report data is
// SHA-256(DER SubjectPublicKeyInfo) followed by 32 zero bytes.
//
// The verifier also accepts the legacy Integritee / MesaTEE format: an IAS
// attestation verification report in the Netscape comment extension, whose
// report data is the certificate key's raw X||Y.
package ratls
