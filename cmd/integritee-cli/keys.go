package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client/keystore"
)

// PassphraseEnv names the environment variable that holds the keystore
// passphrase for scripts. Without it the CLI asks on the terminal, without
// echo.
const PassphraseEnv = "INTEGRITEE_KEYSTORE_PASSPHRASE"

// keystoreFlag registers --keystore.
func keystoreFlag(fs *flag.FlagSet) *string {
	def := ""
	if home, err := os.UserHomeDir(); err == nil {
		def = filepath.Join(home, ".integritee", "keys")
	}
	return fs.String("keystore", def, "keystore `dir`ectory")
}

// A key of the keystore is <dir>/<name>.json, mode 0600, a
// passphrase-encrypted file of package keystore.

// plaintextKey is a key file of releases before encryption, which held the
// seed in clear; it is read only by 'account encrypt'.
type plaintextKey struct {
	Address tx.Address `json:"address"`
	Seed    string     `json:"seed"`
}

// keyInfo is a key of a listing: what is known without the passphrase.
type keyInfo struct {
	Name        string
	Address     tx.Address
	Unencrypted bool
}

var keyNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// checkKeyName refuses names that are unusable as file names or that would
// be read as something else: dev names and hex addresses.
func checkKeyName(name string) error {
	switch {
	case !keyNameRE.MatchString(name):
		return fmt.Errorf("key name %q: want 1 to 64 letters, digits, '_', '.', '-', not starting with a symbol", name)
	case devName(name) != "":
		return fmt.Errorf("key name %q is a dev account", name)
	case isHexAddress(name):
		return fmt.Errorf("key name %q reads as an address", name)
	}
	return nil
}

func keyPath(dir, name string) string { return filepath.Join(dir, name+".json") }

// passphrase returns the keystore passphrase: PassphraseEnv if set, else
// asked on the terminal (twice with confirm, for a new one).
func (e *env) passphrase(prompt string, confirm bool) ([]byte, error) {
	if e.lookupEnv != nil {
		if v, ok := e.lookupEnv(PassphraseEnv); ok {
			if v == "" {
				return nil, fmt.Errorf("%s is set but empty", PassphraseEnv)
			}
			return []byte(v), nil
		}
	}
	if e.readPassword == nil {
		return nil, fmt.Errorf("the key is encrypted and there is no terminal to ask for its passphrase: set %s", PassphraseEnv)
	}
	p, err := e.readPassword(prompt)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if len(p) == 0 {
		return nil, errors.New("empty passphrase")
	}
	if confirm {
		again, err := e.readPassword("repeat the passphrase: ")
		if err != nil {
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		if !bytes.Equal(p, again) {
			return nil, errors.New("the passphrases differ")
		}
	}
	return p, nil
}

func (e *env) kdfParams() keystore.Params {
	if e.kdf == (keystore.Params{}) {
		return keystore.DefaultParams
	}
	return e.kdf
}

// createKey generates a key and stores it encrypted under name, never
// overwriting.
func (e *env) createKey(dir, name string) (*keyInfo, string, error) {
	if dir == "" {
		return nil, "", errors.New("no keystore directory (set --keystore)")
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	addr := tx.AddressOf(priv.Public().(ed25519.PublicKey))
	if name == "" {
		name = addr.String()[:8]
	}
	if err := checkKeyName(name); err != nil {
		return nil, "", err
	}
	path := keyPath(dir, name)
	// Checked before asking for a passphrase; WriteFile checks again.
	if _, err := os.Stat(path); err == nil {
		return nil, "", fmt.Errorf("keystore: key %q exists", name)
	}
	pass, err := e.passphrase(fmt.Sprintf("passphrase for the new key %q: ", name), true)
	if err != nil {
		return nil, "", err
	}
	data, err := keystore.Encrypt(priv, pass, e.kdfParams())
	if err != nil {
		return nil, "", err
	}
	if err := keystore.WriteFile(path, data, false); errors.Is(err, keystore.ErrExists) {
		return nil, "", fmt.Errorf("keystore: key %q exists", name)
	} else if err != nil {
		return nil, "", fmt.Errorf("keystore: %w", err)
	}
	return &keyInfo{Name: name, Address: addr}, path, nil
}

// readKeyFile reads the key file of name.
func readKeyFile(dir, name string) ([]byte, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, fmt.Errorf("no key %q: no keystore directory (set --keystore), and no dev account of that name", name)
	}
	b, err := keystore.ReadFile(keyPath(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no key %q in keystore %s (and no dev account of that name)", name, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	return b, nil
}

// plaintextError is the refusal of a key file that holds its seed in
// clear, with the way out.
func plaintextError(dir, name string) error {
	return fmt.Errorf("keystore: key %q (%s) holds its seed unencrypted, which this release refuses: "+
		"encrypt it with 'integritee-cli account encrypt %s --keystore %s' (asks for a new passphrase, or takes %s)",
		name, keyPath(dir, name), name, dir, PassphraseEnv)
}

// keyAddress returns the address of a key without its passphrase.
func keyAddress(dir, name string) (tx.Address, error) {
	b, err := readKeyFile(dir, name)
	if err != nil {
		return tx.Address{}, err
	}
	a, err := keystore.Address(b)
	if errors.Is(err, keystore.ErrPlaintext) {
		return a, plaintextError(dir, name)
	}
	if err != nil {
		return a, fmt.Errorf("keystore: key %q: %w", name, err)
	}
	return a, nil
}

// loadKey decrypts a key of the keystore with its passphrase.
func (e *env) loadKey(dir, name string) (ed25519.PrivateKey, error) {
	b, err := readKeyFile(dir, name)
	if err != nil {
		return nil, err
	}
	// Refuse a plaintext or malformed file before asking for anything.
	if _, err := keystore.Address(b); errors.Is(err, keystore.ErrPlaintext) {
		return nil, plaintextError(dir, name)
	} else if err != nil {
		return nil, fmt.Errorf("keystore: key %q: %w", name, err)
	}
	pass, err := e.passphrase(fmt.Sprintf("passphrase for key %q: ", name), false)
	if err != nil {
		return nil, fmt.Errorf("keystore: key %q: %w", name, err)
	}
	k, err := keystore.Decrypt(b, pass)
	if err != nil {
		return nil, fmt.Errorf("keystore: key %q: %w", name, err)
	}
	return k, nil
}

// encryptKey replaces a plaintext key file of an earlier release by an
// encrypted one of the same key.
func (e *env) encryptKey(dir, name string) (*keyInfo, error) {
	b, err := readKeyFile(dir, name)
	if err != nil {
		return nil, err
	}
	_, err = keystore.Address(b)
	if err == nil {
		return nil, fmt.Errorf("keystore: key %q is encrypted already", name)
	}
	if !errors.Is(err, keystore.ErrPlaintext) {
		return nil, fmt.Errorf("keystore: key %q: %w", name, err)
	}
	var old plaintextKey
	if err := json.Unmarshal(b, &old); err != nil {
		return nil, fmt.Errorf("keystore: key %q: %w", name, err)
	}
	seed, err := hex.DecodeString(old.Seed)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("keystore: key %q: bad seed", name)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if tx.AddressOf(priv.Public().(ed25519.PublicKey)) != old.Address {
		return nil, fmt.Errorf("keystore: key %q: seed does not match address %s", name, old.Address)
	}
	pass, err := e.passphrase(fmt.Sprintf("new passphrase for key %q: ", name), true)
	if err != nil {
		return nil, err
	}
	data, err := keystore.Encrypt(priv, pass, e.kdfParams())
	if err != nil {
		return nil, err
	}
	if err := keystore.WriteFile(keyPath(dir, name), data, true); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	return &keyInfo{Name: name, Address: old.Address}, nil
}

// listKeys returns the keystore's keys by name, without decrypting them.
// A missing keystore is empty.
func listKeys(dir string) ([]keyInfo, error) {
	if dir == "" {
		return nil, nil
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	var out []keyInfo
	for _, ent := range ents {
		name, ok := strings.CutSuffix(ent.Name(), ".json")
		if !ok || ent.IsDir() || checkKeyName(name) != nil {
			continue
		}
		b, err := readKeyFile(dir, name)
		if err != nil {
			return nil, err
		}
		a, err := keystore.Address(b)
		plain := errors.Is(err, keystore.ErrPlaintext)
		if err != nil && !plain {
			return nil, fmt.Errorf("keystore: key %q: %w", name, err)
		}
		out = append(out, keyInfo{Name: name, Address: a, Unencrypted: plain})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// account is a resolved account name.
type account struct {
	Name    string     `json:"name,omitempty"`
	Address tx.Address `json:"address"`
	// Source is "dev" (well-known dev key), "keystore" or "address" (no
	// key known).
	Source string `json:"source"`
	File   string `json:"file,omitempty"`
	// Unencrypted marks a keystore file of an earlier release, which
	// 'account encrypt' converts (listings only).
	Unencrypted bool `json:"unencrypted,omitempty"`
	// key is the signing key: a dev key at once, a keystore key once
	// unlocked; nil for an address.
	key ed25519.PrivateKey
	// keystore is the directory of a keystore key.
	keystore string
}

// resolve maps a dev name, keystore name or hex address to an account. A
// keystore key stays locked (see unlock): its address needs no passphrase.
func resolve(s, keystore string) (*account, error) {
	if n := devName(s); n != "" {
		return &account{Name: n, Address: accounts.DevAddress(n), Source: "dev", key: accounts.DevKey(n)}, nil
	}
	if isHexAddress(s) {
		a, _ := tx.ParseAddress(strings.TrimPrefix(s, "0x"))
		return &account{Address: a, Source: "address"}, nil
	}
	a, err := keyAddress(keystore, s)
	if err != nil {
		return nil, err
	}
	return &account{Name: s, Address: a, Source: "keystore", File: keyPath(keystore, s), keystore: keystore}, nil
}

// unlock decrypts the key of a keystore account.
func (e *env) unlock(a *account) error {
	if a.key != nil || a.Source != "keystore" {
		return nil
	}
	k, err := e.loadKey(a.keystore, a.Name)
	if err != nil {
		return err
	}
	if tx.AddressOf(k.Public().(ed25519.PublicKey)) != a.Address {
		return fmt.Errorf("keystore: key %q changed while in use", a.Name)
	}
	a.key = k
	return nil
}

// signer resolves an account whose key is known, unlocking a keystore key.
func (e *env) signer(s, keystore string) (*account, error) {
	a, err := resolve(s, keystore)
	if err != nil {
		return nil, err
	}
	if a.Source == "address" {
		return nil, fmt.Errorf("%s is an address; signing needs a dev account or keystore name", s)
	}
	if err := e.unlock(a); err != nil {
		return nil, err
	}
	return a, nil
}
