package keeper_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/attestation"
	app "github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/tee/sim"
)

const appChainID = "wiring"

// appChain is the ABCI application with the node's runtime (node.Modules)
// on an in-memory store, driven block by block, one second apart.
type appChain struct {
	t      testing.TB
	app    *app.App
	height int64
	nonces map[string]uint64
	// genesis is the chain's genesis ID.
	genesis types.Hash
}

func newAppChain(t testing.TB) *appChain {
	t.Helper()
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Options{ChainID: appChainID, Store: st, Modules: node.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := json.Marshal(accounts.DevGenesis())
	if err != nil {
		t.Fatal(err)
	}
	tg, err := devnet.TeerexGenesis(moduletest.T0)
	if err != nil {
		t.Fatal(err)
	}
	tgj, err := json.Marshal(tg)
	if err != nil {
		t.Fatal(err)
	}
	state, err := json.Marshal(app.AppState{Dev: true, Modules: map[string]json.RawMessage{accounts.Name: ag, teerex.Name: tgj}})
	if err != nil {
		t.Fatal(err)
	}
	vals, valsHash := moduletest.Validators(appChainID, 1)
	if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: appChainID, Time: moduletest.T0, InitialHeight: 1, AppStateBytes: state, Validators: vals}); err != nil {
		t.Fatal(err)
	}
	return &appChain{t: t, app: a, nonces: map[string]uint64{}, genesis: teerex.GenesisID(appChainID, 1, valsHash)}
}

// signed is a transaction of dev account name with its next nonce.
func (c *appChain) signed(name string, call tx.Call) []byte {
	c.t.Helper()
	body := tx.Body{ChainID: appChainID, Sender: accounts.DevAddress(name), Nonce: c.nonces[name], Fee: accounts.Unit / 100, Call: call}
	c.nonces[name]++
	s, err := tx.Sign(body, accounts.DevKey(name))
	if err != nil {
		c.t.Fatal(err)
	}
	raw, err := s.Encode()
	if err != nil {
		c.t.Fatal(err)
	}
	return raw
}

// block finalizes and commits the next block.
func (c *appChain) block(txs ...[]byte) []*abci.ExecTxResult {
	c.t.Helper()
	c.height++
	ctx := context.Background()
	res, err := c.app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: c.height, Hash: moduletest.BlockHash(c.height), Time: moduletest.T0.Add(time.Duration(c.height) * time.Second), Txs: txs})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.app.Commit(ctx, &abci.RequestCommit{}); err != nil {
		c.t.Fatal(err)
	}
	return res.TxResults
}

// okBlock is block, failing on any failed transaction.
func (c *appChain) okBlock(txs ...[]byte) {
	c.t.Helper()
	for i, r := range c.block(txs...) {
		if r.Code != 0 {
			c.t.Fatalf("block %d tx %d: %s/%d %s", c.height, i, r.Codespace, r.Code, r.Log)
		}
	}
}

func (c *appChain) checkTx(raw []byte) *abci.ResponseCheckTx {
	c.t.Helper()
	res, err := c.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw})
	if err != nil {
		c.t.Fatal(err)
	}
	return res
}

// query reads a committed value into v and reports whether it exists.
func (c *appChain) query(path string, v any) bool {
	c.t.Helper()
	res, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: path, Prove: true})
	if err != nil || res.Code != 0 {
		c.t.Fatalf("query %s: %v %+v", path, err, res)
	}
	if len(res.Value) == 0 {
		return false
	}
	if err := codec.Unmarshal(res.Value, v); err != nil {
		c.t.Fatalf("query %s: %v", path, err)
	}
	return true
}

func (c *appChain) balance(a tx.Address) uint64 {
	c.t.Helper()
	var acc accounts.Account
	c.query("/accounts/"+a.String(), &acc)
	return acc.Balance
}

// registration is the register_enclave call of a sim enclave of
// measurement m whose signer is dev account name.
func registration(t testing.TB, name string, m types.Hash) tx.Call {
	t.Helper()
	mm := [32]byte(m)
	enc, err := sim.New(sim.Config{Measurement: &mm})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("shielding key")
	_, valsHash := moduletest.Validators(appChainID, 1)
	q, err := enc.Quote(teerex.ReportData(accounts.DevAddress(name), key, teerex.GenesisID(appChainID, 1, valsHash)))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := teerex.RegisterEnclaveCall(teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}, key, "ws://127.0.0.1:2000")
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func confirmCall(t testing.TB, h sidechain.Header) tx.Call {
	t.Helper()
	call, err := sidechain.ConfirmCall(h)
	if err != nil {
		t.Fatal(err)
	}
	return call
}

// wantCode checks that a result carries the error's codespace and code.
func wantCode(t testing.TB, space string, code uint32, log string, want *types.Error) {
	t.Helper()
	if space != want.Codespace || code != want.Code {
		t.Fatalf("got %s/%d %q, want %s/%d (%s)", space, code, log, want.Codespace, want.Code, want.Msg)
	}
}

// TestAppWiring runs the module inside the real ABCI application with the
// node's runtime: a confirmation executes, its repeat is refused by
// CheckTx, and the records are queried with proofs.
func TestAppWiring(t *testing.T) {
	c := newAppChain(t)
	shard := measurement("v1")
	c.okBlock(c.signed("Dave", registration(t, "Dave", shard)))
	b1 := first(shard, 1, 1)
	conf := confirmCall(t, b1)
	c.okBlock(c.signed("Dave", conf))

	res := c.checkTx(c.signed("Dave", conf))
	wantCode(t, res.Codespace, res.Code, res.Log, sidechain.ErrAlreadyConfirmed)
	want := sidechain.Confirmation{Shard: shard, Number: 1, HeaderHash: hashOf(t, b1), ChainHeight: 1, StateHash: b1.StateHash,
		Enclave: dave, ConfirmedHeight: 2}
	for _, path := range []string{"/sidechain/shard/" + shard.String(), "/sidechain/block/" + shard.String() + "/1"} {
		var got sidechain.Confirmation
		if !c.query(path, &got) || got != want {
			t.Fatalf("%s: %+v, want %+v", path, got, want)
		}
	}
	var none sidechain.Confirmation
	if c.query("/sidechain/block/"+shard.String()+"/2", &none) {
		t.Fatalf("block 2 recorded: %+v", none)
	}
}

// The rollback attack at chain level (issue 8, attack 3). Dave's block 1
// unshields U to Charlie, the chain confirms it and U is paid. Then Dave's
// host rolls the enclave's state back to before block 1 and has it execute
// other calls: it signs another block 1 (same number and parent, another
// state) whose unshield U' pays the same amount to Ferdie, with a proof
// valid in that fork's root. The chain refuses the fork (ErrForkedBlock),
// and U' is refused although it names a confirmed block number, since it
// is not in the root of the block 1 the chain confirmed (ErrUnshieldProof);
// a fork can neither be attached later as block 2. U' has its own call
// hash, so once-per-call-hash would not have stopped it: the confirmed
// chain is what makes the vault pay the funds once.
func TestRolledBackEnclaveCannotPayTwice(t *testing.T) {
	c := newAppChain(t)
	shard := measurement("v1")
	charlie, ferdie := accounts.DevAddress("Charlie"), accounts.DevAddress("Ferdie")
	shield, err := tx.NewCall(bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 1000, EncryptedRecipient: []byte("r")})
	if err != nil {
		t.Fatal(err)
	}
	c.okBlock(c.signed("Dave", registration(t, "Dave", shard)), c.signed("Bob", shield))

	u := sidechain.Unshield{Beneficiary: charlie, Amount: 400, CallHash: sha256.Sum256([]byte("unshield 400 to Charlie"))}
	root, proofs := sidechain.UnshieldsRoot([]sidechain.Unshield{u})
	b1 := first(shard, 1, 1)
	b1.UnshieldsRoot = root
	c.okBlock(c.signed("Dave", confirmCall(t, b1)))
	pay, err := sidechain.UnshieldCall(shard, 1, u, proofs[0])
	if err != nil {
		t.Fatal(err)
	}
	charlieBefore := c.balance(charlie)
	c.okBlock(c.signed("Dave", pay))
	if got := c.balance(charlie); got != charlieBefore+400 {
		t.Fatalf("Charlie got %d, want 400", got-charlieBefore)
	}

	// The rolled-back enclave's fork.
	u2 := sidechain.Unshield{Beneficiary: ferdie, Amount: 400, CallHash: sha256.Sum256([]byte("unshield 400 to Ferdie"))}
	forkRoot, forkProofs := sidechain.UnshieldsRoot([]sidechain.Unshield{u2})
	if err := forkProofs[0].Verify(forkRoot[:], sidechain.UnshieldLeaf(u2)); err != nil {
		t.Fatalf("the fork's proof must be valid in the fork, or the test proves nothing: %v", err)
	}
	fork1 := first(shard, 1, 0xf1)
	fork1.UnshieldsRoot = forkRoot
	fork2 := child(t, fork1, 3, 0xf2)
	payFork := func(number uint64) tx.Call {
		call, err := sidechain.UnshieldCall(shard, number, u2, forkProofs[0])
		if err != nil {
			t.Fatal(err)
		}
		return call
	}
	vaultBefore, ferdieBefore := c.balance(bridge.VaultAddress(shard)), c.balance(ferdie)
	attempts := []struct {
		name string
		call tx.Call
		want *types.Error
	}{
		{"fork's block 1", confirmCall(t, fork1), sidechain.ErrForkedBlock},
		{"U' in block 1", payFork(1), bridge.ErrUnshieldProof},
		{"fork's block 2", confirmCall(t, fork2), sidechain.ErrForkedBlock},
		{"U' in block 2", payFork(2), bridge.ErrBlockNotConfirmed},
	}
	// The mempool refuses each; a proposer that includes them anyway gets
	// the same refusals.
	for _, a := range attempts {
		res := c.checkTx(c.signed("Dave", a.call))
		wantCode(t, res.Codespace, res.Code, a.name+": "+res.Log, a.want)
		c.nonces["Dave"]-- // a refused CheckTx consumes no nonce
	}
	var txs [][]byte
	for _, a := range attempts {
		txs = append(txs, c.signed("Dave", a.call))
	}
	for i, r := range c.block(txs...) {
		wantCode(t, r.Codespace, r.Code, attempts[i].name+": "+r.Log, attempts[i].want)
	}

	if got := c.balance(ferdie); got != ferdieBefore {
		t.Errorf("Ferdie's balance %d, was %d", got, ferdieBefore)
	}
	if got := c.balance(bridge.VaultAddress(shard)); got != vaultBefore || got != 600 {
		t.Errorf("vault %d, was %d, want 600", got, vaultBefore)
	}
	var conf sidechain.Confirmation
	if !c.query("/sidechain/block/"+shard.String()+"/1", &conf) || conf.HeaderHash != hashOf(t, b1) || conf.UnshieldsRoot != root {
		t.Fatalf("block 1 is %+v, want the first", conf)
	}
	if c.query("/sidechain/block/"+shard.String()+"/2", &conf) {
		t.Fatalf("the fork's block 2 recorded: %+v", conf)
	}
	var rec bridge.Unshielded
	if c.query("/bridge/unshielded/"+shard.String()+"/"+types.Hash(u2.CallHash).String(), &rec) {
		t.Fatalf("U' recorded: %+v", rec)
	}
}
