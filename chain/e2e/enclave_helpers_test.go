package e2e_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/tee/sim"
)

// measurement is the MRENCLAVE of a named test enclave release; it is also
// the ID of the shard that release serves by default.
func measurement(release string) types.Hash {
	return types.Hash(sha256.Sum256([]byte("e2e enclave " + release)))
}

// simEnclave is a sim-backend enclave whose signer key is a dev account
// (funded on dev genesis, so it can pay its fees).
type simEnclave struct {
	name         string
	key          ed25519.PrivateKey
	addr         tx.Address
	shieldingKey []byte
	evidence     teerex.Evidence
}

// newSimEnclave quotes, with the sim backend's dev PKI, an enclave of
// measurement m that follows the chain of genesis ID genesis: its report
// data binds dev account name, its shielding key and genesis, as teerex
// requires.
func newSimEnclave(t testing.TB, name string, m, genesis types.Hash) *simEnclave {
	t.Helper()
	mr := [32]byte(m)
	b, err := sim.New(sim.Config{Measurement: &mr, ISVSVN: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := &simEnclave{name: name, key: accounts.DevKey(name), addr: accounts.DevAddress(name),
		shieldingKey: []byte("shielding key of " + name)}
	q, err := b.Quote(teerex.ReportData(e.addr, e.shieldingKey, genesis))
	if err != nil {
		t.Fatal(err)
	}
	e.evidence = teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}
	return e
}

// register is the register_enclave argument.
func (e *simEnclave) register(url string) teerex.RegisterEnclave {
	return teerex.RegisterEnclave{Attestation: e.evidence, ShieldingKey: e.shieldingKey, WorkerURL: url}
}
