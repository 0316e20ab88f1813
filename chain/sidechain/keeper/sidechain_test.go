package keeper_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	bridgekeeper "github.com/integritee-go/integritee/chain/bridge/keeper"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/sidechain/keeper"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

func TestConfirmSidechainBlock(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.Register(dave, shard)
	c.Register(ferd, measurement("other release"))
	b1 := first(shard, 9, 1)
	b1.CallsRoot, b1.UnshieldsRoot, b1.Timestamp = types.Hash{0xca}, types.Hash{0xee}, 1_700_000_000_000

	// A shard without confirmations takes block 1 only with no parent; a
	// number beyond the vote window waits for its predecessors.
	for name, tc := range map[string]struct {
		h    sidechain.Header
		want error
	}{
		"beyond the window":     {numbered(child(t, b1, 9, 2), 2+sidechain.VoteWindow), sidechain.ErrFutureBlock},
		"block 1 with a parent": {withParent(b1, types.Hash{1}), sidechain.ErrForkedBlock},
	} {
		t.Run(name, func(t *testing.T) { rejected(t, c.confirm(dave, tc.h), tc.want) })
	}

	r := c.confirm(dave, b1)
	wantErr(t, r.Err)
	ev, ok := findEvent(r, sidechain.EventBlockConfirmed)
	if !ok {
		t.Fatalf("no indexed event in %v", r.Events)
	}
	got, ok := sidechain.ParseEvent(sidechain.EventBlockConfirmed, ev)
	if !ok || got != (sidechain.Confirmed{Shard: shard, Number: 1, HeaderHash: hashOf(t, b1), Enclave: dave}) {
		t.Fatalf("event %v parsed as %+v %v", ev, got, ok)
	}
	want := sidechain.Confirmation{Shard: shard, Number: 1, HeaderHash: hashOf(t, b1), ChainHeight: 9,
		StateHash: b1.StateHash, UnshieldsRoot: b1.UnshieldsRoot, Enclave: dave, ConfirmedHeight: 10}
	if l := c.latest(shard); l != want {
		t.Fatalf("latest %+v, want %+v", l, want)
	}

	// Eve joins the shard after block 1 and block 2's chain height.
	c.Next(time.Second)
	c.Register(eve, shard)
	b2 := child(t, b1, 10, 2)
	tests := []struct {
		name   string
		sender tx.Address
		h      sidechain.Header
		want   []error
	}{
		{"same block again", dave, b1, []error{sidechain.ErrAlreadyConfirmed}},
		{"same block by the other enclave", eve, b1, []error{sidechain.ErrAlreadyConfirmed}},
		// What a rolled-back enclave would sign: same number and parent,
		// another state.
		{"another block 1", dave, first(shard, 9, 0x66), []error{sidechain.ErrForkedBlock}},
		{"another block 1 by the other enclave", eve, first(shard, 8, 1), []error{sidechain.ErrForkedBlock}},
		{"beyond the window", dave, numbered(child(t, b2, 10, 3), 3+sidechain.VoteWindow), []error{sidechain.ErrFutureBlock}},
		{"registered after the block's chain height", eve, b2, []error{sidechain.ErrRegisteredLater}},
		{"wrong parent", dave, withParent(b2, types.Hash{9}), []error{sidechain.ErrForkedBlock}},
		{"parent's parent", dave, withParent(b2, types.Hash{}), []error{sidechain.ErrForkedBlock}},
		{"number zero", dave, sidechain.Header{Shard: shard}, []error{types.ErrMalformedCall}},
		{"not an enclave", bob, b2, []error{sidechain.ErrNotActive, teerex.ErrNotRegistered}},
		{"enclave of another shard", ferd, b2, []error{sidechain.ErrNotShardEnclave}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rejected(t, c.confirm(tc.sender, tc.h), tc.want...)
		})
	}
	if l := c.latest(shard); l != want {
		t.Fatalf("refusals moved the latest to %+v", l)
	}
	if b, ok, err := c.sidechain.Block(c.KV, shard, 1); err != nil || !ok || b != want {
		t.Fatalf("block 1: %+v %v %v", b, ok, err)
	}
	if _, ok, err := c.sidechain.Block(c.KV, shard, 2); err != nil || ok {
		t.Fatalf("block 2 before its confirmation: %v %v", ok, err)
	}

	// Eve does not hold block 2 back: Dave's vote confirms it alone.
	wantErr(t, c.confirm(dave, b2).Err)
	if l := c.latest(shard); l.Number != 2 || l.HeaderHash != hashOf(t, b2) || l.Enclave != dave || l.ConfirmedHeight != 11 {
		t.Fatalf("latest %+v", l)
	}
	if b, _, _ := c.sidechain.Block(c.KV, shard, 1); b != want {
		t.Fatalf("block 1 changed to %+v", b)
	}
	// Block 3 sits after her registration: it takes both votes, and the
	// deciding one is recorded.
	c.Next(time.Second)
	b3 := child(t, b2, 11, 3)
	wantErr(t, c.confirm(eve, b3).Err)
	if l := c.latest(shard); l.Number != 2 {
		t.Fatalf("one vote of two confirmed block 3: %+v", l)
	}
	wantErr(t, c.confirm(dave, b3).Err)
	if l := c.latest(shard); l.Number != 3 || l.HeaderHash != hashOf(t, b3) || l.Enclave != dave {
		t.Fatalf("latest %+v", l)
	}

	// Shards have their own chains.
	other := measurement("other release")
	wantErr(t, c.confirm(ferd, first(other, 10, 1)).Err)
	if l := c.latest(shard); l.Number != 3 {
		t.Fatalf("another shard's confirmation moved this one to %d", l.Number)
	}
}

// numbered is h with another number.
func numbered(h sidechain.Header, n uint64) sidechain.Header {
	h.Number = n
	return h
}

func withParent(h sidechain.Header, parent types.Hash) sidechain.Header {
	h.ParentHash = parent
	return h
}

// A block applies committed chain blocks in chain order: its ChainHeight is
// at least its parent's and below the block that carries the confirmation.
func TestChainHeightBounds(t *testing.T) {
	shard := measurement("v1")
	tests := []struct {
		name string
		// parent: block 1 at chain height 5 is confirmed first.
		parent      bool
		chainHeight int64
		want        []error
	}{
		{"first block at zero", false, 0, nil},
		{"first block negative", false, -1, []error{sidechain.ErrChainHeight}},
		{"first block at the last committed block", false, 11, nil},
		{"first block at the current block", false, 12, []error{sidechain.ErrChainHeight}},
		{"below the parent's", true, 4, []error{sidechain.ErrChainHeight}},
		{"the parent's", true, 5, nil},
		{"the last committed block", true, 11, nil},
		{"the current block", true, 12, []error{sidechain.ErrChainHeight}},
		{"a future block", true, 1 << 40, []error{sidechain.ErrChainHeight}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t)
			c.Register(dave, shard)
			h := first(shard, tc.chainHeight, 1)
			if tc.parent {
				b1 := first(shard, 5, 1)
				wantErr(t, c.confirm(dave, b1).Err)
				h = child(t, b1, tc.chainHeight, 2)
			}
			c.Next(time.Second)
			c.Next(time.Second) // height 12
			before := c.latest(shard)
			r := c.confirm(dave, h)
			if len(tc.want) > 0 {
				rejected(t, r, tc.want...)
				if l := c.latest(shard); l != before {
					t.Fatalf("latest moved to %+v", l)
				}
				return
			}
			wantErr(t, r.Err)
			if l := c.latest(shard); l.Number != h.Number || l.ChainHeight != tc.chainHeight {
				t.Fatalf("latest %+v", l)
			}
		})
	}
}

// A direct block takes the same quorum as a chain block (the single-author
// rule, ErrNotAuthor and ErrSeveralEnclaves, is gone): every enclave of the
// shard derives it from the Raft log, so any voter may vote for it, and
// the confirmation keeps its author. While the shard has one voter, its
// author's vote confirms it at once; an enclave that registers after the
// block's chain height (a registration racing an unconfirmed direct block)
// does not hold it back, or the shard would freeze, since every later
// block builds on it.
func TestDirectBlocks(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.Register(dave, shard)
	c.Register(eve, shard)
	c.Next(time.Second)
	d1 := direct(first(shard, 10, 1), dave)
	wantErr(t, c.confirm(dave, d1).Err)
	if l := c.latest(shard); l.Number != 0 {
		t.Fatalf("the author's vote alone confirmed a block of two voters: %+v", l)
	}
	wantErr(t, c.confirm(eve, d1).Err)
	if l := c.latest(shard); l.Number != 1 || l.Author != dave || l.Enclave != eve || l.HeaderHash != hashOf(t, d1) {
		t.Fatalf("latest %+v", l)
	}

	// Eve leaves: Dave is the only voter again.
	c.unregister(eve)
	c.Next(time.Second)
	d2 := direct(child(t, d1, 11, 2), dave)
	wantErr(t, c.confirm(dave, d2).Err)
	if l := c.latest(shard); l.Number != 2 || l.Enclave != dave {
		t.Fatalf("latest %+v", l)
	}
	// Eve registers anew after block 3's chain height: she does not
	// count for it.
	d3 := direct(child(t, d2, 11, 3), dave)
	c.Register(eve, shard)
	c.Next(time.Second)
	rejected(t, c.confirm(eve, d3), sidechain.ErrRegisteredLater)
	wantErr(t, c.confirm(dave, d3).Err)
	if l := c.latest(shard); l.Number != 3 {
		t.Fatalf("latest %+v", l)
	}
}

func TestExpiredEnclaveCannotConfirm(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.Register(dave, shard)
	c.Next(24*time.Hour + time.Second)
	b1 := first(shard, 10, 1)
	rejected(t, c.confirm(dave, b1), sidechain.ErrNotActive, teerex.ErrExpired)
	c.Register(dave, shard)
	wantErr(t, c.confirm(dave, b1).Err)
}

// A shard moved to a new release by update_shard_config is confirmed by
// the new release's enclaves from the enactment height on, and no longer
// by the old one's.
func TestShardConfigDecidesMembership(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.Register(dave, shard)
	c.Register(eve, measurement("v2"))
	r := c.Exec(c.bridge, alice, bridge.MethodUpdateShardConfig, bridge.UpdateShardConfig{Shard: shard, MRENCLAVE: measurement("v2"), EnactmentHeight: 12})
	wantErr(t, r.Err)
	b1 := first(shard, 9, 1)
	rejected(t, c.confirm(eve, b1), sidechain.ErrNotShardEnclave)
	wantErr(t, c.confirm(dave, b1).Err)
	c.Next(time.Second)
	c.Next(time.Second)
	b2 := child(t, b1, 11, 2)
	rejected(t, c.confirm(dave, b2), sidechain.ErrNotShardEnclave)
	wantErr(t, c.confirm(eve, b2).Err)
}

// Module.UnshieldsRoot answers the bridge only for confirmed blocks, and
// refuses a record stored under another block's key.
func TestModuleUnshieldsRoot(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.Register(dave, shard)
	b1 := first(shard, 9, 1)
	b1.UnshieldsRoot = types.Hash{0xee, 1}
	wantErr(t, c.confirm(dave, b1).Err)
	for _, tc := range []struct {
		name   string
		shard  types.Hash
		number uint64
		ok     bool
	}{
		{"confirmed", shard, 1, true},
		{"next number", shard, 2, false},
		{"number zero", shard, 0, false},
		{"another shard", measurement("v2"), 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, ok, err := c.sidechain.UnshieldsRoot(c.KV, tc.shard, tc.number)
			if err != nil || ok != tc.ok || (ok && root != b1.UnshieldsRoot) || (!ok && root != (types.Hash{})) {
				t.Fatalf("root %s %v %v", root, ok, err)
			}
		})
	}
	l := c.latest(shard)
	if err := runtime.Put(c.KV, sidechain.BlockKey(shard, 7), l); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.sidechain.UnshieldsRoot(c.KV, shard, 7); ok || !errors.Is(err, sidechain.ErrCorruptShardRecord) {
		t.Fatalf("misplaced record: %v %v", ok, err)
	}
}

// The unshields root commits to each unshield's beneficiary, amount and
// call hash, and each proof proves only its own unshield; UnshieldCall
// carries it to the bridge as is.
func TestUnshieldsRoot(t *testing.T) {
	us := []sidechain.Unshield{
		{Beneficiary: bob, Amount: 1, CallHash: types.Hash{1}},
		{Beneficiary: dave, Amount: 2, CallHash: types.Hash{2}},
		{Beneficiary: eve, Amount: 3, CallHash: types.Hash{3}},
	}
	root, proofs := sidechain.UnshieldsRoot(us)
	if len(proofs) != len(us) {
		t.Fatalf("%d proofs", len(proofs))
	}
	for i, p := range proofs {
		for j, u := range us {
			if err := p.Verify(root[:], sidechain.UnshieldLeaf(u)); (err == nil) != (i == j) {
				t.Fatalf("proof %d of unshield %d: %v", i, j, err)
			}
		}
	}
	u := us[1]
	if string(sidechain.UnshieldLeaf(u)) != string(bridge.UnshieldLeaf(u.Beneficiary, u.Amount, u.CallHash)) {
		t.Fatal("sidechain and bridge leaves differ")
	}
	for name, mutate := range map[string]func(*sidechain.Unshield){
		"beneficiary": func(u *sidechain.Unshield) { u.Beneficiary = ferd },
		"amount":      func(u *sidechain.Unshield) { u.Amount++ },
		"call hash":   func(u *sidechain.Unshield) { u.CallHash[31] ^= 1 },
	} {
		t.Run(name, func(t *testing.T) {
			changed := slices.Clone(us)
			mutate(&changed[1])
			if r, _ := sidechain.UnshieldsRoot(changed); r == root {
				t.Fatal("root does not commit to it")
			}
		})
	}

	shard := measurement("v1")
	call, err := sidechain.UnshieldCall(shard, 4, u, proofs[1])
	if err != nil {
		t.Fatal(err)
	}
	msg, err := bridgekeeper.New(nil, nil, nil, nil).DecodeCall(call)
	if err != nil {
		t.Fatal(err)
	}
	got := msg.(*bridge.UnshieldFunds)
	if got.Shard != shard || got.Block != 4 || got.Beneficiary != u.Beneficiary || got.Amount != u.Amount || got.CallHash != u.CallHash ||
		got.Proof.Index != 1 || got.Proof.Total != 3 || !slices.EqualFunc(got.Proof.Aunts, proofs[1].Aunts, bytes.Equal) {
		t.Fatalf("unshield call %+v", got)
	}
}

func TestModuleNeedsDependencies(t *testing.T) {
	m := keeper.New(nil, nil)
	call, err := sidechain.ConfirmCall(first(types.Hash{1}, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := m.DecodeCall(call)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Execute(&runtime.Context{}, msg)
	var re *types.Error
	if err == nil || errors.As(err, &re) {
		t.Fatalf("unwired module: %v (must be an internal error that halts)", err)
	}
}

func TestDecodeCall(t *testing.T) {
	m := keeper.New(nil, nil)
	h := sidechain.Header{Shard: types.Hash{1}, Number: 7, ParentHash: types.Hash{2}, ChainHeight: 3, CallsRoot: types.Hash{4},
		StateHash: types.Hash{5}, UnshieldsRoot: types.Hash{6}, Timestamp: 8, Author: dave}
	good, err := sidechain.ConfirmCall(h)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := m.DecodeCall(good)
	if err != nil {
		t.Fatal(err)
	}
	if c := msg.(*sidechain.ConfirmSidechainBlock); c.Header != h {
		t.Fatalf("decoded %+v, want %+v", c.Header, h)
	}
	header := func(number uint64, extra ...any) map[string]any {
		m := map[string]any{"shard": make([]byte, 32), "number": number, "parent_hash": make([]byte, 32), "chain_height": 0,
			"calls_root": make([]byte, 32), "state_hash": make([]byte, 32), "unshields_root": make([]byte, 32), "timestamp": 0,
			"author": make([]byte, 32)}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return map[string]any{"header": m}
	}
	if _, err := m.DecodeCall(mustCall(t, header(1))); err != nil {
		t.Fatalf("hand-built header refused: %v", err)
	}
	for name, tc := range map[string]struct {
		call tx.Call
		want error
	}{
		"unknown method":         {tx.Call{Module: sidechain.Name, Method: "confirm", Args: good.Args}, types.ErrUnknownCall},
		"garbage args":           {tx.Call{Module: sidechain.Name, Method: sidechain.MethodConfirmSidechainBlock, Args: []byte{0xff}}, types.ErrMalformedCall},
		"short hash":             {mustCall(t, header(1, "shard", make([]byte, 31))), types.ErrMalformedCall},
		"unknown header field":   {mustCall(t, header(1, "x", 1)), types.ErrMalformedCall},
		"number zero":            {mustCall(t, header(0)), types.ErrMalformedCall},
		"former format":          {mustCall(t, map[string]any{"shard": make([]byte, 32), "number": 1, "header_hash": make([]byte, 32)}), types.ErrMalformedCall},
		"header beside the args": {mustCall(t, map[string]any{"header": header(1)["header"], "number": 1}), types.ErrMalformedCall},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := m.DecodeCall(tc.call); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func mustCall(t testing.TB, args any) tx.Call {
	t.Helper()
	c, err := tx.NewCall(sidechain.Name, sidechain.MethodConfirmSidechainBlock, args)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestQueryKey(t *testing.T) {
	m := keeper.New(nil, nil)
	shard := measurement("v1")
	tests := []struct {
		path string
		want []byte
	}{
		{"shard/" + shard.String(), sidechain.ShardKey(shard)},
		{"block/" + shard.String() + "/42", sidechain.BlockKey(shard, 42)},
		{"votes/" + shard.String() + "/42", sidechain.VotesKey(shard, 42)},
		{"votes/" + shard.String(), nil},
		{"votes/" + shard.String() + "/x", nil},
		{"shard", nil},
		{"shard/zz", nil},
		{"block/" + shard.String(), nil},
		{"block/" + shard.String() + "/-1", nil},
		{"latest/" + shard.String(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got, err := m.QueryKey(strings.Split(tc.path, "/"))
			if tc.want == nil {
				if err == nil {
					t.Fatalf("accepted %q as %q", tc.path, got)
				}
				return
			}
			if err != nil || string(got) != string(tc.want) {
				t.Fatalf("key %q %v, want %q", got, err, tc.want)
			}
		})
	}
	if string(sidechain.BlockKey(shard, 1)) == string(sidechain.BlockKey(shard, 256)) ||
		string(sidechain.BlockKey(shard, 1)) == string(sidechain.VotesKey(shard, 1)) {
		t.Fatal("keys collide")
	}
}

func TestHeaderHashAndSignature(t *testing.T) {
	key := accounts.DevKey("Dave")
	hdr := sidechain.Header{
		Shard: measurement("v1"), Number: 3, ParentHash: types.Hash{9}, ChainHeight: 17,
		CallsRoot: types.Hash{7}, StateHash: types.Hash{8}, UnshieldsRoot: types.Hash{6}, Timestamp: 1_700_000_000_000,
		Author: tx.AddressOf(key.Public().(ed25519.PublicKey)),
	}
	h, err := hdr.Hash()
	if err != nil {
		t.Fatal(err)
	}
	sh := sidechain.SignedHeader{Header: hdr, Signature: ed25519.Sign(key, h[:])}
	if got, err := sh.Verify(); err != nil || got != h {
		t.Fatalf("verify: %x %v", got, err)
	}
	mutations := map[string]func(*sidechain.SignedHeader){
		"number":     func(s *sidechain.SignedHeader) { s.Header.Number++ },
		"parent":     func(s *sidechain.SignedHeader) { s.Header.ParentHash[0] ^= 1 },
		"height":     func(s *sidechain.SignedHeader) { s.Header.ChainHeight++ },
		"calls root": func(s *sidechain.SignedHeader) { s.Header.CallsRoot[31] ^= 1 },
		"state hash": func(s *sidechain.SignedHeader) { s.Header.StateHash[5] ^= 1 },
		"unshields":  func(s *sidechain.SignedHeader) { s.Header.UnshieldsRoot[0] ^= 1 },
		"timestamp":  func(s *sidechain.SignedHeader) { s.Header.Timestamp-- },
		"author":     func(s *sidechain.SignedHeader) { s.Header.Author = bob },
		"shard":      func(s *sidechain.SignedHeader) { s.Header.Shard[0] ^= 1 },
		"signature":  func(s *sidechain.SignedHeader) { s.Signature[0] ^= 1 },
		"short sig":  func(s *sidechain.SignedHeader) { s.Signature = s.Signature[:10] },
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			cp := sh
			cp.Signature = append([]byte(nil), sh.Signature...)
			mutate(&cp)
			if _, err := cp.Verify(); !errors.Is(err, sidechain.ErrBadHeaderSignature) {
				t.Fatalf("tampered header: %v", err)
			}
		})
	}
	leaf := sidechain.CallLeaf([32]byte{1}, sidechain.LeafExecuted)
	if len(leaf) != 33 || leaf[32] != sidechain.LeafExecuted || string(leaf) == string(sidechain.CallLeaf([32]byte{1}, sidechain.LeafFailed)) {
		t.Fatalf("leaf %x", leaf)
	}
}

func TestParseEventRejectsMalformed(t *testing.T) {
	good := map[string]string{"shard": types.Hash{1}.String(), "number": "4", "header_hash": types.Hash{2}.String(), "enclave": dave.String()}
	if _, ok := sidechain.ParseEvent(sidechain.EventBlockConfirmed, good); !ok {
		t.Fatal("good event refused")
	}
	if _, ok := sidechain.ParseEvent(bridge.EventBlockConfirmed, good); ok {
		t.Fatal("bridge event accepted")
	}
	for _, k := range []string{"shard", "number", "header_hash", "enclave"} {
		bad := map[string]string{}
		for kk, v := range good {
			bad[kk] = v
		}
		bad[k] = "x"
		if _, ok := sidechain.ParseEvent(sidechain.EventBlockConfirmed, bad); ok {
			t.Fatalf("malformed %s accepted", k)
		}
	}
}
