// Package vectordir finds the real attestation vectors that live beside the
// checkout in ../shared/testdata/attestation. It is separate from
// internal/testvectors so that binaries can use it without importing testing.
package vectordir

import (
	"os"
	"path/filepath"
)

// Env overrides the vector directory.
const Env = "INTEGRITEE_ATTESTATION_VECTORS"

// Find returns the vector directory, or "" if it cannot be found: $Env if
// set, else ../shared/testdata/attestation beside the root of the module
// containing the working directory.
func Find() string {
	if d := os.Getenv(Env); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			v := filepath.Join(d, "..", "shared", "testdata", "attestation")
			if _, err := os.Stat(filepath.Join(v, "SOURCES.md")); err == nil {
				return v
			}
			return ""
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}
