// Package pcs handles Intel's Provisioning Certification Service collateral
// for SGX DCAP verification: TCB Info (versions 2 and 3, SGX and TDX), QE
// identities (QE, TD_QE, QVE), and the PCK and root CA revocation lists, in
// the on-disk and wire formats the ecosystem uses (PCS responses with PEM
// issuer chains, Phala's dcap-qvl collateral JSON, Fortanix's files).
//
// # Exact signed bytes
//
// Intel signs the bytes of the "tcbInfo" / "enclaveIdentity" JSON value as
// PCS served them, not a canonical form. JSON has no canonical form: a
// re-serialisation may reorder keys, change number or string spelling, or
// drop unknown fields, and then no longer verifies, or worse, verifies a
// document other than the one parsed. So every parser here keeps the signed
// value byte for byte (SignedTCBInfo.Body, SignedQEIdentity.Body), verifies
// the signature over those bytes, and takes the parsed fields from those same
// bytes; Verify re-parses the body and rejects a parsed struct that was
// edited afterwards.
//
// # Validity
//
// Collateral is judged at a caller-given time, never the wall clock, so that
// a verdict is reproducible (a chain replays the verification at block time).
// A document is valid at t when its signature verifies under the first
// certificate of its chain, that certificate chains to a configured root at t
// (attestation.VerifyChain: roots anchored by subject and key, so either issue
// of Intel's re-issued certificates works) and was issued directly by that
// root, and issueDate <= t < nextUpdate (thisUpdate <= t < nextUpdate for a
// CRL). The signer's certificate is not pinned by name: the 2018 and the 2025
// issue of "Intel SGX TCB Signing" share a key, and the dev PKI of the sim
// backend has its own. Requiring a root-issued signer keeps PCK keys, which
// live on platforms, from signing collateral.
//
// TCB evaluation follows Intel's algorithm: the platform's level is the first
// listed level whose component SVNs and PCESVN the platform's all reach.
package pcs
