package stf_test

import (
	"crypto/ed25519"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/internal/ed25519x/ed25519xtest"
)

// forgedCall returns a SignedCall of signer made without its private key
// (ed25519xtest.Forge), after checking that crypto/ed25519 accepts it: the
// forger varies the amount until the digest is forgeable.
func forgedCall(t *testing.T, signer tx.Address, to tx.Address, nonce uint64) []byte {
	t.Helper()
	for amount := uint64(1); amount <= 64; amount++ {
		c := call(t, stf.Call{Transfer: &stf.Transfer{From: signer, To: to, Amount: amount}})
		d, err := stf.CallSignBytes(c, nonce, env.Target())
		if err != nil {
			t.Fatal(err)
		}
		sig := ed25519xtest.Forge(signer[:], d)
		if sig == nil {
			continue
		}
		if !ed25519.Verify(signer[:], d, sig) {
			t.Fatal("crypto/ed25519 refuses the forgery: the test proves nothing")
		}
		b, err := codec.Marshal(stf.SignedCall{Call: c, Signer: signer, Nonce: nonce, Signature: sig})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Fatalf("no forgeable call of %s", signer)
	return nil
}

// TestSmallOrderSignerRefused is issue 9, finding 1, in the enclave: a
// shard account at a small-order address (or a non-canonical alias of
// one), funded by a shield, cannot be spent from with a forged trusted
// call, nor read with a forged getter.
func TestSmallOrderSignerRefused(t *testing.T) {
	keys := append(slices.Clone(ed25519xtest.SmallOrder), ed25519xtest.NonCanonical...)
	getters := 0
	for _, k := range keys {
		t.Run(k.Name, func(t *testing.T) {
			signer := tx.Address(k.Key)
			f := newFixture(t, true)
			b := f.st.Begin()
			if _, err := f.rt.Shield(env, b, signer, 1000); err != nil {
				t.Fatal(err)
			}
			if _, err := f.st.Commit(b, 2); err != nil {
				t.Fatal(err)
			}
			root := f.st.Root()
			res, changed := f.apply(t, forgedCall(t, signer, addr(bob), 0))
			if res.Status != stf.Rejected || !errors.Is(res.Err, stf.ErrBadSignature) || changed != 0 || f.st.Root() != root {
				t.Fatalf("forged call: status %d, err %v, %d entries changed", res.Status, res.Err, changed)
			}
			if got := f.balance(t, bob); got != 0 {
				t.Fatalf("bob has %d after a forged transfer", got)
			}

			// A getter has no nonce to vary: try both kinds.
			for _, g := range []stf.Getter{{FreeBalance: &signer}, {Nonce: &signer}} {
				gb, err := stf.EncodeGetter(g)
				if err != nil {
					t.Fatal(err)
				}
				expires := chainTime.Add(time.Minute).UnixMilli()
				d, err := stf.GetterSignBytes(gb, expires, stf.ReplyKeyHash(nil), env.Target())
				if err != nil {
					t.Fatal(err)
				}
				sig := ed25519xtest.Forge(signer[:], d)
				if sig == nil {
					continue
				}
				if !ed25519.Verify(signer[:], d, sig) {
					t.Fatal("crypto/ed25519 refuses the forged getter")
				}
				getters++
				signed, err := codec.Marshal(stf.SignedGetter{Getter: gb, Signer: signer, Expires: expires, ReplyKeyHash: stf.ReplyKeyHash(nil), Signature: sig})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.rt.Get(env, f.st.Begin(), signed, chainTime, nil); !errors.Is(err, stf.ErrBadSignature) {
					t.Fatalf("forged getter: got %v, want %v", err, stf.ErrBadSignature)
				}
			}
		})
	}
	if getters == 0 {
		t.Fatal("no getter forged: the getter check proves nothing")
	}
}
