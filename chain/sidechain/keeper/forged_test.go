package keeper_test

import (
	"crypto/ed25519"
	"errors"
	"slices"
	"testing"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/internal/ed25519x/ed25519xtest"
)

// TestSmallOrderAuthorRefused: a header "signed" by a small-order author
// key (or a non-canonical alias of one) carries a forged signature that
// crypto/ed25519 accepts; Verify refuses it (issue 9, finding 1).
func TestSmallOrderAuthorRefused(t *testing.T) {
	keys := append(slices.Clone(ed25519xtest.SmallOrder), ed25519xtest.NonCanonical...)
	for _, k := range keys {
		t.Run(k.Name, func(t *testing.T) {
			hdr := sidechain.Header{
				Shard: measurement("v1"), Number: 1, ChainHeight: 3, StateHash: types.Hash{8},
				Timestamp: 1_700_000_000_000, Author: tx.Address(k.Key),
			}
			// The forger varies the timestamp until the hash is forgeable.
			for ; hdr.Timestamp < 1_700_000_000_064; hdr.Timestamp++ {
				h, err := hdr.Hash()
				if err != nil {
					t.Fatal(err)
				}
				sig := ed25519xtest.Forge(k.Key[:], h[:])
				if sig == nil {
					continue
				}
				if !ed25519.Verify(k.Key[:], h[:], sig) {
					t.Fatal("crypto/ed25519 refuses the forgery: the test proves nothing")
				}
				sh := sidechain.SignedHeader{Header: hdr, Signature: sig}
				if _, err := sh.Verify(); !errors.Is(err, sidechain.ErrBadHeaderSignature) {
					t.Fatalf("forged header: got %v, want %v", err, sidechain.ErrBadHeaderSignature)
				}
				return
			}
			t.Fatal("no forgeable header found")
		})
	}
}
