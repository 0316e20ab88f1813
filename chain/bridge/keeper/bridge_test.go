package keeper_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/bridge/keeper"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

func TestInvoke(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	ct := bytes.Repeat([]byte{0xc1}, 1500)
	r := c.call(bob, bridge.MethodInvoke, bridge.Invoke{Shard: shard, Ciphertext: ct})
	wantErr(t, r.Err)
	if r.Changes != 0 {
		t.Fatalf("invoke wrote %d keys", r.Changes)
	}
	ev, ok := findEvent(r, bridge.EventInvoked)
	if !ok || ev["shard"].Value != shard.String() || ev["sender"].Value != bob.String() {
		t.Fatalf("event %v", r.Events)
	}
	if got, _ := base64.StdEncoding.DecodeString(ev["ciphertext"].Value); !bytes.Equal(got, ct) || ev["ciphertext"].Index {
		t.Fatal("ciphertext attribute wrong or indexed")
	}
	for name, ct := range map[string][]byte{
		"empty":     nil,
		"oversized": make([]byte, bridge.MaxCiphertextBytes+1),
	} {
		t.Run(name, func(t *testing.T) {
			rejected(t, c.call(bob, bridge.MethodInvoke, bridge.Invoke{Shard: shard, Ciphertext: ct}), types.ErrMalformedCall)
		})
	}
}

func TestShieldFunds(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	vault := bridge.VaultAddress(shard)
	before := c.Balance(bob)
	r := c.call(bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 700, EncryptedRecipient: []byte("enc(bob's incognito account)")})
	wantErr(t, r.Err)
	if c.Balance(vault) != 700 || c.Balance(bob) != before-700 {
		t.Fatalf("vault %d, bob %d", c.Balance(vault), c.Balance(bob))
	}
	if ev, ok := findEvent(r, bridge.EventShielded); !ok || ev["amount"].Value != "700" || ev["encrypted_recipient"].Index {
		t.Fatalf("events %v", r.Events)
	}
	if _, ok := findEvent(r, accounts.EventTransfer); !ok {
		t.Fatal("no transfer event")
	}
	rejected(t, c.call(bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: before, EncryptedRecipient: []byte("x")}),
		accounts.ErrInsufficientFunds)
	rejected(t, c.call(bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 0, EncryptedRecipient: []byte("x")}),
		types.ErrMalformedCall)
	rejected(t, c.call(bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 1}), types.ErrMalformedCall)
	if other := bridge.VaultAddress(measurement("v2")); other == vault || c.Balance(other) != 0 {
		t.Fatal("vaults of different shards must differ")
	}
}

// An unshield pays only as the unshields root of a confirmed shard block
// proves, once per call hash, whichever enclave of the shard submits it;
// every refusal changes nothing.
func TestUnshield(t *testing.T) {
	c := newChain(t)
	shard, other := measurement("v1"), measurement("other release")
	c.Register(dave, shard)
	c.Register(eve, shard)
	c.Register(ferd, other)
	wantErr(t, c.call(bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 1000, EncryptedRecipient: []byte("r")}).Err)
	vault := bridge.VaultAddress(shard)
	zoe := accounts.DevAddress("Zoe")
	b1 := c.confirmBlock(shard, 1,
		unshield{zoe, 300, types.Hash{0xca, 1}},
		unshield{zoe, 200, types.Hash{0xca, 2}},
		unshield{bob, 50, types.Hash{0xca, 3}},
		unshield{zoe, 701, types.Hash{0xca, 4}}, // more than the vault will hold
	)
	// A faulty block 2 repeats the first call hash with another amount.
	b2 := c.confirmBlock(shard, 2, unshield{zoe, 1, types.Hash{0xca, 1}})
	// The same unshield as b1[1], proved in another shard's block.
	elsewhere := c.confirmBlock(other, 1, unshield{zoe, 200, types.Hash{0xca, 2}})
	c.Next(time.Second)

	r := c.call(dave, bridge.MethodUnshieldFunds, b1[0])
	wantErr(t, r.Err)
	if ev, ok := findEvent(r, bridge.EventUnshielded); !ok || ev["beneficiary"].Value != zoe.String() || ev["amount"].Value != "300" ||
		ev["call_hash"].Value != b1[0].CallHash.String() || ev["enclave"].Value != dave.String() {
		t.Fatalf("events %v", r.Events)
	}

	pending := b1[1]
	// with returns pending changed by f, its proof a deep copy.
	with := func(f func(u *bridge.UnshieldFunds)) bridge.UnshieldFunds {
		u := pending
		u.Proof.Aunts = nil
		for _, a := range pending.Proof.Aunts {
			u.Proof.Aunts = append(u.Proof.Aunts, bytes.Clone(a))
		}
		f(&u)
		return u
	}
	tests := []struct {
		name   string
		sender [32]byte
		call   bridge.UnshieldFunds
		want   []error
	}{
		{"same call by the other enclave", eve, b1[0], []error{bridge.ErrAlreadyUnshielded}},
		{"same call by the same enclave", dave, b1[0], []error{bridge.ErrAlreadyUnshielded}},
		{"same call hash proved in another block", eve, b2[0], []error{bridge.ErrAlreadyUnshielded}},
		{"unconfirmed block", dave, with(func(u *bridge.UnshieldFunds) { u.Block = 3 }), []error{bridge.ErrBlockNotConfirmed}},
		{"block zero", dave, with(func(u *bridge.UnshieldFunds) { u.Block = 0 }), []error{bridge.ErrBlockNotConfirmed}},
		{"another confirmed block", dave, with(func(u *bridge.UnshieldFunds) { u.Block = 2 }), []error{bridge.ErrUnshieldProof}},
		{"wrong proof", dave, with(func(u *bridge.UnshieldFunds) { u.Proof.Aunts[0][0] ^= 1 }), []error{bridge.ErrUnshieldProof}},
		{"wrong amount", dave, with(func(u *bridge.UnshieldFunds) { u.Amount = 201 }), []error{bridge.ErrUnshieldProof}},
		{"wrong beneficiary", dave, with(func(u *bridge.UnshieldFunds) { u.Beneficiary = bob }), []error{bridge.ErrUnshieldProof}},
		{"wrong call hash", dave, with(func(u *bridge.UnshieldFunds) { u.CallHash[1] = 9 }), []error{bridge.ErrUnshieldProof}},
		{"proof of another leaf", dave, with(func(u *bridge.UnshieldFunds) { u.Proof = b1[2].Proof }), []error{bridge.ErrUnshieldProof}},
		{"another leaf's index", dave, with(func(u *bridge.UnshieldFunds) { u.Proof.Index = 2 }), []error{bridge.ErrUnshieldProof}},
		{"another total", dave, with(func(u *bridge.UnshieldFunds) { u.Proof.Total = 5 }), []error{bridge.ErrUnshieldProof}},
		{"index past the total", dave, with(func(u *bridge.UnshieldFunds) { u.Proof.Index = 4 }), []error{bridge.ErrUnshieldProof}},
		{"no proof", dave, with(func(u *bridge.UnshieldFunds) { u.Proof = bridge.UnshieldProof{} }), []error{bridge.ErrUnshieldProof}},
		{"index and total beyond int64", dave, with(func(u *bridge.UnshieldFunds) { u.Proof.Index, u.Proof.Total = math.MaxUint64-1, math.MaxUint64 }),
			[]error{bridge.ErrUnshieldProof}},
		{"proof from another shard's block", dave, with(func(u *bridge.UnshieldFunds) { u.Proof = elsewhere[0].Proof }), []error{bridge.ErrUnshieldProof}},
		{"too many aunts", dave, with(func(u *bridge.UnshieldFunds) {
			u.Proof.Aunts = slices.Repeat([][]byte{make([]byte, 32)}, bridge.MaxProofAunts+1)
		}), []error{types.ErrMalformedCall}},
		{"zero", dave, with(func(u *bridge.UnshieldFunds) { u.Amount = 0 }), []error{types.ErrMalformedCall}},
		{"not an enclave", bob, pending, []error{bridge.ErrNotActive, teerex.ErrNotRegistered}},
		{"enclave of another shard", ferd, pending, []error{bridge.ErrNotShardEnclave}},
		{"enclave of another shard, its block", ferd, elsewhere[0], []error{accounts.ErrInsufficientFunds}},
		{"more than the vault holds", eve, b1[3], []error{accounts.ErrInsufficientFunds}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rejected(t, c.call(tc.sender, bridge.MethodUnshieldFunds, tc.call), tc.want...)
		})
	}
	if c.Balance(zoe) != 300 || c.Balance(vault) != 700 {
		t.Fatalf("paid more than once: beneficiary %d, vault %d", c.Balance(zoe), c.Balance(vault))
	}
	u, done, err := c.bridge.Unshielded(c.KV, shard, b1[0].CallHash)
	if err != nil || !done || u.Enclave != dave || u.Amount != 300 || u.Beneficiary != zoe || u.Height != 11 {
		t.Fatalf("unshield record %+v %v %v", u, done, err)
	}
	if _, done, err := c.bridge.Unshielded(c.KV, shard, pending.CallHash); err != nil || done {
		t.Fatalf("refused unshield recorded: %v %v", done, err)
	}
	// The other unshields of the block pay, from either enclave.
	wantErr(t, c.call(eve, bridge.MethodUnshieldFunds, pending).Err)
	wantErr(t, c.call(dave, bridge.MethodUnshieldFunds, b1[2]).Err)
	if c.Balance(zoe) != 500 || c.Balance(vault) != 450 {
		t.Fatalf("beneficiary %d, vault %d", c.Balance(zoe), c.Balance(vault))
	}
}

// A bridge built without the sidechain cannot judge an unshield: it halts
// (an error that is no *types.Error) rather than pay.
func TestUnshieldNeedsShardBlocks(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.Register(dave, shard)
	wantErr(t, c.call(bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 10, EncryptedRecipient: []byte("r")}).Err)
	args := c.confirmBlock(shard, 1, unshield{bob, 1, types.Hash{1}})[0]
	m := keeper.New(c.Teerex.Keeper, c.Accounts.Keeper, c.Accounts.Keeper, nil)
	call, err := tx.NewCall(bridge.Name, bridge.MethodUnshieldFunds, args)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := m.DecodeCall(call)
	if err != nil {
		t.Fatal(err)
	}
	ctx := c.Ctx.WithStore(c.KV.Branch())
	ctx.Sender = dave
	err = m.Execute(ctx, msg)
	if re := (*types.Error)(nil); err == nil || errors.As(err, &re) {
		t.Fatalf("unwired bridge: %v (must be an internal error that halts)", err)
	}
}

func TestExpiredEnclaveCannotAct(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.Register(dave, shard)
	wantErr(t, c.call(bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 10, EncryptedRecipient: []byte("r")}).Err)
	pay := c.confirmBlock(shard, 1, unshield{bob, 1, types.Hash{1}})[0]
	c.Next(24*time.Hour + time.Second)
	rejected(t, c.call(dave, bridge.MethodUnshieldFunds, pay), bridge.ErrNotActive, teerex.ErrExpired)
	rejected(t, c.call(dave, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: 3, BlockHash: blockHash(3)}),
		bridge.ErrNotActive, teerex.ErrExpired)
	// Renewal restores it.
	c.Register(dave, shard)
	wantErr(t, c.call(dave, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: 3, BlockHash: blockHash(3)}).Err)
	wantErr(t, c.call(dave, bridge.MethodUnshieldFunds, pay).Err)
}

func TestConfirmProcessedBlock(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.Register(dave, shard)
	c.Register(eve, shard)
	c.Register(ferd, measurement("other"))
	c.ToHeight(20)
	hash := func(b byte) types.Hash { return types.Hash{b} }
	conf := func(h uint64, state byte) bridge.ConfirmProcessedBlock {
		return bridge.ConfirmProcessedBlock{Shard: shard, Height: h, BlockHash: blockHash(h), CallsRoot: hash(0xcc), StateHash: hash(state)}
	}
	wrongBlock := conf(16, 1)
	wrongBlock.BlockHash = blockHash(15)

	r := c.call(dave, bridge.MethodConfirmProcessedBlock, conf(15, 1))
	wantErr(t, r.Err)
	if _, ok := findEvent(r, bridge.EventBlockConfirmed); !ok {
		t.Fatal("no confirmation event")
	}
	if _, ok := findEvent(r, bridge.EventStateDivergence); ok {
		t.Fatal("divergence on the first confirmation")
	}
	for _, tc := range []struct {
		name   string
		sender [32]byte
		conf   bridge.ConfirmProcessedBlock
		want   []error
	}{
		{"same height again", dave, conf(15, 1), []error{bridge.ErrStaleConfirmation}},
		{"backwards", dave, conf(14, 1), []error{bridge.ErrStaleConfirmation}},
		{"current block", dave, conf(20, 1), []error{bridge.ErrFutureHeight}},
		{"future block", dave, conf(99, 1), []error{bridge.ErrFutureHeight}},
		{"not an enclave", bob, conf(16, 1), []error{bridge.ErrNotActive}},
		{"enclave of another shard", ferd, conf(16, 1), []error{bridge.ErrNotShardEnclave}},
		{"not the chain's block", dave, wrongBlock, []error{bridge.ErrUnknownBlock}},
		{"block 0", eve, conf(0, 1), []error{bridge.ErrUnknownBlock}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rejected(t, c.call(tc.sender, bridge.MethodConfirmProcessedBlock, tc.conf), tc.want...)
		})
	}

	// Agreement: no divergence.
	r = c.call(eve, bridge.MethodConfirmProcessedBlock, conf(15, 1))
	wantErr(t, r.Err)
	if _, ok := findEvent(r, bridge.EventStateDivergence); ok {
		t.Fatal("divergence on agreement")
	}
	// Disagreement at height 17: the second confirmation raises it.
	wantErr(t, c.call(dave, bridge.MethodConfirmProcessedBlock, conf(17, 2)).Err)
	r = c.call(eve, bridge.MethodConfirmProcessedBlock, conf(17, 3))
	wantErr(t, r.Err)
	ev, ok := findEvent(r, bridge.EventStateDivergence)
	if !ok || ev["height"].Value != "17" || ev["first_enclave"].Value != dave.String() || ev["enclave"].Value != eve.String() ||
		ev["state_hash"].Value != hash(3).String() || ev["first_state_hash"].Value != hash(2).String() {
		t.Fatalf("divergence event %v", r.Events)
	}

	s := c.shard(shard)
	if s.Latest == nil || s.Latest.Height != 17 || s.Divergences != 1 || s.LastDivergence != 17 {
		t.Fatalf("shard record %+v", s)
	}
	for _, e := range []tx.Address{dave, eve} {
		got, ok, err := c.bridge.ConfirmationOf(c.KV, shard, e)
		if err != nil || !ok || got.Enclave != e || got.Height != 17 || got.ConfirmedHeight != 20 {
			t.Fatalf("confirmation of %s: %+v %v %v", e, got, ok, err)
		}
	}
	var first bridge.Confirmation
	v, err := c.KV.Get(bridge.BlockKey(shard, 17))
	if err != nil || v == nil {
		t.Fatalf("block record: %v", err)
	}
	if err := codec.Unmarshal(v, &first); err != nil || first.Enclave != dave || first.StateHash != hash(2) {
		t.Fatalf("first confirmation of 17: %+v %v", first, err)
	}
}

// Enclaves confirm when their shard changed and at a heartbeat otherwise
// (enclave/commit.go), so an enclave's confirmations skip heights: the
// chain requires them above the enclave's last, not consecutive, and
// nothing on chain expires or stops paying without them (unshields pay
// against the sidechain module's confirmed blocks). Enclaves of one shard
// confirm the same heights, so the divergence check still compares them:
// after a long gap, the first height where their states differ is flagged.
func TestConfirmationsWithGaps(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.Register(dave, shard)
	c.Register(eve, shard)
	c.ToHeight(2000)
	conf := func(h uint64, state byte) bridge.ConfirmProcessedBlock {
		return bridge.ConfirmProcessedBlock{Shard: shard, Height: h, BlockHash: blockHash(h), StateHash: types.Hash{state}}
	}
	for _, h := range []uint64{12, 300, 301, 900} {
		for _, e := range []tx.Address{dave, eve} {
			r := c.call(e, bridge.MethodConfirmProcessedBlock, conf(h, 1))
			wantErr(t, r.Err)
			if _, ok := findEvent(r, bridge.EventStateDivergence); ok {
				t.Fatalf("divergence at %d on agreement", h)
			}
		}
	}
	wantErr(t, c.call(dave, bridge.MethodConfirmProcessedBlock, conf(1500, 2)).Err)
	r := c.call(eve, bridge.MethodConfirmProcessedBlock, conf(1500, 3))
	wantErr(t, r.Err)
	if ev, ok := findEvent(r, bridge.EventStateDivergence); !ok || ev["height"].Value != "1500" {
		t.Fatalf("no divergence at 1500 after a gap: %v", r.Events)
	}
	if s := c.shard(shard); s.Divergences != 1 || s.LastDivergence != 1500 || s.Latest == nil || s.Latest.Height != 1500 {
		t.Fatalf("shard record %+v", s)
	}
	// A gap does not reopen the heights it skipped.
	rejected(t, c.call(dave, bridge.MethodConfirmProcessedBlock, conf(1000, 2)), bridge.ErrStaleConfirmation)
}

// Every enclave's latest confirmation is kept, however many enclaves serve
// the shard: a confirmation at or below an enclave's last one is stale.
// The shard record held at most 64 enclaves' confirmations and dropped the
// stalest, so with 70 enclaves the first ones' confirmations were gone and
// they could confirm their height again.
func TestConfirmationsOfManyEnclaves(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	enclaves := make([]tx.Address, 70)
	for i := range enclaves {
		enclaves[i] = tx.Address(sha256.Sum256(fmt.Appendf(nil, "enclave %d", i)))
		c.Register(enclaves[i], shard)
	}
	c.ToHeight(20)
	conf := bridge.ConfirmProcessedBlock{Shard: shard, Height: 15, BlockHash: blockHash(15), StateHash: types.Hash{1}}
	for _, e := range enclaves {
		wantErr(t, c.call(e, bridge.MethodConfirmProcessedBlock, conf).Err)
		c.Next(time.Second) // later confirmations are the fresher ones
	}
	for _, e := range enclaves {
		rejected(t, c.call(e, bridge.MethodConfirmProcessedBlock, conf), bridge.ErrStaleConfirmation)
		got, ok, err := c.bridge.ConfirmationOf(c.KV, shard, e)
		if err != nil || !ok || got.Height != 15 {
			t.Fatalf("confirmation of %s: %+v %v %v", e, got, ok, err)
		}
	}
	if s := c.shard(shard); s.Latest == nil || s.Latest.Height != 15 || s.Latest.Enclave != enclaves[0] || s.Divergences != 0 {
		t.Fatalf("shard record %+v", s)
	}
}

// Only the chain's own blocks of the last runtime.BlockHashWindow heights
// can be confirmed: a block that left the window is refused as unknown,
// with the reason, and changes nothing.
func TestConfirmOnlyWithinWindow(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.Register(dave, shard)
	const w = runtime.BlockHashWindow
	for _, h := range []int64{15, w + 15} {
		c.RecordBlock(h)
	}
	c.Ctx.Height = w + 20
	r := c.call(dave, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: 15, BlockHash: blockHash(15)})
	rejected(t, r, bridge.ErrUnknownBlock)
	if !strings.Contains(r.Err.Error(), "outside the last 100000 blocks") {
		t.Fatalf("refusal does not name the window: %v", r.Err)
	}
	// A height in the window the chain never recorded.
	rejected(t, c.call(dave, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: w + 16, BlockHash: blockHash(w + 16)}),
		bridge.ErrUnknownBlock)
	wantErr(t, c.call(dave, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: w + 15, BlockHash: blockHash(w + 15)}).Err)
	if s := c.shard(shard); s.Latest == nil || s.Latest.Height != w+15 {
		t.Fatalf("shard record %+v", s)
	}
}

// A shard moves to a new release at the enactment height: before it only
// the old measurement serves, from it only the new one; the shard's vault
// and record stay.
func TestShardConfigEnactment(t *testing.T) {
	c := newChain(t)
	v1, v2 := measurement("v1"), measurement("v2")
	shard := v1
	c.Register(dave, v1)
	c.Register(eve, v2)
	c.ToHeight(20)

	tests := []struct {
		name   string
		sender [32]byte
		update bridge.UpdateShardConfig
		want   []error
	}{
		{"not sudo nor enclave", bob, bridge.UpdateShardConfig{Shard: shard, MRENCLAVE: v2, EnactmentHeight: 30}, []error{bridge.ErrNotAuthorized, bridge.ErrNotActive}},
		{"enclave of the next release", eve, bridge.UpdateShardConfig{Shard: shard, MRENCLAVE: v2, EnactmentHeight: 30}, []error{bridge.ErrNotAuthorized, bridge.ErrNotShardEnclave}},
		{"enactment in the past", dave, bridge.UpdateShardConfig{Shard: shard, MRENCLAVE: v2, EnactmentHeight: 19}, []error{bridge.ErrEnactmentInPast}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rejected(t, c.call(tc.sender, bridge.MethodUpdateShardConfig, tc.update), tc.want...)
		})
	}
	r := c.call(dave, bridge.MethodUpdateShardConfig, bridge.UpdateShardConfig{Shard: shard, MRENCLAVE: v2, EnactmentHeight: 30})
	wantErr(t, r.Err)
	if ev, ok := findEvent(r, bridge.EventConfigUpdated); !ok || ev["enactment_height"].Value != "30" || ev["mrenclave"].Value != v2.String() {
		t.Fatalf("events %v", r.Events)
	}
	confirm := func(signer [32]byte) error {
		h := uint64(c.Ctx.Height - 1)
		return c.call(signer, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: h, BlockHash: blockHash(h)}).Err
	}
	c.ToHeight(29)
	wantErr(t, confirm(dave))
	wantErr(t, confirm(eve), bridge.ErrNotShardEnclave)
	c.ToHeight(30)
	wantErr(t, confirm(eve))
	wantErr(t, confirm(dave), bridge.ErrNotShardEnclave)
	s := c.shard(shard)
	if s.Config.MRENCLAVE != v2 || s.Config.Since != 30 || s.Pending != nil || s.Vault != bridge.VaultAddress(shard) {
		t.Fatalf("enacted record %+v", s)
	}
	// Sudo may always reconfigure, effective at once.
	wantErr(t, c.call(alice, bridge.MethodUpdateShardConfig, bridge.UpdateShardConfig{Shard: shard, MRENCLAVE: v1, EnactmentHeight: 30}).Err)
	wantErr(t, confirm(dave))
}

func TestQueryKey(t *testing.T) {
	m := keeper.New(nil, nil, nil, nil)
	s := types.Hash{0x5a}
	h := types.Hash{0xca}
	tests := []struct {
		path string
		want []byte
	}{
		{"shard/" + s.String(), bridge.ShardKey(s)},
		{"unshielded/" + s.String() + "/" + h.String(), bridge.UnshieldedKey(s, h)},
		{"block/" + s.String() + "/42", bridge.BlockKey(s, 42)},
		{"confirmation/" + s.String() + "/" + dave.String(), bridge.ConfirmationKey(s, dave)},
		{"confirmation/" + s.String() + "/" + h.String()[:10], nil},
		{"shard/zz", nil},
		{"shard", nil},
		{"block/" + s.String() + "/-1", nil},
		{"unshielded/" + s.String(), nil},
		{"vault/" + s.String(), nil},
	}
	for _, tc := range tests {
		got, err := m.QueryKey(strings.Split(tc.path, "/"))
		if tc.want == nil {
			if err == nil {
				t.Errorf("%s: want error, got %q", tc.path, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: %q %v", tc.path, got, err)
		}
	}
}

func TestDecodeCallErrors(t *testing.T) {
	m := keeper.New(nil, nil, nil, nil)
	call, err := tx.NewCall(bridge.Name, "mint", bridge.Invoke{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.DecodeCall(call)
	wantErr(t, err, types.ErrUnknownCall)
	call.Method = bridge.MethodConfirmProcessedBlock
	_, err = m.DecodeCall(call)
	wantErr(t, err, types.ErrMalformedCall)
}
