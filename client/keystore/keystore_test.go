package keystore_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client/keystore"
)

// light are cheap parameters for tests (1 MiB); files take any within the
// bounds.
var light = keystore.Params{N: 1 << 10, R: 8, P: 1}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	key := newKey(t)
	pass := []byte("correct horse battery staple")
	data, err := keystore.Encrypt(key, pass, light)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, hexOf(key.Seed())) {
		t.Fatal("the file holds the seed in clear")
	}
	got, err := keystore.Decrypt(data, pass)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(key) {
		t.Fatal("decrypted another key")
	}
	addr, err := keystore.Address(data)
	if err != nil || addr != tx.AddressOf(key.Public().(ed25519.PublicKey)) {
		t.Fatalf("Address = %s, %v", addr, err)
	}
	// Fresh salt and nonce each time.
	again, err := keystore.Encrypt(key, pass, light)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again, data) {
		t.Fatal("two encryptions gave the same file")
	}
}

func hexOf(b []byte) []byte { return []byte(hex.EncodeToString(b)) }

func TestWrongPassphrase(t *testing.T) {
	data, err := keystore.Encrypt(newKey(t), []byte("right"), light)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"wrong", "", "right "} {
		_, err := keystore.Decrypt(data, []byte(p))
		if !errors.Is(err, keystore.ErrPassphrase) {
			t.Errorf("passphrase %q: err = %v, want ErrPassphrase", p, err)
		}
	}
}

func TestEncryptRefuses(t *testing.T) {
	key := newKey(t)
	if _, err := keystore.Encrypt(key, nil, light); err == nil || !strings.Contains(err.Error(), "empty passphrase") {
		t.Errorf("empty passphrase: %v", err)
	}
	if _, err := keystore.Encrypt(key, []byte("x"), keystore.Params{N: 1 << 24, R: 8, P: 1}); err == nil {
		t.Error("parameters out of bounds accepted")
	}
	if _, err := keystore.Encrypt(key[:10], []byte("x"), light); err == nil {
		t.Error("short key accepted")
	}
}

// TestPlaintextRefused: a key file of an earlier release is recognized and
// refused, with its address still readable for a conversion.
func TestPlaintextRefused(t *testing.T) {
	key := newKey(t)
	addr := tx.AddressOf(key.Public().(ed25519.PublicKey))
	old := `{"name": "carol", "address": "` + addr.String() + `", "seed": "` + string(hexOf(key.Seed())) + `"}`
	if _, err := keystore.Decrypt([]byte(old), []byte("any")); !errors.Is(err, keystore.ErrPlaintext) {
		t.Fatalf("Decrypt = %v, want ErrPlaintext", err)
	}
	got, err := keystore.Address([]byte(old))
	if !errors.Is(err, keystore.ErrPlaintext) || got != addr {
		t.Fatalf("Address = %s, %v", got, err)
	}
}

// edit returns data with the JSON value at path (keys) replaced by v.
func edit(t *testing.T, data []byte, v any, path ...string) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	m := doc
	for _, k := range path[:len(path)-1] {
		m = m[k].(map[string]any)
	}
	m[path[len(path)-1]] = v
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipHex changes the first hex digit of a hex string.
func flipHex(s string) string {
	if s[0] == '0' {
		return "1" + s[1:]
	}
	return "0" + s[1:]
}

// TestTamperedRefused: a change to any field is refused, either before
// the KDF runs (malformed, out of bounds, unknown) or by the AEAD.
func TestTamperedRefused(t *testing.T) {
	pass := []byte("passphrase")
	key := newKey(t)
	data, err := keystore.Encrypt(key, pass, light)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Address string
		Crypto  struct {
			KDFParams  struct{ Salt string }
			Nonce      string
			Ciphertext string
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	other := tx.AddressOf(newKey(t).Public().(ed25519.PublicKey)).String()
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"address", edit(t, data, other, "address"), keystore.ErrPassphrase},
		{"salt", edit(t, data, flipHex(doc.Crypto.KDFParams.Salt), "crypto", "kdfparams", "salt"), keystore.ErrPassphrase},
		{"nonce", edit(t, data, flipHex(doc.Crypto.Nonce), "crypto", "nonce"), keystore.ErrPassphrase},
		{"ciphertext", edit(t, data, flipHex(doc.Crypto.Ciphertext), "crypto", "ciphertext"), keystore.ErrPassphrase},
		{"tag", edit(t, data, doc.Crypto.Ciphertext[:len(doc.Crypto.Ciphertext)-2]+"00", "crypto", "ciphertext"), keystore.ErrPassphrase},
		{"n", edit(t, data, 1<<11, "crypto", "kdfparams", "n"), keystore.ErrPassphrase},
		{"r", edit(t, data, 4, "crypto", "kdfparams", "r"), keystore.ErrPassphrase},
		{"p", edit(t, data, 2, "crypto", "kdfparams", "p"), keystore.ErrPassphrase},
		{"kdf", edit(t, data, "pbkdf2", "crypto", "kdf"), keystore.ErrFormat},
		{"cipher", edit(t, data, "aes-128-ctr", "crypto", "cipher"), keystore.ErrFormat},
		{"version", edit(t, data, 2, "version"), keystore.ErrFormat},
		{"short salt", edit(t, data, "00", "crypto", "kdfparams", "salt"), keystore.ErrFormat},
		{"short ciphertext", edit(t, data, doc.Crypto.Ciphertext[:64], "crypto", "ciphertext"), keystore.ErrFormat},
		{"bad hex", edit(t, data, "zz", "crypto", "nonce"), keystore.ErrFormat},
		{"seed added", edit(t, data, strings.Repeat("00", 32), "seed"), keystore.ErrFormat},
		{"no crypto", edit(t, data, nil, "crypto"), keystore.ErrFormat},
		{"not json", []byte("seed=00"), keystore.ErrFormat},
		{"truncated", data[:len(data)/2], keystore.ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := keystore.Decrypt(tt.data, pass)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decrypt = %v, want %v", err, tt.want)
			}
			if k != nil {
				t.Fatal("a key came back with the error")
			}
		})
	}
	// The untouched file still opens: the cases failed for their change.
	if _, err := keystore.Decrypt(data, pass); err != nil {
		t.Fatal(err)
	}
}

// TestParamsBounded: a file asking for huge scrypt parameters is refused
// before the KDF allocates anything of that size.
func TestParamsBounded(t *testing.T) {
	pass := []byte("passphrase")
	data, err := keystore.Encrypt(newKey(t), pass, light)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		n, r, p float64
		msg     string
	}{
		{"100 GiB", 1 << 30, 800, 1, "want 2^10 to 2^20"},
		{"n 2^21", 1 << 21, 8, 1, "want 2^10 to 2^20"},
		{"memory over 1 GiB", 1 << 20, 16, 1, "want at most 1024 MiB"},
		{"r huge", 1 << 10, 1 << 30, 1, "want 1 to 32"},
		{"p huge", 1 << 10, 8, 1 << 30, "want 1 to 16"},
		{"work", 1 << 20, 8, 16, "want at most"},
		{"n not a power of two", 3 << 10, 8, 1, "power of two"},
		{"n zero", 0, 8, 1, "power of two"},
		{"n too small", 1 << 4, 8, 1, "want 2^10 to 2^20"},
		{"r zero", 1 << 10, 0, 1, "want 1 to 32"},
		{"n overflows", 1 << 64, 8, 1, "bad key file"},
		{"n negative", -1024, 8, 1, "bad key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := edit(t, data, tt.n, "crypto", "kdfparams", "n")
			d = edit(t, d, tt.r, "crypto", "kdfparams", "r")
			d = edit(t, d, tt.p, "crypto", "kdfparams", "p")
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := keystore.Decrypt(d, pass)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, keystore.ErrFormat) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Decrypt = %v, want ErrFormat saying %q", err, tt.msg)
			}
			if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
				t.Fatalf("refusing the file allocated %d bytes", a)
			}
		})
	}
	big := append(bytes.Repeat([]byte(" "), keystore.MaxFileSize), data...)
	if _, err := keystore.Decrypt(big, pass); !errors.Is(err, keystore.ErrFormat) {
		t.Fatalf("oversized file: %v", err)
	}
}
