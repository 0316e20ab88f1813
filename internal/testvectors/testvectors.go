// Package testvectors locates the real attestation vectors that live beside
// the checkout in ../shared/testdata/attestation. Tests read them from there;
// they are never copied into the repository.
package testvectors

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/integritee-go/integritee/internal/vectordir"
)

// EnvDir overrides the vector directory.
const EnvDir = vectordir.Env

// Dir returns the vector directory, or "" if it cannot be found.
func Dir() string { return vectordir.Find() }

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
