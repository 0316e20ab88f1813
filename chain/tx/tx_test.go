package tx_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/internal/ed25519x/ed25519xtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func key(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("//" + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func addr(name string) tx.Address { return tx.AddressOf(key(name).Public().(ed25519.PublicKey)) }

type transferArgs struct {
	To     tx.Address `cbor:"to"`
	Amount uint64     `cbor:"amount"`
}

func goldenTx(t testing.TB) *tx.SignedTx {
	t.Helper()
	call, err := tx.NewCall("accounts", "transfer", transferArgs{To: addr("Bob"), Amount: 1000})
	if err != nil {
		t.Fatal(err)
	}
	stx, err := tx.Sign(tx.Body{ChainID: "integritee-dev", Sender: addr("Alice"), Nonce: 7, Fee: 1234567, Call: call}, key("Alice"))
	if err != nil {
		t.Fatal(err)
	}
	return stx
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(hex.EncodeToString(got)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s:\n got %x\nwant %x", name, got, want)
	}
}

// TestGoldenEncoding pins the wire format: a change of field names, order or
// encoding options breaks every signature, so it must be deliberate.
func TestGoldenEncoding(t *testing.T) {
	stx := goldenTx(t)
	wire, err := stx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "transfer.signedtx.hex", wire)
	digest, err := stx.Body.SignBytes()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "transfer.signbytes.hex", digest)

	back, err := tx.Decode(wire)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(); err != nil {
		t.Fatal(err)
	}
	again, err := back.Encode()
	if err != nil || !bytes.Equal(again, wire) {
		t.Fatalf("re-encoding differs: %v", err)
	}
	var args transferArgs
	if err := back.Body.Call.DecodeArgs(&args); err != nil || args.To != addr("Bob") || args.Amount != 1000 {
		t.Fatalf("args %+v %v", args, err)
	}
	// Encoding is independent of how the value was built.
	for range 20 {
		w2, _ := goldenTx(t).Encode()
		if !bytes.Equal(w2, wire) {
			t.Fatal("encoding is not deterministic")
		}
	}
}

// reencode decodes wire generically, applies edit, and encodes with a
// non-canonical-tolerant encoder.
func mutateBody(t *testing.T, edit func(body map[any]any)) []byte {
	t.Helper()
	wire, _ := goldenTx(t).Encode()
	var m map[any]any
	if err := cbor.Unmarshal(wire, &m); err != nil {
		t.Fatal(err)
	}
	edit(m["body"].(map[any]any))
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	out, err := em.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecodeRejects(t *testing.T) {
	wire, _ := goldenTx(t).Encode()
	// Non-minimal integer: the nonce 7 (0x07) re-encoded as 0x18 0x07.
	nonMinimal := bytes.Replace(wire, []byte("nonce\x07"), []byte("nonce\x18\x07"), 1)
	if bytes.Equal(nonMinimal, wire) {
		t.Fatal("fixture: nonce not found")
	}
	// Map with the top-level keys swapped (canonical order is "sig" first).
	var top map[string]cbor.RawMessage
	if err := cbor.Unmarshal(wire, &top); err != nil {
		t.Fatal(err)
	}
	swapped := append([]byte{0xa2, 0x64}, "body"...)
	swapped = append(swapped, top["body"]...)
	swapped = append(swapped, 0x63)
	swapped = append(swapped, "sig"...)
	swapped = append(swapped, top["sig"]...)
	dup := append([]byte{0xa3}, wire[1:]...)
	dup = append(dup, 0x63)
	dup = append(dup, "sig"...)
	dup = append(dup, top["sig"]...)

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, tx.ErrMalformed},
		{"truncated", wire[:len(wire)-1], tx.ErrMalformed},
		{"trailing", append(bytes.Clone(wire), 0xf6), tx.ErrMalformed},
		{"non-minimal int", nonMinimal, codec.ErrNonCanonical},
		{"unsorted keys", swapped, codec.ErrNonCanonical},
		{"duplicate key", dup, tx.ErrMalformed},
		{"unknown field", mutateBody(t, func(b map[any]any) { b["memo"] = "x" }), tx.ErrMalformed},
		{"short sender", mutateBody(t, func(b map[any]any) { b["sender"] = make([]byte, 31) }), tx.ErrMalformed},
		{"long sender", mutateBody(t, func(b map[any]any) { b["sender"] = make([]byte, 33) }), tx.ErrMalformed},
		{"negative nonce", mutateBody(t, func(b map[any]any) { b["nonce"] = -1 }), tx.ErrMalformed},
		{"too large", make([]byte, tx.MaxTxBytes+1), tx.ErrTooLarge},
		{"indefinite map", append([]byte{0xbf}, append(wire[1:], 0xff)...), tx.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tx.Decode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignatureBinding(t *testing.T) {
	stx := goldenTx(t)
	tests := []struct {
		name string
		edit func(*tx.SignedTx)
	}{
		{"nonce", func(s *tx.SignedTx) { s.Body.Nonce++ }},
		{"fee", func(s *tx.SignedTx) { s.Body.Fee-- }},
		{"chain", func(s *tx.SignedTx) { s.Body.ChainID = "other" }},
		{"sender", func(s *tx.SignedTx) { s.Body.Sender = addr("Bob") }},
		{"call", func(s *tx.SignedTx) { s.Body.Call.Method = "transfer2" }},
		{"signature", func(s *tx.SignedTx) { s.Signature[0] ^= 1 }},
		{"short signature", func(s *tx.SignedTx) { s.Signature = s.Signature[:10] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cp := *stx
			cp.Signature = bytes.Clone(stx.Signature)
			tc.edit(&cp)
			if err := cp.Verify(); !errors.Is(err, tx.ErrBadSignature) {
				t.Fatalf("got %v", err)
			}
		})
	}
	if _, err := tx.Sign(stx.Body, key("Bob")); err == nil {
		t.Fatal("signed with a key that is not the sender's")
	}
	if _, err := tx.ParseAddress("zz"); err == nil {
		t.Fatal("bad address parsed")
	}
}

// FuzzDecodeTx: decoding never panics, and whatever decodes is the one
// canonical encoding of its value.
func FuzzDecodeTx(f *testing.F) {
	wire, err := goldenTx(f).Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(wire)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, in []byte) {
		stx, err := tx.Decode(in)
		if err != nil {
			return
		}
		_ = stx.Verify()
		out, err := stx.Encode()
		if err != nil {
			t.Fatalf("decoded tx does not encode: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("two encodings of one tx:\n in %x\nout %x", in, out)
		}
	})
}

// TestSmallOrderSenderRefused is issue 9, finding 1, for transactions: a
// sender that is a small-order point (the all-zero address among them) or
// a non-canonical alias of one has signatures anyone can forge;
// crypto/ed25519 accepts them and Verify must not.
func TestSmallOrderSenderRefused(t *testing.T) {
	keys := append(slices.Clone(ed25519xtest.SmallOrder), ed25519xtest.NonCanonical...)
	for _, k := range keys {
		t.Run(k.Name, func(t *testing.T) {
			call, err := tx.NewCall("accounts", "set_balance", struct {
				Who    tx.Address `cbor:"who"`
				Amount uint64     `cbor:"amount"`
			}{addr("Mallory"), 1 << 60})
			if err != nil {
				t.Fatal(err)
			}
			body := tx.Body{ChainID: "integritee-local", Sender: tx.Address(k.Key), Call: call}
			// The attacker picks the fee until the digest is forgeable.
			for body.Fee = 1_000_000; body.Fee < 1_000_064; body.Fee++ {
				digest, err := body.SignBytes()
				if err != nil {
					t.Fatal(err)
				}
				sig := ed25519xtest.Forge(k.Key[:], digest)
				if sig == nil {
					continue
				}
				if !ed25519.Verify(k.Key[:], digest, sig) {
					t.Fatal("crypto/ed25519 refuses the forgery: the test proves nothing")
				}
				stx := &tx.SignedTx{Body: body, Signature: sig}
				if err := stx.Verify(); !errors.Is(err, tx.ErrBadSignature) {
					t.Fatalf("forged transaction: got %v, want %v", err, tx.ErrBadSignature)
				}
				return
			}
			t.Fatal("no forgeable fee found")
		})
	}
}

// An Address is a CBOR byte string of its bytes, as the array would be;
// a byte string of another length is refused.
func TestAddressCBOR(t *testing.T) {
	a := tx.Address{9, 31: 1}
	got, err := codec.Marshal(a)
	if err != nil || !bytes.Equal(got, append([]byte{0x58, 0x20}, a[:]...)) {
		t.Fatalf("encoding %x, %v", got, err)
	}
	var back tx.Address
	if err := codec.Unmarshal(got, &back); err != nil || back != a {
		t.Fatalf("decoded %x, %v", back, err)
	}
	if err := codec.Unmarshal(append([]byte{0x58, 0x21}, make([]byte, 33)...), &back); err == nil {
		t.Error("a byte string of 33 bytes decoded as an address")
	}
}
