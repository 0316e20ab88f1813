// Package tee defines the trusted execution environment an enclave runs in.
// Backends: sim (software, dev trust root) and gramine (real SGX through
// Gramine's /dev/attestation pseudo-files).
package tee

// Backend is what the enclave needs from its TEE.
type Backend interface {
	// Quote returns attestation evidence (a DCAP quote) whose report data is
	// reportData.
	Quote(reportData [64]byte) ([]byte, error)
	// Measurement returns the enclave's MRENCLAVE.
	Measurement() [32]byte
	// SealingKey returns a 32-byte key bound to this enclave and label. The
	// same enclave gets the same key across restarts; another enclave does not.
	SealingKey(label string) ([]byte, error)
}
