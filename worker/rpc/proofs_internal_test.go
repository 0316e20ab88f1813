package rpc

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cometbft/cometbft/crypto/merkle"
)

func proofItems(n int, r *rand.Rand) [][]byte {
	items := make([][]byte, n)
	for i := range items {
		items[i] = make([]byte, r.IntN(1200))
		for j := range items[i] {
			items[i][j] = byte(r.Uint32())
		}
	}
	return items
}

// TestBlockProofs: blockProofs gives cometbft's root and proofs, field
// for field, for every tree shape up to 300 leaves and a few larger, and
// every proof verifies against the root.
func TestBlockProofs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	sizes := []int{}
	for n := range 301 {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 511, 512, 513, 1000, 1024, 4097)
	for _, n := range sizes {
		items := proofItems(n, r)
		wantRoot, want := merkle.ProofsFromByteSlices(items)
		root, got := blockProofs(items)
		if !bytes.Equal(root, wantRoot) {
			t.Fatalf("%d items: root %x, want %x", n, root, wantRoot)
		}
		if len(got) != len(want) {
			t.Fatalf("%d items: %d proofs, want %d", n, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(*got[i], *want[i]) {
				t.Fatalf("%d items: proof %d = %+v, want %+v", n, i, *got[i], *want[i])
			}
			if err := got[i].Verify(root, items[i]); err != nil {
				t.Fatalf("%d items: proof %d: %v", n, i, err)
			}
		}
	}
}

func BenchmarkBlockProofs(b *testing.B) {
	items := proofItems(100, rand.New(rand.NewPCG(1, 2)))
	for _, impl := range []struct {
		name string
		f    func([][]byte) ([]byte, []*merkle.Proof)
	}{{"cometbft", merkle.ProofsFromByteSlices}, {"blockProofs", blockProofs}} {
		b.Run(fmt.Sprintf("%s/leaves=%d", impl.name, len(items)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				impl.f(items)
			}
		})
	}
}
