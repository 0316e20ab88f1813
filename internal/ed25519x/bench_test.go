package ed25519x_test

import (
	"crypto/ed25519"
	"testing"

	"github.com/integritee-go/integritee/internal/ed25519x"
)

// BenchmarkVerify compares Verify with the same contract written on
// crypto/ed25519 (reference): a call-sized message.
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
	}{{"ed25519x", ed25519x.Verify}, {"stdlib", reference}} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				if !v.verify(pub, msg, sig) {
					b.Fatal("refused")
				}
			}
		})
	}
}
