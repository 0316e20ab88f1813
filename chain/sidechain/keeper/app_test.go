package keeper_test

import (
	"bytes"
	"crypto/sha256"
	"reflect"
	"strconv"
	"testing"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

const appChainID = "wiring"

// newAppChain is the ABCI application with the node's runtime
// (node.Modules) on an in-memory store, driven block by block, one second
// apart.
func newAppChain(t testing.TB) *moduletest.App {
	t.Helper()
	g := moduletest.DevGenesis(t)
	return moduletest.NewApp(t, moduletest.AppGenesis{ChainID: appChainID, Dev: true, Time: g.Time, Teerex: g.Teerex, Modules: node.Modules})
}

// registration is the register_enclave call of a sim enclave of
// measurement m whose signer is dev account name.
func registration(t testing.TB, c *moduletest.App, name string, m types.Hash) tx.Call {
	t.Helper()
	reg, err := tx.NewCall(teerex.Name, teerex.MethodRegisterEnclave, moduletest.SimRegistration(t, accounts.DevAddress(name), m, c.Genesis, "ws://127.0.0.1:2000"))
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

var wantCode = moduletest.WantCode

// TestAppWiring runs the module inside the real ABCI application with the
// node's runtime: a confirmation executes, its repeat is refused by
// CheckTx, and the records are queried with proofs.
func TestAppWiring(t *testing.T) {
	c := newAppChain(t)
	shard := measurement("v1")
	c.OKBlock(c.SignDev("Dave", registration(t, c, "Dave", shard)))
	b1 := first(shard, 1, 1)
	conf := confirmCall(t, b1)
	c.OKBlock(c.SignDev("Dave", conf))

	res := c.CheckTx(c.SignDev("Dave", conf))
	wantCode(t, res.Codespace, res.Code, res.Log, sidechain.ErrAlreadyConfirmed)
	want := sidechain.Confirmation{Shard: shard, Number: 1, HeaderHash: hashOf(t, b1), ChainHeight: 1, StateHash: b1.StateHash,
		Enclave: dave, ConfirmedHeight: 2}
	for _, path := range []string{"/sidechain/shard/" + shard.String(), "/sidechain/block/" + shard.String() + "/1"} {
		var got sidechain.Confirmation
		if !c.QueryProved(path, &got) || got != want {
			t.Fatalf("%s: %+v, want %+v", path, got, want)
		}
	}
	var none sidechain.Confirmation
	if c.QueryProved("/sidechain/block/"+shard.String()+"/2", &none) {
		t.Fatalf("block 2 recorded: %+v", none)
	}
}

// TestAppVotes: with two enclaves, a first vote is recorded (and queried
// with a proof), its repeat is refused by CheckTx, and the second vote
// confirms the block and removes the pending record.
func TestAppVotes(t *testing.T) {
	c := newAppChain(t)
	shard := measurement("v1")
	c.OKBlock(c.SignDev("Dave", registration(t, c, "Dave", shard)), c.SignDev("Eve", registration(t, c, "Eve", shard)))
	b1 := first(shard, 1, 1)
	conf := confirmCall(t, b1)
	c.OKBlock(c.SignDev("Dave", conf))

	votesPath := "/sidechain/votes/" + shard.String() + "/1"
	var v sidechain.Votes
	want := sidechain.Votes{Shard: shard, Number: 1, Candidates: []sidechain.Candidate{{HeaderHash: hashOf(t, b1), Voters: []tx.Address{dave}, Header: &b1}}}
	if !c.QueryProved(votesPath, &v) || !reflect.DeepEqual(v, want) {
		t.Fatalf("%s: %+v, want %+v", votesPath, v, want)
	}
	var none sidechain.Confirmation
	if c.QueryProved("/sidechain/block/"+shard.String()+"/1", &none) {
		t.Fatalf("one vote of two confirmed block 1: %+v", none)
	}
	res := c.CheckTx(c.SignDev("Dave", conf))
	wantCode(t, res.Codespace, res.Code, res.Log, sidechain.ErrAlreadyVoted)
	c.Nonces[dave]-- // a refused CheckTx consumes no nonce

	c.OKBlock(c.SignDev("Eve", conf))
	var got sidechain.Confirmation
	if !c.QueryProved("/sidechain/block/"+shard.String()+"/1", &got) || got.HeaderHash != hashOf(t, b1) || got.Enclave != eve {
		t.Fatalf("block 1: %+v", got)
	}
	if c.QueryProved(votesPath, &v) {
		t.Fatalf("pending votes left after the confirmation: %+v", v)
	}
	res = c.CheckTx(c.SignDev("Dave", conf))
	wantCode(t, res.Codespace, res.Code, res.Log, sidechain.ErrAlreadyConfirmed)
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
	c.OKBlock(c.SignDev("Dave", registration(t, c, "Dave", shard)), c.SignDev("Bob", shield))

	u := sidechain.Unshield{Beneficiary: charlie, Amount: 400, CallHash: sha256.Sum256([]byte("unshield 400 to Charlie"))}
	root, proofs := sidechain.UnshieldsRoot([]sidechain.Unshield{u})
	b1 := first(shard, 1, 1)
	b1.UnshieldsRoot = root
	c.OKBlock(c.SignDev("Dave", confirmCall(t, b1)))
	pay, err := sidechain.UnshieldCall(shard, 1, u, proofs[0])
	if err != nil {
		t.Fatal(err)
	}
	charlieBefore := c.Balance(charlie)
	c.OKBlock(c.SignDev("Dave", pay))
	if got := c.Balance(charlie); got != charlieBefore+400 {
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
	vaultBefore, ferdieBefore := c.Balance(bridge.VaultAddress(shard)), c.Balance(ferdie)
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
		res := c.CheckTx(c.SignDev("Dave", a.call))
		wantCode(t, res.Codespace, res.Code, a.name+": "+res.Log, a.want)
		c.Nonces[dave]-- // a refused CheckTx consumes no nonce
	}
	var txs [][]byte
	for _, a := range attempts {
		txs = append(txs, c.SignDev("Dave", a.call))
	}
	for i, r := range c.Block(txs...) {
		wantCode(t, r.Codespace, r.Code, attempts[i].name+": "+r.Log, attempts[i].want)
	}

	if got := c.Balance(ferdie); got != ferdieBefore {
		t.Errorf("Ferdie's balance %d, was %d", got, ferdieBefore)
	}
	if got := c.Balance(bridge.VaultAddress(shard)); got != vaultBefore || got != 600 {
		t.Errorf("vault %d, was %d, want 600", got, vaultBefore)
	}
	var conf sidechain.Confirmation
	if !c.QueryProved("/sidechain/block/"+shard.String()+"/1", &conf) || conf.HeaderHash != hashOf(t, b1) || conf.UnshieldsRoot != root {
		t.Fatalf("block 1 is %+v, want the first", conf)
	}
	if c.QueryProved("/sidechain/block/"+shard.String()+"/2", &conf) {
		t.Fatalf("the fork's block 2 recorded: %+v", conf)
	}
	var rec bridge.Unshielded
	if c.QueryProved("/bridge/unshielded/"+shard.String()+"/"+types.Hash(u2.CallHash).String(), &rec) {
		t.Fatalf("U' recorded: %+v", rec)
	}
}

// TestAppEarlyVotes: in the node's application, CheckTx admits a vote for
// a number after the next (within the window) and refuses one beyond it;
// a block whose votes come later numbers first confirms them all, and the
// deciding vote's result data (which the next header's results hash
// covers) names the last block confirmed.
func TestAppEarlyVotes(t *testing.T) {
	c := newAppChain(t)
	shard := measurement("v1")
	c.OKBlock(c.SignDev("Dave", registration(t, c, "Dave", shard)), c.SignDev("Eve", registration(t, c, "Eve", shard)))
	b1 := first(shard, 1, 1)
	b2 := child(t, b1, 1, 2)
	far := numbered(child(t, b1, 1, 3), 2+sidechain.VoteWindow)
	res := c.CheckTx(c.SignDev("Dave", confirmCall(t, far)))
	wantCode(t, res.Codespace, res.Code, res.Log, sidechain.ErrFutureBlock)
	c.Nonces[dave]-- // a refused CheckTx consumes no nonce

	early := c.SignDev("Dave", confirmCall(t, b2))
	if res := c.CheckTx(early); res.Code != 0 {
		t.Fatalf("CheckTx of an early vote: %s/%d %s", res.Codespace, res.Code, res.Log)
	}
	results := c.OKBlock(early, c.SignDev("Eve", confirmCall(t, b2)), c.SignDev("Dave", confirmCall(t, b1)), c.SignDev("Eve", confirmCall(t, b1)))
	for i, want := range [][]byte{nil, nil, nil, sidechain.ConfirmedResult(1, 2, hashOf(t, b2))} {
		if !bytes.Equal(results[i].Data, want) {
			t.Fatalf("tx %d: data %q, want %q", i, results[i].Data, want)
		}
	}
	for n, h := range []sidechain.Header{b1, b2} {
		var got sidechain.Confirmation
		path := "/sidechain/block/" + shard.String() + "/" + strconv.Itoa(n+1)
		if !c.QueryProved(path, &got) || got.HeaderHash != hashOf(t, h) || got.Enclave != eve {
			t.Fatalf("%s: %+v", path, got)
		}
		var v sidechain.Votes
		if path := "/sidechain/votes/" + shard.String() + "/" + strconv.Itoa(n+1); c.QueryProved(path, &v) {
			t.Fatalf("%s: pending votes left: %+v", path, v)
		}
	}
}
