package enclave_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/internal/testchain"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
)

// BenchmarkProcessBlock measures one block of 100 confidential transfers
// through the protocol (net.Pipe): light client verification of two
// headers with 4 validators, 100 HPKE decryptions, signature checks and STF
// calls, the state commit and the sealed checkpoint.
func BenchmarkProcessBlock(b *testing.B) {
	const calls = 100
	ctx := context.Background()
	c := &chainSim{t: b, tc: testchain.New(chainID, 4, "bench"), nonces: map[tx.Address]uint64{}}
	shard := sha256Of("bench")
	h := newHost(b, shard)
	init := h.boot(c)
	payer := accounts.DevKey("Alice")
	users := make([]ed25519.PrivateKey, calls)
	var shields [][]byte
	for i := range users {
		users[i] = key(fmt.Sprint("user ", i))
		a := addr(users[i])
		ct, err := shielding.Encrypt(init.ShieldingPublic, shielding.InfoShieldRecipient, a[:])
		if err != nil {
			b.Fatal(err)
		}
		shields = append(shields, c.tx(payer, bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: types.Hash(shard), Amount: 1 << 40, EncryptedRecipient: ct}))
	}
	c.tc.Add(shields, nil)
	round := uint64(0)
	addTransfers := func() {
		var txs [][]byte
		for i, u := range users {
			to := addr(users[(i+1)%calls])
			signed := trustedCall(b, u, stf.Call{Transfer: &stf.Transfer{From: addr(u), To: to, Amount: 1}}, round, c.target(shard, shard))
			txs = append(txs, invoke(b, c, payer, init.ShieldingPublic, shard, signed))
		}
		c.tc.Add(txs, nil)
		round++
	}
	addTransfers()
	if _, err := h.process(c, 1); err != nil {
		b.Fatal(err)
	}
	next := int64(2)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		addTransfers()
		req := request(b, c.tc, next)
		b.StartTimer()
		rep, err := protocol.CallAs[*protocol.ProcessBlockReply](ctx, h.c, req)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Stats.Applied != calls {
			b.Fatalf("applied %d of %d", rep.Stats.Applied, calls)
		}
		h.persist(rep)
		next++
	}
}

// BenchmarkDirectBatch measures the two halves of a batch of 64 direct
// transfers: "prepare" (HPKE decryption and signature check of each call,
// on every core), which only the enclave the batch was sent to does, and
// "apply" (nonces, STF, state commit, shard block and sealed checkpoint),
// which every enclave of the shard does with the logged batch. Before
// calls were decrypted once, every enclave did both.
func BenchmarkDirectBatch(b *testing.B) {
	for _, part := range []string{"prepare", "apply"} {
		b.Run(part, func(b *testing.B) { benchmarkDirectBatch(b, part) })
	}
}

func benchmarkDirectBatch(b *testing.B, part string) {
	const calls = 64
	c := &chainSim{t: b, tc: testchain.New(chainID, 4, "bench"), nonces: map[tx.Address]uint64{}}
	shard := sha256Of("bench direct")
	h := newHost(b, shard)
	init := h.boot(c)
	payer := accounts.DevKey("Alice")
	users := make([]ed25519.PrivateKey, calls)
	var shields [][]byte
	for i := range users {
		users[i] = key(fmt.Sprint("user ", i))
		a := addr(users[i])
		ct, err := shielding.Encrypt(init.ShieldingPublic, shielding.InfoShieldRecipient, a[:])
		if err != nil {
			b.Fatal(err)
		}
		shields = append(shields, c.tx(payer, bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: types.Hash(shard), Amount: 1 << 40, EncryptedRecipient: ct}))
	}
	c.tc.Add(shields, nil)
	c.tc.Add(nil, nil)
	if _, err := h.process(c, 1); err != nil {
		b.Fatal(err)
	}
	tgt := c.target(shard, shard)
	nonce := uint64(0)
	for b.Loop() {
		b.StopTimer()
		cts := make([][]byte, calls)
		for i, u := range users {
			signed := trustedCall(b, u, stf.Call{Transfer: &stf.Transfer{From: addr(u), To: addr(users[(i+1)%calls]), Amount: 1}}, nonce, tgt)
			ct, err := shielding.Encrypt(init.ShieldingPublic, shielding.InfoTrustedCall, signed)
			if err != nil {
				b.Fatal(err)
			}
			cts[i] = ct
		}
		nonce++
		if part == "prepare" {
			b.StartTimer()
		}
		prepared := enclave.PrepareCalls(h.enc, cts)
		if part == "prepare" {
			b.StopTimer()
		} else {
			b.StartTimer()
		}
		rep, err := enclave.ApplyPrepared(h.enc, prepared, int64(nonce))
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if rep.Block == nil || len(rep.Leaves) != calls {
			b.Fatalf("%d of %d calls applied", len(rep.Leaves), calls)
		}
		b.StartTimer()
	}
}
