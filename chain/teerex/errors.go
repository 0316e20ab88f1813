package teerex

import "github.com/integritee-go/integritee/chain/types"

// Errors of this module's calls (codespace "teerex"), one per rejection
// class. Verification errors wrap the attestation library's error too, so
// errors.Is works for both (e.g. ErrInvalidCollateral and pcs.ErrExpired).
// Never renumber: clients match on (codespace, code).
var (
	ErrNotSudo             = types.NewError(Name, 1, "sender is not the sudo key")
	ErrMalformedEvidence   = types.NewError(Name, 2, "malformed attestation evidence")
	ErrUnsupportedEvidence = types.NewError(Name, 3, "unsupported attestation evidence")
	ErrUntrustedRoot       = types.NewError(Name, 4, "attestation does not chain to a trusted root")
	ErrInvalidCertificate  = types.NewError(Name, 5, "attestation certificate chain invalid")
	ErrInvalidSignature    = types.NewError(Name, 6, "attestation signature invalid")
	ErrNoCollateral        = types.NewError(Name, 7, "no collateral for the platform")
	ErrInvalidCollateral   = types.NewError(Name, 8, "collateral invalid or expired")
	ErrRevoked             = types.NewError(Name, 9, "PCK certificate revoked")
	ErrTCBNotEvaluable     = types.NewError(Name, 10, "platform or quoting enclave not covered by the collateral")
	ErrQuoteRejected       = types.NewError(Name, 11, "attestation service rejected the quote")
	ErrEvidenceFromFuture  = types.NewError(Name, 12, "attestation evidence dated after the block")
	ErrStaleEvidence       = types.NewError(Name, 13, "attestation evidence too old")
	ErrSenderNotAttested   = types.NewError(Name, 14, "report data does not commit to the sender and shielding key")
	ErrDebugEnclave        = types.NewError(Name, 15, "debug enclave not allowed")
	ErrMRENCLAVENotAllowed = types.NewError(Name, 16, "MRENCLAVE not allowed")
	ErrTCBStatus           = types.NewError(Name, 17, "TCB status not accepted")
	ErrNotRegistered       = types.NewError(Name, 18, "enclave not registered")
	ErrExpired             = types.NewError(Name, 19, "enclave registration expired")
	ErrInvalidPolicy       = types.NewError(Name, 20, "invalid attestation policy")
	ErrDevOnly             = types.NewError(Name, 21, "setting allowed on dev chains only")
	ErrInvalidAttestation  = types.NewError(Name, 22, "attestation verification failed")
	ErrWrongChain          = types.NewError(Name, 23, "report data does not commit to this chain's genesis")
	ErrSilent              = types.NewError(Name, 24, "enclave not seen alive within the liveness period")
)
