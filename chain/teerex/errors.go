package teerex

import "github.com/integritee-go/integritee/chain/runtime"

// Errors of this module's calls (codespace "teerex"), one per rejection
// class. Verification errors wrap the attestation library's error too, so
// errors.Is works for both (e.g. ErrInvalidCollateral and pcs.ErrExpired).
// Never renumber: clients match on (codespace, code).
var (
	ErrNotSudo             = runtime.NewError(Name, 1, "sender is not the sudo key")
	ErrMalformedEvidence   = runtime.NewError(Name, 2, "malformed attestation evidence")
	ErrUnsupportedEvidence = runtime.NewError(Name, 3, "unsupported attestation evidence")
	ErrUntrustedRoot       = runtime.NewError(Name, 4, "attestation does not chain to a trusted root")
	ErrInvalidCertificate  = runtime.NewError(Name, 5, "attestation certificate chain invalid")
	ErrInvalidSignature    = runtime.NewError(Name, 6, "attestation signature invalid")
	ErrNoCollateral        = runtime.NewError(Name, 7, "no collateral for the platform")
	ErrInvalidCollateral   = runtime.NewError(Name, 8, "collateral invalid or expired")
	ErrRevoked             = runtime.NewError(Name, 9, "PCK certificate revoked")
	ErrTCBNotEvaluable     = runtime.NewError(Name, 10, "platform or quoting enclave not covered by the collateral")
	ErrQuoteRejected       = runtime.NewError(Name, 11, "attestation service rejected the quote")
	ErrEvidenceFromFuture  = runtime.NewError(Name, 12, "attestation evidence dated after the block")
	ErrStaleEvidence       = runtime.NewError(Name, 13, "attestation evidence too old")
	ErrSenderNotAttested   = runtime.NewError(Name, 14, "report data does not commit to the sender and shielding key")
	ErrDebugEnclave        = runtime.NewError(Name, 15, "debug enclave not allowed")
	ErrMRENCLAVENotAllowed = runtime.NewError(Name, 16, "MRENCLAVE not allowed")
	ErrTCBStatus           = runtime.NewError(Name, 17, "TCB status not accepted")
	ErrNotRegistered       = runtime.NewError(Name, 18, "enclave not registered")
	ErrExpired             = runtime.NewError(Name, 19, "enclave registration expired")
	ErrInvalidPolicy       = runtime.NewError(Name, 20, "invalid attestation policy")
	ErrDevOnly             = runtime.NewError(Name, 21, "setting allowed on dev chains only")
	ErrInvalidAttestation  = runtime.NewError(Name, 22, "attestation verification failed")
	ErrWrongChain          = runtime.NewError(Name, 23, "report data does not commit to this chain's genesis")
)
