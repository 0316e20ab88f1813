package ed25519x_test

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/integritee-go/integritee/internal/ed25519x"
)

// BenchmarkVerify compares Verify with crypto/ed25519's cofactorless check
// behind the same key and S checks (stdlib): a call-sized message.
func BenchmarkVerify(b *testing.B) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 200)
	sig := ed25519.Sign(priv, msg)
	for _, v := range []struct {
		name   string
		verify func(pub, msg, sig []byte) bool
	}{{"ed25519x", ed25519x.Verify}, {"stdlib", stdlib}} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				if !v.verify(pub, msg, sig) {
					b.Fatal("refused")
				}
			}
		})
	}
}

// BenchmarkBatch checks batches of n signatures by distinct keys of
// call-sized messages, all valid; ns/sig is the cost per signature, to
// set against BenchmarkVerify.
func BenchmarkBatch(b *testing.B) {
	const keys = 1024
	pubs, msgs, sigs := make([][]byte, keys), make([][]byte, keys), make([][]byte, keys)
	for i := range keys {
		pub, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = fmt.Appendf(make([]byte, 0, 200), "%0200d", i)
		pubs[i], sigs[i] = pub, ed25519.Sign(priv, msgs[i])
	}
	// cached: the keys found in a Keys cache that holds them all, as a
	// client's calls on one channel find theirs (all in one scope here).
	cache := ed25519x.NewKeys(2 * keys)
	for _, n := range []int{1, 2, 4, 8, 16, 32, 64, 128, 256} {
		for _, c := range []struct {
			name string
			keys *ed25519x.Keys
		}{{"", nil}, {"/cached", cache}} {
			b.Run(fmt.Sprint(n)+c.name, func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					batch := ed25519x.NewBatch(n, c.keys)
					for j := range n {
						k := (i*n + j) % len(pubs)
						batch.AddIn(&ed25519x.Scope{}, pubs[k], msgs[k], sigs[k])
					}
					for _, ok := range batch.Verify() {
						if !ok {
							b.Fatal("refused")
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sig")
			})
		}
	}
}
