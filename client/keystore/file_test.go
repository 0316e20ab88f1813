package keystore_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/integritee-go/integritee/client/keystore"
)

func TestWriteFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	path := filepath.Join(dir, "k.json")
	if err := keystore.WriteFile(path, []byte("one"), false); err != nil {
		t.Fatal(err)
	}
	if err := keystore.WriteFile(path, []byte("two"), false); !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("second write without replace: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Fatalf("a refused write changed the file: %q", b)
	}
	if err := keystore.WriteFile(path, []byte("three"), true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "three" {
		t.Fatalf("replace wrote %q", b)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: %v, want mode %v", p, err, want)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("directory holds %v (%v): temporary files left", ents, err)
	}
}

func TestReadFileBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse 100 GiB file: nothing is written, but reading it whole would
	// allocate that much.
	if err := f.Truncate(100 << 30); err != nil {
		t.Skipf("no sparse file here: %v", err)
	}
	f.Close()
	if _, err := keystore.ReadFile(path); !errors.Is(err, keystore.ErrFormat) {
		t.Fatalf("100 GiB key file: %v", err)
	}
	if err := os.WriteFile(path, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := keystore.ReadFile(path); err != nil || string(b) != "{}" {
		t.Fatalf("small file: %q, %v", b, err)
	}
}
