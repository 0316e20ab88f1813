// Package dcap parses and verifies Intel SGX DCAP ECDSA quotes.
//
// A quote is a report of an enclave (the ISV report body), signed by an
// attestation key that Intel's quoting enclave (QE) generated; the QE's own
// report binds that key and is signed by the platform's PCK key, whose
// certificate chains to the Intel SGX Root CA and carries the platform's TCB
// in an Intel extension. ParseQuote reads versions 3 (SGX), 4 and 5 (SGX or
// TDX) strictly: every length is checked, nothing may trail the declared
// signature data, the attestation key must be ECDSA P-256 and the
// certification data a PEM PCK chain (type 5; wrapped in type 6 from v4 on).
//
// # Verification order
//
// Verify runs these steps and stops at the first failure, returning an error
// that wraps the step's sentinel:
//
//  1. parse the quote (ErrMalformed, ErrTrailingBytes, ErrUnsupported...);
//  2. the PCK chain to Options.Roots at Options.Time (ErrPCKChain). Every
//     certificate the quote carries must lie on the verified path;
//  3. the QE report signature by the PCK leaf key (ErrQEReportSignature);
//  4. the attestation key binding: QE report data = sha256(attestation key ||
//     QE auth data) || 32 zero bytes (ErrAttestationKeyBinding);
//  5. the quote signature over header || body by the attestation key
//     (ErrQuoteSignature);
//  6. the TEE type: TDX quotes stop here (ErrUnsupportedTEE);
//  7. the collateral: present (ErrNoCollateral), every signature, chain and
//     validity window (ErrCollateral), the PCK path not revoked
//     (ErrRevocation), the QE report accepted by the QE identity
//     (ErrQEIdentity), the platform's TCB level found (ErrTCB).
//
// The order follows the trust: each step only relies on what the steps
// before it established. Until the chain is anchored, the PCK key is just
// bytes from the quote; until the QE report verifies under that key, its
// report data proves nothing about the attestation key; only then does the
// attestation key's signature say anything about the enclave. Collateral
// comes last because it judges a platform and a QE that the signatures have
// first identified, and because it is the expensive, time-dependent part.
// Checking in this order also gives each tampered region of a quote one
// predictable error, which the tests assert byte by byte.
//
// The resulting TCB status folds the QE's status into the platform's as
// Intel's quote verification library does: an out-of-date QE makes the
// result OutOfDate (or OutOfDateConfigurationNeeded), a revoked one Revoked.
// Result.RawStatus keeps the platform's own status.
//
// VerifySignatures runs steps 2 to 5 alone, for any TEE type. BuildQuoteV3
// produces real v3 quotes for the software TEE backend, whose dev PKI issues
// PCK certificates with PCKExtensions.Extension; the same Verify then checks
// them under the dev root.
//
// All checks are made at a caller-given time, never the wall clock, so that
// a verdict can be replayed (the chain verifies at block time).
package dcap
