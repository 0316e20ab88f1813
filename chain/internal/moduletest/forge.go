package moduletest

import (
	"testing"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/internal/ed25519x/ed25519xtest"
)

// ForgedTx returns a transaction of sender (a small-order key) signed
// without a private key (ed25519xtest.Forge) that crypto/ed25519 accepts:
// the forger varies the fee from minFee until the digest is forgeable. It
// fails the test if crypto/ed25519 refuses the forgery, since a test that
// shows the project refusing it then proves nothing.
func ForgedTx(t testing.TB, chainID string, sender tx.Address, nonce uint64, call tx.Call, minFee uint64) []byte {
	t.Helper()
	body := tx.Body{ChainID: chainID, Sender: sender, Nonce: nonce, Call: call}
	for body.Fee = minFee; body.Fee < minFee+64; body.Fee++ {
		digest, err := body.SignBytes()
		if err != nil {
			t.Fatal(err)
		}
		sig := ed25519xtest.Forge(sender[:], digest)
		if sig == nil {
			continue
		}
		if !ed25519xtest.AcceptedByStdlib(sender[:], digest, sig) {
			t.Fatal("crypto/ed25519 refuses the forgery: the test proves nothing")
		}
		wire, err := (&tx.SignedTx{Body: body, Signature: sig}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		return wire
	}
	t.Fatalf("no forgeable fee for %s", sender)
	return nil
}
