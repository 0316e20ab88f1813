package bridge_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
)

func TestInvoke(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	ct := bytes.Repeat([]byte{0xc1}, 1500)
	r := c.call(bob, bridge.MethodInvoke, bridge.Invoke{Shard: shard, Ciphertext: ct})
	wantErr(t, r.err)
	if r.changes != 0 {
		t.Fatalf("invoke wrote %d keys", r.changes)
	}
	ev, ok := findEvent(r, bridge.EventInvoked)
	if !ok || ev["shard"].Value != shard.String() || ev["sender"].Value != bob.String() {
		t.Fatalf("event %v", r.events)
	}
	if got, _ := base64.StdEncoding.DecodeString(ev["ciphertext"].Value); !bytes.Equal(got, ct) || ev["ciphertext"].Index {
		t.Fatal("ciphertext attribute wrong or indexed")
	}
	for name, ct := range map[string][]byte{
		"empty":     nil,
		"oversized": make([]byte, bridge.MaxCiphertextBytes+1),
	} {
		t.Run(name, func(t *testing.T) {
			rejected(t, c.call(bob, bridge.MethodInvoke, bridge.Invoke{Shard: shard, Ciphertext: ct}), runtime.ErrMalformedCall)
		})
	}
}

func TestShieldFunds(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	vault := bridge.VaultAddress(shard)
	before := c.balance(bob)
	r := c.call(bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 700, EncryptedRecipient: []byte("enc(bob's incognito account)")})
	wantErr(t, r.err)
	if c.balance(vault) != 700 || c.balance(bob) != before-700 {
		t.Fatalf("vault %d, bob %d", c.balance(vault), c.balance(bob))
	}
	if ev, ok := findEvent(r, bridge.EventShielded); !ok || ev["amount"].Value != "700" || ev["encrypted_recipient"].Index {
		t.Fatalf("events %v", r.events)
	}
	if _, ok := findEvent(r, accounts.EventTransfer); !ok {
		t.Fatal("no transfer event")
	}
	rejected(t, c.call(bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: before, EncryptedRecipient: []byte("x")}),
		accounts.ErrInsufficientFunds)
	rejected(t, c.call(bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 0, EncryptedRecipient: []byte("x")}),
		runtime.ErrMalformedCall)
	rejected(t, c.call(bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 1}), runtime.ErrMalformedCall)
	if other := bridge.VaultAddress(measurement("v2")); other == vault || c.balance(other) != 0 {
		t.Fatal("vaults of different shards must differ")
	}
}

// Two enclaves of the shard submit the same unshield: it pays once.
func TestUnshieldOncePerCallHash(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.register(dave, shard)
	c.register(eve, shard)
	c.register(ferd, measurement("other release"))
	wantErr(t, c.call(bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 1000, EncryptedRecipient: []byte("r")}).err)
	vault := bridge.VaultAddress(shard)
	beneficiary := accounts.DevAddress("Zoe")
	call := bridge.UnshieldFunds{Shard: shard, Beneficiary: beneficiary, Amount: 300, CallHash: teerex.Hash{0xca, 1}}
	c.next(time.Second)

	r := c.call(dave, bridge.MethodUnshieldFunds, call)
	wantErr(t, r.err)
	if _, ok := findEvent(r, bridge.EventUnshielded); !ok {
		t.Fatal("no unshield event")
	}
	tests := []struct {
		name   string
		sender [32]byte
		call   bridge.UnshieldFunds
		want   []error
	}{
		{"same call by the other enclave", eve, call, []error{bridge.ErrAlreadyUnshielded}},
		{"same call by the same enclave", dave, call, []error{bridge.ErrAlreadyUnshielded}},
		{"same hash, other amount", eve, func() bridge.UnshieldFunds { u := call; u.Amount = 1; return u }(), []error{bridge.ErrAlreadyUnshielded}},
		{"not an enclave", bob, func() bridge.UnshieldFunds { u := call; u.CallHash[1] = 2; return u }(), []error{bridge.ErrNotActive, teerex.ErrNotRegistered}},
		{"enclave of another shard", ferd, func() bridge.UnshieldFunds { u := call; u.CallHash[1] = 3; return u }(), []error{bridge.ErrNotShardEnclave}},
		{"more than the vault holds", eve, func() bridge.UnshieldFunds { u := call; u.CallHash[1] = 4; u.Amount = 701; return u }(), []error{accounts.ErrInsufficientFunds}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rejected(t, c.call(tc.sender, bridge.MethodUnshieldFunds, tc.call), tc.want...)
		})
	}
	if c.balance(beneficiary) != 300 || c.balance(vault) != 700 {
		t.Fatalf("paid more than once: beneficiary %d, vault %d", c.balance(beneficiary), c.balance(vault))
	}
	u, done, err := c.bridge.Unshielded(c.kv, shard, call.CallHash)
	if err != nil || !done || u.Enclave != dave || u.Amount != 300 || u.Beneficiary != beneficiary {
		t.Fatalf("unshield record %+v %v %v", u, done, err)
	}
	// Another call hash pays again, from the other enclave.
	second := call
	second.CallHash = teerex.Hash{0xca, 9}
	wantErr(t, c.call(eve, bridge.MethodUnshieldFunds, second).err)
	if c.balance(beneficiary) != 600 {
		t.Fatalf("beneficiary %d", c.balance(beneficiary))
	}
}

func TestExpiredEnclaveCannotAct(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.register(dave, shard)
	wantErr(t, c.call(bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 10, EncryptedRecipient: []byte("r")}).err)
	c.next(24*time.Hour + time.Second)
	rejected(t, c.call(dave, bridge.MethodUnshieldFunds, bridge.UnshieldFunds{Shard: shard, Beneficiary: bob, Amount: 1, CallHash: teerex.Hash{1}}),
		bridge.ErrNotActive, teerex.ErrExpired)
	rejected(t, c.call(dave, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: 3, BlockHash: blockHash(3)}),
		bridge.ErrNotActive, teerex.ErrExpired)
	// Renewal restores it.
	c.register(dave, shard)
	wantErr(t, c.call(dave, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: 3, BlockHash: blockHash(3)}).err)
}

func TestConfirmProcessedBlock(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.register(dave, shard)
	c.register(eve, shard)
	c.register(ferd, measurement("other"))
	c.toHeight(20)
	hash := func(b byte) teerex.Hash { return teerex.Hash{b} }
	conf := func(h uint64, state byte) bridge.ConfirmProcessedBlock {
		return bridge.ConfirmProcessedBlock{Shard: shard, Height: h, BlockHash: blockHash(h), CallsRoot: hash(0xcc), StateHash: hash(state)}
	}
	wrongBlock := conf(16, 1)
	wrongBlock.BlockHash = blockHash(15)

	r := c.call(dave, bridge.MethodConfirmProcessedBlock, conf(15, 1))
	wantErr(t, r.err)
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
	wantErr(t, r.err)
	if _, ok := findEvent(r, bridge.EventStateDivergence); ok {
		t.Fatal("divergence on agreement")
	}
	// Disagreement at height 17: the second confirmation raises it.
	wantErr(t, c.call(dave, bridge.MethodConfirmProcessedBlock, conf(17, 2)).err)
	r = c.call(eve, bridge.MethodConfirmProcessedBlock, conf(17, 3))
	wantErr(t, r.err)
	ev, ok := findEvent(r, bridge.EventStateDivergence)
	if !ok || ev["height"].Value != "17" || ev["first_enclave"].Value != dave.String() || ev["enclave"].Value != eve.String() ||
		ev["state_hash"].Value != hash(3).String() || ev["first_state_hash"].Value != hash(2).String() {
		t.Fatalf("divergence event %v", r.events)
	}

	s := c.shard(shard)
	if s.Latest == nil || s.Latest.Height != 17 || s.Divergences != 1 || s.LastDivergence != 17 || len(s.Enclaves) != 2 {
		t.Fatalf("shard record %+v", s)
	}
	for _, e := range s.Enclaves {
		if e.Height != 17 || e.ConfirmedHeight != 20 {
			t.Fatalf("per-enclave confirmation %+v", e)
		}
	}
	var first bridge.Confirmation
	v, err := c.kv.Get(bridge.BlockKey(shard, 17))
	if err != nil || v == nil {
		t.Fatalf("block record: %v", err)
	}
	if err := codec.Unmarshal(v, &first); err != nil || first.Enclave != dave || first.StateHash != hash(2) {
		t.Fatalf("first confirmation of 17: %+v %v", first, err)
	}
}

// Only the chain's own blocks of the last runtime.BlockHashWindow heights
// can be confirmed: a block that left the window is refused as unknown,
// with the reason, and changes nothing.
func TestConfirmOnlyWithinWindow(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.register(dave, shard)
	const w = runtime.BlockHashWindow
	for _, h := range []int64{15, w + 15} {
		c.recordBlock(h)
	}
	c.ctx.Height = w + 20
	r := c.call(dave, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: 15, BlockHash: blockHash(15)})
	rejected(t, r, bridge.ErrUnknownBlock)
	if !strings.Contains(r.err.Error(), "outside the last 100000 blocks") {
		t.Fatalf("refusal does not name the window: %v", r.err)
	}
	// A height in the window the chain never recorded.
	rejected(t, c.call(dave, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: w + 16, BlockHash: blockHash(w + 16)}),
		bridge.ErrUnknownBlock)
	wantErr(t, c.call(dave, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: w + 15, BlockHash: blockHash(w + 15)}).err)
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
	c.register(dave, v1)
	c.register(eve, v2)
	c.toHeight(20)

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
	wantErr(t, r.err)
	if ev, ok := findEvent(r, bridge.EventConfigUpdated); !ok || ev["enactment_height"].Value != "30" || ev["mrenclave"].Value != v2.String() {
		t.Fatalf("events %v", r.events)
	}
	confirm := func(signer [32]byte) error {
		h := uint64(c.ctx.Height - 1)
		return c.call(signer, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: h, BlockHash: blockHash(h)}).err
	}
	c.toHeight(29)
	wantErr(t, confirm(dave))
	wantErr(t, confirm(eve), bridge.ErrNotShardEnclave)
	c.toHeight(30)
	wantErr(t, confirm(eve))
	wantErr(t, confirm(dave), bridge.ErrNotShardEnclave)
	s := c.shard(shard)
	if s.Config.MRENCLAVE != v2 || s.Config.Since != 30 || s.Pending != nil || s.Vault != bridge.VaultAddress(shard) {
		t.Fatalf("enacted record %+v", s)
	}
	// Sudo may always reconfigure, effective at once.
	wantErr(t, c.call(alice, bridge.MethodUpdateShardConfig, bridge.UpdateShardConfig{Shard: shard, MRENCLAVE: v1, EnactmentHeight: 30}).err)
	wantErr(t, confirm(dave))
}

func TestQueryKey(t *testing.T) {
	m := bridge.New(nil, nil, nil)
	s := teerex.Hash{0x5a}
	h := teerex.Hash{0xca}
	tests := []struct {
		path string
		want []byte
	}{
		{"shard/" + s.String(), bridge.ShardKey(s)},
		{"unshielded/" + s.String() + "/" + h.String(), bridge.UnshieldedKey(s, h)},
		{"block/" + s.String() + "/42", bridge.BlockKey(s, 42)},
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
	m := bridge.New(nil, nil, nil)
	call, err := tx.NewCall(bridge.Name, "mint", bridge.Invoke{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.DecodeCall(call)
	wantErr(t, err, runtime.ErrUnknownCall)
	call.Method = bridge.MethodConfirmProcessedBlock
	_, err = m.DecodeCall(call)
	wantErr(t, err, runtime.ErrMalformedCall)
}
