// Package keystore encrypts account keys (ed25519 seeds) with a passphrase,
// in the way of Ethereum's v3 keystore and age's scrypt recipient: a
// versioned JSON file that names its KDF, the KDF's parameters and salt,
// and holds the seed sealed with an AEAD whose additional data is the
// file's header, so that no field can be changed without the change being
// detected.
//
//	{
//	  "version": 1,
//	  "address": "<hex ed25519 public key>",
//	  "crypto": {
//	    "kdf": "scrypt",
//	    "kdfparams": {"n": 262144, "r": 8, "p": 1, "salt": "<32 bytes hex>"},
//	    "cipher": "aes-256-gcm",
//	    "nonce": "<12 bytes hex>",
//	    "ciphertext": "<seed and tag, 48 bytes hex>"
//	  }
//	}
//
// The key is scrypt(passphrase, salt, n, r, p) (32 bytes); the additional
// data is the header in one canonical line (see header.aad). The address
// stays readable without the passphrase, so that keys can be listed and
// used as recipients; it is authenticated on decryption and checked
// against the decrypted seed.
//
// The parameters come from the file, which may come from anyone: Decrypt
// refuses any above the bounds of Params.Validate before deriving, so a
// file cannot make the reader allocate more than MaxMemory bytes.
package keystore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"

	"golang.org/x/crypto/scrypt"

	"github.com/integritee-go/integritee/chain/tx"
)

// Version is the file format version this package writes and reads.
const Version = 1

// Names of the KDF and cipher of version 1.
const (
	KDFScrypt    = "scrypt"
	CipherAESGCM = "aes-256-gcm"
)

// Bounds of the scrypt parameters a file may ask for. scrypt needs
// 128·n·r bytes; MaxWork bounds n·r·p, its running time.
const (
	MinLogN   = 10
	MaxLogN   = 20
	MaxR      = 32
	MaxP      = 16
	MaxMemory = 1 << 30
	MaxWork   = 1 << 25
	// MaxFileSize bounds what Decrypt parses; a key file is well below 1 KiB.
	MaxFileSize = 64 << 10
)

const (
	saltLen = 32
	keyLen  = 32
)

// Params are scrypt's cost parameters.
type Params struct {
	N    uint64 // a power of two
	R, P uint32
}

// DefaultParams are the parameters of new files: those of Ethereum's
// standard keystore and of age (n = 2^18, 256 MiB, about a second).
var DefaultParams = Params{N: 1 << 18, R: 8, P: 1}

// Validate refuses parameters outside the bounds.
func (p Params) Validate() error {
	if p.N == 0 || p.N&(p.N-1) != 0 {
		return fmt.Errorf("scrypt n %d: want a power of two", p.N)
	}
	if logN := bits.TrailingZeros64(p.N); logN < MinLogN || logN > MaxLogN {
		return fmt.Errorf("scrypt n 2^%d: want 2^%d to 2^%d", logN, MinLogN, MaxLogN)
	}
	if p.R < 1 || p.R > MaxR {
		return fmt.Errorf("scrypt r %d: want 1 to %d", p.R, MaxR)
	}
	if p.P < 1 || p.P > MaxP {
		return fmt.Errorf("scrypt p %d: want 1 to %d", p.P, MaxP)
	}
	if mem := 128 * p.N * uint64(p.R); mem > MaxMemory {
		return fmt.Errorf("scrypt n %d, r %d need %d MiB: want at most %d MiB", p.N, p.R, mem>>20, MaxMemory>>20)
	}
	if w := p.N * uint64(p.R) * uint64(p.P); w > MaxWork {
		return fmt.Errorf("scrypt n·r·p = %d: want at most %d", w, MaxWork)
	}
	return nil
}

// Errors of Decrypt, for errors.Is.
var (
	// ErrPassphrase: the passphrase is wrong, or the file was altered (an
	// AEAD cannot tell the two apart).
	ErrPassphrase = errors.New("wrong passphrase, or the key file was altered")
	// ErrPlaintext: the file is an unencrypted key of an earlier release
	// ({"name", "address", "seed"}).
	ErrPlaintext = errors.New("key file holds an unencrypted seed")
	// ErrFormat: not a key file this package reads, or one out of bounds.
	ErrFormat = errors.New("bad key file")
)

// hexBytes is a byte string written as hex in JSON.
type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

func (h *hexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

type kdfParams struct {
	N    uint64   `json:"n"`
	R    uint32   `json:"r"`
	P    uint32   `json:"p"`
	Salt hexBytes `json:"salt"`
}

type cryptoSection struct {
	KDF        string    `json:"kdf"`
	KDFParams  kdfParams `json:"kdfparams"`
	Cipher     string    `json:"cipher"`
	Nonce      hexBytes  `json:"nonce"`
	Ciphertext hexBytes  `json:"ciphertext"`
}

// file is the JSON document. Seed and Name are read only to recognize a
// plaintext file of an earlier release.
type file struct {
	Version int            `json:"version"`
	Address tx.Address     `json:"address"`
	Crypto  *cryptoSection `json:"crypto,omitempty"`
	Seed    *string        `json:"seed,omitempty"`
}

// aad is the additional data of the AEAD: every header field in one line
// made from the decoded values, so that two spellings of one value (hex
// case) are the same header and any other change is detected.
func (f *file) aad() []byte {
	c := f.Crypto
	return fmt.Appendf(nil, "integritee-keystore version=%d address=%s kdf=%s n=%d r=%d p=%d salt=%x cipher=%s nonce=%x",
		f.Version, f.Address, c.KDF, c.KDFParams.N, c.KDFParams.R, c.KDFParams.P, []byte(c.KDFParams.Salt), c.Cipher, []byte(c.Nonce))
}

// Encrypt seals the ed25519 key under passphrase with fresh salt and nonce
// and returns the file's contents. An empty passphrase is refused.
func Encrypt(key ed25519.PrivateKey, passphrase []byte, p Params) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("keystore: not an ed25519 private key")
	}
	if len(passphrase) == 0 {
		return nil, errors.New("keystore: empty passphrase")
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	f := &file{
		Version: Version,
		Address: tx.AddressOf(key.Public().(ed25519.PublicKey)),
		Crypto: &cryptoSection{
			KDF:       KDFScrypt,
			KDFParams: kdfParams{N: p.N, R: p.R, P: p.P, Salt: make([]byte, saltLen)},
			Cipher:    CipherAESGCM,
		},
	}
	if _, err := rand.Read(f.Crypto.KDFParams.Salt); err != nil {
		return nil, err
	}
	aead, err := f.aead(passphrase)
	if err != nil {
		return nil, err
	}
	f.Crypto.Nonce = make([]byte, aead.NonceSize())
	if _, err := rand.Read(f.Crypto.Nonce); err != nil {
		return nil, err
	}
	f.Crypto.Ciphertext = aead.Seal(nil, f.Crypto.Nonce, key.Seed(), f.aad())
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// aead derives the key of f's parameters and salt from passphrase.
func (f *file) aead(passphrase []byte) (cipher.AEAD, error) {
	kp := f.Crypto.KDFParams
	k, err := scrypt.Key(passphrase, kp.Salt, int(kp.N), int(kp.R), int(kp.P), keyLen)
	if err != nil {
		return nil, fmt.Errorf("keystore: scrypt: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// parse reads and checks the header of a key file, without the passphrase.
func parse(data []byte) (*file, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes, want at most %d", ErrFormat, len(data), MaxFileSize)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if f.Crypto == nil {
		if f.Seed != nil {
			return &f, ErrPlaintext
		}
		return nil, fmt.Errorf("%w: no crypto section", ErrFormat)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrFormat, f.Version, Version)
	}
	if f.Seed != nil {
		return nil, fmt.Errorf("%w: both a seed and a crypto section", ErrFormat)
	}
	c := f.Crypto
	if c.KDF != KDFScrypt {
		return nil, fmt.Errorf("%w: kdf %q, want %q", ErrFormat, c.KDF, KDFScrypt)
	}
	if err := (Params{N: c.KDFParams.N, R: c.KDFParams.R, P: c.KDFParams.P}).Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if len(c.KDFParams.Salt) != saltLen {
		return nil, fmt.Errorf("%w: salt of %d bytes, want %d", ErrFormat, len(c.KDFParams.Salt), saltLen)
	}
	if c.Cipher != CipherAESGCM {
		return nil, fmt.Errorf("%w: cipher %q, want %q", ErrFormat, c.Cipher, CipherAESGCM)
	}
	if len(c.Nonce) != 12 {
		return nil, fmt.Errorf("%w: nonce of %d bytes, want 12", ErrFormat, len(c.Nonce))
	}
	if len(c.Ciphertext) != ed25519.SeedSize+16 {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes, want %d", ErrFormat, len(c.Ciphertext), ed25519.SeedSize+16)
	}
	return &f, nil
}

// Address returns the address a key file names, without decrypting it. It
// is authenticated only by Decrypt. For a plaintext file of an earlier
// release it returns the address it names and ErrPlaintext.
func Address(data []byte) (tx.Address, error) {
	f, err := parse(data)
	if f == nil {
		return tx.Address{}, err
	}
	return f.Address, err
}

// Decrypt opens a key file with passphrase. It refuses a plaintext file
// (ErrPlaintext), a malformed one or one whose parameters are out of bounds
// (ErrFormat) before deriving any key, and a wrong passphrase or an altered
// file (ErrPassphrase).
func Decrypt(data, passphrase []byte) (ed25519.PrivateKey, error) {
	f, err := parse(data)
	if err != nil {
		return nil, err
	}
	aead, err := f.aead(passphrase)
	if err != nil {
		return nil, err
	}
	seed, err := aead.Open(nil, f.Crypto.Nonce, f.Crypto.Ciphertext, f.aad())
	if err != nil {
		return nil, ErrPassphrase
	}
	key := ed25519.NewKeyFromSeed(seed)
	if tx.AddressOf(key.Public().(ed25519.PublicKey)) != f.Address {
		// Only a writer who knew the passphrase can get here.
		return nil, fmt.Errorf("%w: the seed does not match the address", ErrFormat)
	}
	return key, nil
}
