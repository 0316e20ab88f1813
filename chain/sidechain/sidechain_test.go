package sidechain_test

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
)

func TestConfirmSidechainBlock(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.register(dave, shard)
	c.register(eve, shard)
	c.register(ferd, measurement("other release"))
	h := func(b byte) teerex.Hash { return teerex.Hash{0xbb, b} }

	r := c.confirm(dave, shard, 1, h(1))
	wantErr(t, r.err)
	ev, ok := findEvent(r, sidechain.EventBlockConfirmed)
	if !ok {
		t.Fatalf("no indexed event in %v", r.events)
	}
	got, ok := sidechain.ParseEvent(sidechain.EventBlockConfirmed, ev)
	if !ok || got != (sidechain.Confirmed{Shard: shard, Number: 1, HeaderHash: h(1), Enclave: dave}) {
		t.Fatalf("event %v parsed as %+v %v", ev, got, ok)
	}
	want := sidechain.Confirmation{Shard: shard, Number: 1, HeaderHash: h(1), Enclave: dave, ConfirmedHeight: 10}
	if l, ok, err := c.sidechain.Latest(c.kv, shard); err != nil || !ok || l != want {
		t.Fatalf("latest %+v %v %v", l, ok, err)
	}

	c.next(time.Second)
	// A gap is allowed; the other enclave of the shard may confirm.
	wantErr(t, c.confirm(eve, shard, 5, h(5)).err)

	tests := []struct {
		name   string
		sender tx.Address
		number uint64
		want   []error
	}{
		{"replay of the latest", eve, 5, []error{sidechain.ErrStaleNumber}},
		{"below the latest", dave, 3, []error{sidechain.ErrStaleNumber}},
		{"first block again", dave, 1, []error{sidechain.ErrStaleNumber}},
		{"number zero", dave, 0, []error{runtime.ErrMalformedCall}},
		{"not an enclave", bob, 6, []error{sidechain.ErrNotActive, teerex.ErrNotRegistered}},
		{"enclave of another shard", ferd, 6, []error{sidechain.ErrNotShardEnclave}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rejected(t, c.confirm(tc.sender, shard, tc.number, h(byte(tc.number))), tc.want...)
		})
	}
	if b, ok, err := c.sidechain.Block(c.kv, shard, 1); err != nil || !ok || b != want {
		t.Fatalf("block 1: %+v %v %v", b, ok, err)
	}
	if _, ok, err := c.sidechain.Block(c.kv, shard, 3); err != nil || ok {
		t.Fatalf("block 3 never confirmed: %v %v", ok, err)
	}
	if l, _, _ := c.sidechain.Latest(c.kv, shard); l.Number != 5 || l.Enclave != eve || l.ConfirmedHeight != 11 {
		t.Fatalf("latest %+v", l)
	}

	// Shards have their own sequences.
	other := measurement("other release")
	wantErr(t, c.confirm(ferd, other, 1, h(1)).err)
	if l, _, _ := c.sidechain.Latest(c.kv, shard); l.Number != 5 {
		t.Fatalf("another shard's confirmation moved this one to %d", l.Number)
	}
}

func TestExpiredEnclaveCannotConfirm(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.register(dave, shard)
	c.next(24*time.Hour + time.Second)
	rejected(t, c.confirm(dave, shard, 1, teerex.Hash{1}), sidechain.ErrNotActive, teerex.ErrExpired)
	c.register(dave, shard)
	wantErr(t, c.confirm(dave, shard, 1, teerex.Hash{1}).err)
}

// A shard moved to a new release by update_shard_config is confirmed by
// the new release's enclaves from the enactment height on, and no longer
// by the old one's.
func TestShardConfigDecidesMembership(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	c.register(dave, shard)
	c.register(eve, measurement("v2"))
	r := c.exec(c.bridge, alice, bridge.MethodUpdateShardConfig, bridge.UpdateShardConfig{Shard: shard, MRENCLAVE: measurement("v2"), EnactmentHeight: 12})
	wantErr(t, r.err)
	rejected(t, c.confirm(eve, shard, 1, teerex.Hash{1}), sidechain.ErrNotShardEnclave)
	wantErr(t, c.confirm(dave, shard, 1, teerex.Hash{1}).err)
	c.next(time.Second)
	c.next(time.Second)
	rejected(t, c.confirm(dave, shard, 2, teerex.Hash{2}), sidechain.ErrNotShardEnclave)
	wantErr(t, c.confirm(eve, shard, 2, teerex.Hash{2}).err)
}

func TestModuleNeedsDependencies(t *testing.T) {
	m := sidechain.New(nil, nil)
	call, err := sidechain.ConfirmCall(teerex.Hash{1}, 1, teerex.Hash{2})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := m.DecodeCall(call)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Execute(&runtime.Context{}, msg)
	var re *runtime.Error
	if err == nil || errors.As(err, &re) {
		t.Fatalf("unwired module: %v (must be an internal error that halts)", err)
	}
}

func TestDecodeCall(t *testing.T) {
	m := sidechain.New(nil, nil)
	good, err := sidechain.ConfirmCall(teerex.Hash{1}, 7, teerex.Hash{2})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := m.DecodeCall(good)
	if err != nil {
		t.Fatal(err)
	}
	if c := msg.(*sidechain.ConfirmSidechainBlock); c.Number != 7 || c.HeaderHash != (teerex.Hash{2}) {
		t.Fatalf("decoded %+v", c)
	}
	for name, tc := range map[string]struct {
		call tx.Call
		want error
	}{
		"unknown method": {tx.Call{Module: sidechain.Name, Method: "confirm", Args: good.Args}, runtime.ErrUnknownCall},
		"garbage args":   {tx.Call{Module: sidechain.Name, Method: sidechain.MethodConfirmSidechainBlock, Args: []byte{0xff}}, runtime.ErrMalformedCall},
		"short hash": {tx.Call{Module: sidechain.Name, Method: sidechain.MethodConfirmSidechainBlock,
			Args: mustCall(t, map[string]any{"shard": make([]byte, 31), "number": 1, "header_hash": make([]byte, 32)}).Args}, runtime.ErrMalformedCall},
		"unknown field": {tx.Call{Module: sidechain.Name, Method: sidechain.MethodConfirmSidechainBlock,
			Args: mustCall(t, map[string]any{"shard": make([]byte, 32), "number": 1, "header_hash": make([]byte, 32), "x": 1}).Args}, runtime.ErrMalformedCall},
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
	m := sidechain.New(nil, nil)
	shard := measurement("v1")
	tests := []struct {
		path string
		want []byte
	}{
		{"shard/" + shard.String(), sidechain.ShardKey(shard)},
		{"block/" + shard.String() + "/42", sidechain.BlockKey(shard, 42)},
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
	if string(sidechain.BlockKey(shard, 1)) == string(sidechain.BlockKey(shard, 256)) {
		t.Fatal("block keys collide")
	}
}

func TestHeaderHashAndSignature(t *testing.T) {
	key := accounts.DevKey("Dave")
	hdr := sidechain.Header{
		Shard: measurement("v1"), Number: 3, ParentHash: teerex.Hash{9}, ChainHeight: 17,
		CallsRoot: teerex.Hash{7}, StateHash: teerex.Hash{8}, Timestamp: 1_700_000_000_000,
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
	good := map[string]string{"shard": teerex.Hash{1}.String(), "number": "4", "header_hash": teerex.Hash{2}.String(), "enclave": dave.String()}
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
