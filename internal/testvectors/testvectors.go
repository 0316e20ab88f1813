// Package testvectors locates the real attestation vectors that live beside
// the checkout in ../shared/testdata/attestation. Tests read them from there;
// they are never copied into the repository.
package testvectors

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvDir overrides the vector directory.
const EnvDir = "INTEGRITEE_ATTESTATION_VECTORS"

// Dir returns the vector directory, or "" if it cannot be found.
func Dir() string {
	if d := os.Getenv(EnvDir); d != "" {
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

// Path returns the path of a vector file, failing the test if the vector
// directory is missing: CI always has it, so a missing one is an error, not a
// reason to skip.
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	d := Dir()
	if d == "" {
		tb.Fatalf("attestation vectors not found: expected ../shared/testdata/attestation beside the module root, or set %s", EnvDir)
	}
	return filepath.Join(d, rel)
}

// Read returns the contents of a vector file.
func Read(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(Path(tb, rel))
	if err != nil {
		tb.Fatalf("read vector: %v", err)
	}
	return b
}
