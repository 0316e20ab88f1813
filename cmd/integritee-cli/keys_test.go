package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client/keystore"
)

// ksEnv is a CLI environment for keystore tests: env holds the
// environment variables, answers what the terminal would type (nil: no
// terminal).
type ksEnv struct {
	env     map[string]string
	answers []string
	prompts []string
}

func (k *ksEnv) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, now: time.Now, trustDir: t.TempDir(), kdf: testKDF,
		lookupEnv: func(name string) (string, bool) { v, ok := k.env[name]; return v, ok }}
	if k.answers != nil {
		e.readPassword = func(prompt string) ([]byte, error) {
			k.prompts = append(k.prompts, prompt)
			if len(k.answers) == 0 {
				return nil, errors.New("no more input")
			}
			a := k.answers[0]
			k.answers = k.answers[1:]
			return []byte(a), nil
		}
	}
	code = run(context.Background(), args, e)
	return code, out.String(), errb.String()
}

// mustFail runs a command that must exit 1 with an error line containing
// every string of want.
func (k *ksEnv) mustFail(t *testing.T, want []string, args ...string) {
	t.Helper()
	code, _, errOut := k.run(t, args...)
	if code != 1 {
		t.Fatalf("%q: exit %d, want 1 (%s)", args, code, errOut)
	}
	for _, w := range want {
		assertOneLineError(t, errOut, w)
	}
}

// closedNode is the URL of a port nothing listens on: a command that gets
// as far as the node fails there, after unlocking its key.
func closedNode(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func readKeyJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestKeystorePassphrase(t *testing.T) {
	ks := filepath.Join(t.TempDir(), "keys")
	node := closedNode(t)
	script := &ksEnv{env: map[string]string{PassphraseEnv: "from the environment"}}

	code, out, errOut := script.run(t, "account", "new", "--name", "k1", "--keystore", ks, "--json")
	if code != 0 {
		t.Fatalf("account new: exit %d: %s", code, errOut)
	}
	var k1 account
	if err := json.Unmarshal([]byte(out), &k1); err != nil {
		t.Fatal(err)
	}
	f := readKeyJSON(t, k1.File)
	if _, ok := f["seed"]; ok || f["crypto"].(map[string]any)["kdf"] != "scrypt" || f["address"] != k1.Address.String() {
		t.Fatalf("key file %v", f)
	}
	if fi, err := os.Stat(k1.File); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}

	// The address needs no passphrase, neither does a dev account.
	locked := &ksEnv{}
	for _, args := range [][]string{{"account", "show", "k1"}, {"account", "list"}} {
		code, out, errOut := locked.run(t, append(args, "--keystore", ks)...)
		if code != 0 || !strings.Contains(out, k1.Address.String()) {
			t.Fatalf("%q without a passphrase: exit %d %s %s", args, code, out, errOut)
		}
	}
	locked.mustFail(t, []string{"connect"}, "transfer", "--from", "alice", "--to", "k1", "--amount", "1", "--keystore", ks, "--node", node)

	// Signing needs it: from the environment, from the terminal, or neither.
	transfer := []string{"transfer", "--from", "k1", "--to", "bob", "--amount", "1", "--keystore", ks, "--node", node, "--timeout", "5s"}
	locked.mustFail(t, []string{"no terminal", PassphraseEnv}, transfer...)
	script.mustFail(t, []string{"connect"}, transfer...)
	(&ksEnv{env: map[string]string{PassphraseEnv: "wrong"}}).mustFail(t, []string{`key "k1"`, "wrong passphrase"}, transfer...)
	(&ksEnv{env: map[string]string{PassphraseEnv: ""}}).mustFail(t, []string{PassphraseEnv + " is set but empty"}, transfer...)
	tty := &ksEnv{answers: []string{"from the environment"}}
	tty.mustFail(t, []string{"connect"}, transfer...)
	if len(tty.prompts) != 1 || !strings.Contains(tty.prompts[0], `"k1"`) {
		t.Fatalf("prompts %q", tty.prompts)
	}
	(&ksEnv{answers: []string{"nope"}}).mustFail(t, []string{"wrong passphrase"}, transfer...)

	// A new key asked on the terminal is asked twice.
	(&ksEnv{answers: []string{"one", "two"}}).mustFail(t, []string{"passphrases differ"}, "account", "new", "--name", "k2", "--keystore", ks)
	(&ksEnv{answers: []string{""}}).mustFail(t, []string{"empty passphrase"}, "account", "new", "--name", "k2", "--keystore", ks)
	if _, err := os.Stat(keyPath(ks, "k2")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused passphrase left a key file: %v", err)
	}
	if code, _, errOut := (&ksEnv{answers: []string{"two", "two"}}).run(t, "account", "new", "--name", "k2", "--keystore", ks); code != 0 {
		t.Fatalf("account new on the terminal: %s", errOut)
	}
	b, err := os.ReadFile(keyPath(ks, "k2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keystore.Decrypt(b, []byte("two")); err != nil {
		t.Fatalf("the key is not under the passphrase typed: %v", err)
	}

	// An altered file is refused.
	f["address"] = tx.AddressOf(mustKey(t).Public().(ed25519.PublicKey)).String()
	altered, _ := json.Marshal(f)
	if err := os.WriteFile(k1.File, altered, 0o600); err != nil {
		t.Fatal(err)
	}
	script.mustFail(t, []string{"altered"}, transfer...)
}

func mustKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeystorePlaintextRefused: a key file of an earlier release, seed in
// clear, is listed as such and refused with the command that converts it;
// after 'account encrypt' the same key works under the passphrase.
func TestKeystorePlaintextRefused(t *testing.T) {
	ks := filepath.Join(t.TempDir(), "keys")
	if err := os.MkdirAll(ks, 0o700); err != nil {
		t.Fatal(err)
	}
	key := mustKey(t)
	addr := tx.AddressOf(key.Public().(ed25519.PublicKey))
	// What 'account new' wrote before keys were encrypted.
	old := `{"name": "old", "address": "` + addr.String() + `", "seed": "` + hex.EncodeToString(key.Seed()) + "\"}\n"
	path := keyPath(ks, "old")
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &ksEnv{env: map[string]string{PassphraseEnv: "new passphrase"}}
	node := closedNode(t)
	convert := "integritee-cli account encrypt old --keystore " + ks
	for _, args := range [][]string{
		{"transfer", "--from", "old", "--to", "bob", "--amount", "1", "--node", node},
		{"transfer", "--from", "alice", "--to", "old", "--amount", "1", "--node", node},
		{"balance", "old", "--node", node},
		{"account", "show", "old"},
	} {
		e.mustFail(t, []string{"unencrypted", convert}, append(args, "--keystore", ks)...)
	}
	code, out, errOut := e.run(t, "account", "list", "--keystore", ks, "--json")
	var list []account
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("list: exit %d %s %s", code, out, errOut)
	}
	if last := list[len(list)-1]; last.Name != "old" || !last.Unencrypted || last.Address != addr {
		t.Fatalf("list shows %+v", last)
	}

	(&ksEnv{answers: []string{"a", "b"}}).mustFail(t, []string{"passphrases differ"}, "account", "encrypt", "old", "--keystore", ks)
	if b, _ := os.ReadFile(path); string(b) != old {
		t.Fatal("a failed conversion changed the file")
	}
	if code, _, errOut := e.run(t, "account", "encrypt", "old", "--keystore", ks); code != 0 {
		t.Fatalf("encrypt: exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(hex.EncodeToString(key.Seed()))) {
		t.Fatal("the converted file still holds the seed")
	}
	got, err := keystore.Decrypt(b, []byte("new passphrase"))
	if err != nil || !got.Equal(key) {
		t.Fatalf("converted file: %v", err)
	}
	e.mustFail(t, []string{"encrypted already"}, "account", "encrypt", "old", "--keystore", ks)
	e.mustFail(t, []string{"connect"}, "transfer", "--from", "old", "--to", "bob", "--amount", "1", "--keystore", ks, "--node", node)
}
