package e2e_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/tee/sim"
)

// On a dev node, sim enclaves register through broadcast_tx_sync and are
// listed with proofs; both vote for a shard block (the first vote does not
// confirm it, the second does), both then submit the same unshield_funds
// proved by it, and the vault pays once.
func TestDevNodeRegistersSimEnclavesAndUnshieldsOnce(t *testing.T) {
	_, c := startNode(t, initHome(t, true))
	ctx := ctxT(t)
	shard := measurement("v1")
	genesis, err := c.GenesisID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dave, eve := newSimEnclave(t, "Dave", shard, genesis), newSimEnclave(t, "Eve", shard, genesis)

	sub, err := c.RegisterEnclave(ctx, dave.key, dave.evidence, dave.shieldingKey, "wss://127.0.0.1:2000")
	if err != nil {
		t.Fatalf("register Dave: %v", err)
	}
	if !hasEvent(sub, teerex.EventRegistered) {
		t.Fatalf("no registration event in %+v", sub.Events)
	}
	if _, err := c.RegisterEnclave(ctx, eve.key, eve.evidence, eve.shieldingKey, "wss://127.0.0.1:2001"); err != nil {
		t.Fatalf("register Eve: %v", err)
	}

	e, h, err := c.Enclave(ctx, dave.addr)
	if err != nil {
		t.Fatal(err)
	}
	if e.Signer != dave.addr || e.MRENCLAVE != shard || e.Kind != attestation.KindDCAP || e.Debug ||
		e.TCBStatus != attestation.StatusUpToDate || e.ShieldingKeyHash != sha256.Sum256(dave.shieldingKey) ||
		e.WorkerURL != "wss://127.0.0.1:2000" || e.RegisteredHeight != sub.Height || h < sub.Height {
		t.Fatalf("Dave's registration at %d: %+v", h, e)
	}
	for name, list := range map[string]func() ([]teerex.Enclave, int64, error){
		"all":      func() ([]teerex.Enclave, int64, error) { return c.Enclaves(ctx) },
		"of shard": func() ([]teerex.Enclave, int64, error) { return c.EnclavesOf(ctx, shard) },
	} {
		got, _, err := list()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != 2 || !containsSigner(got, dave.addr) || !containsSigner(got, eve.addr) {
			t.Fatalf("%s: %+v", name, got)
		}
	}
	if got, _, err := c.EnclavesOf(ctx, measurement("other")); err != nil || len(got) != 0 {
		t.Fatalf("enclaves of another measurement: %+v %v", got, err)
	}
	if _, _, err := c.Enclave(ctx, accounts.DevAddress("Ferdie")); !errors.Is(err, teerex.ErrNotRegistered) {
		t.Fatalf("unregistered signer: %v", err)
	}

	// Shield; Dave and Eve confirm the shard block that unshields 400 to
	// Ferdie; both enclaves submit its unshield call.
	shielded, err := c.ShieldFunds(ctx, accounts.DevKey("Bob"), shard, 1000, []byte("encrypted recipient"))
	if err != nil {
		t.Fatal(err)
	}
	ferdie := accounts.DevAddress("Ferdie")
	before, err := c.Account(ctx, ferdie)
	if err != nil {
		t.Fatal(err)
	}
	callHash := types.Hash(sha256.Sum256([]byte("unshield 400 to Ferdie")))
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u := sidechain.Unshield{Beneficiary: ferdie, Amount: 400, CallHash: callHash}
	root, proofs := sidechain.UnshieldsRoot([]sidechain.Unshield{u})
	confirm, err := sidechain.ConfirmCall(sidechain.Header{Shard: shard, Number: 1, ChainHeight: shielded.Height, UnshieldsRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, dave.key, confirm); err != nil {
		t.Fatalf("Dave's vote for shard block 1: %v", err)
	}
	if b, _, err := c.SidechainBlock(ctx, shard, 1); err != nil || b != nil {
		t.Fatalf("one vote of two confirmed shard block 1: %+v %v", b, err)
	}
	if _, err := c.Submit(ctx, eve.key, confirm); err != nil {
		t.Fatalf("Eve's vote for shard block 1: %v", err)
	}
	if b, _, err := c.SidechainBlock(ctx, shard, 1); err != nil || b == nil || b.UnshieldsRoot != root || b.Enclave != eve.addr {
		t.Fatalf("shard block 1: %+v %v", b, err)
	}
	call, err := sidechain.UnshieldCall(shard, 1, u, proofs[0])
	if err != nil {
		t.Fatal(err)
	}
	var hashes [][32]byte
	var refused []error
	for _, e := range []*simEnclave{dave, eve} {
		acc, err := c.Account(ctx, e.addr)
		if err != nil {
			t.Fatal(err)
		}
		wire, err := c.BuildMinFee(e.key, acc.Nonce, params, call)
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.Broadcast(ctx, wire)
		if err != nil {
			refused = append(refused, err)
			continue
		}
		hashes = append(hashes, h)
	}
	// The second is refused by CheckTx, whether the first is still in the
	// mempool or already committed.
	if len(hashes) != 1 || len(refused) != 1 || !errors.Is(refused[0], bridge.ErrAlreadyUnshielded) {
		t.Fatalf("admitted %d, refused %v", len(hashes), refused)
	}
	if _, err := c.WaitTx(ctx, hashes[0]); err != nil {
		t.Fatal(err)
	}
	st, err := c.Shard(ctx, shard)
	if err != nil {
		t.Fatal(err)
	}
	if st.Recorded || st.Shard.Vault != bridge.VaultAddress(shard) || st.Shard.Config.MRENCLAVE != shard || st.VaultBalance != 600 {
		t.Fatalf("shard status %+v", st)
	}
	after, _, err := c.VerifiedAccount(ctx, ferdie, 0)
	if err != nil {
		t.Fatal(err)
	}
	if after.Balance != before.Balance+400 {
		t.Fatalf("Ferdie got %d, want 400 once", after.Balance-before.Balance)
	}
	rec, _, err := c.Unshielded(ctx, shard, callHash)
	if err != nil || rec == nil || rec.Amount != 400 || rec.Beneficiary != ferdie {
		t.Fatalf("unshield record %+v %v", rec, err)
	}
	// A later submission by either enclave is refused too.
	if _, err := c.Submit(ctx, dave.key, call); !errors.Is(err, bridge.ErrAlreadyUnshielded) {
		t.Fatalf("repeat: %v", err)
	}

	// Indirect invocation, a confirmation, and an unregistration.
	inv, err := c.Invoke(ctx, accounts.DevKey("Charlie"), shard, []byte("ciphertext"))
	if err != nil || !hasEvent(inv, bridge.EventInvoked) {
		t.Fatalf("invoke: %v", err)
	}
	// The confirmation must name the block the chain has at that height:
	// the hash of its header, which is what the enclave's light client
	// verified.
	hdr, err := c.VerifiedHeader(ctx, inv.Height)
	if err != nil {
		t.Fatal(err)
	}
	conf := bridge.ConfirmProcessedBlock{Shard: shard, Height: uint64(inv.Height), BlockHash: types.Hash{1}, CallsRoot: types.Hash{2}, StateHash: types.Hash{3}}
	if _, err := c.ConfirmProcessedBlock(ctx, dave.key, conf); !errors.Is(err, bridge.ErrUnknownBlock) {
		t.Fatalf("confirmation of a block the chain does not have: %v, want %v", err, bridge.ErrUnknownBlock)
	}
	if none, _, err := c.ConfirmedBlock(ctx, shard, conf.Height); err != nil || none != nil {
		t.Fatalf("refused confirmation recorded: %+v %v", none, err)
	}
	conf.BlockHash = types.Hash(hdr.Hash())
	if _, err := c.ConfirmProcessedBlock(ctx, dave.key, conf); err != nil {
		t.Fatal(err)
	}
	got, _, err := c.ConfirmedBlock(ctx, shard, conf.Height)
	if err != nil || got == nil || got.Enclave != dave.addr || got.StateHash != conf.StateHash {
		t.Fatalf("confirmed block %+v %v", got, err)
	}
	if none, _, err := c.ConfirmedBlock(ctx, shard, conf.Height+1000); err != nil || none != nil {
		t.Fatalf("unconfirmed height: %+v %v", none, err)
	}
	if st, err = c.Shard(ctx, shard); err != nil || !st.Recorded || st.Shard.Latest == nil || st.Shard.Latest.Height != conf.Height || st.VaultBalance != 600 {
		t.Fatalf("shard after confirmation %+v %v", st, err)
	}
	if _, err := c.UnregisterEnclave(ctx, eve.key); err != nil {
		t.Fatal(err)
	}
	if got, _, err := c.Enclaves(ctx); err != nil || len(got) != 1 || got[0].Signer != dave.addr {
		t.Fatalf("enclaves after unregistering Eve: %+v %v", got, err)
	}
}

// On a production-policy chain (Intel's roots, an allowlist) a sim quote
// of a measurement nobody allowed is refused by CheckTx, cheaply and for
// free, and nothing changes. Once sudo allows the measurement, CheckTx
// admits the registration without verifying it (that costs milliseconds,
// and CheckTx charges nothing); the block verifies it, refuses it with
// ErrUntrustedRoot and charges its fee. Before, CheckTx verified every
// registration and refused this one for free, so that each copy of a
// quote sent again cost the node a verification and the sender nothing.
func TestProductionNodeRejectsSimQuote(t *testing.T) {
	_, c := startNode(t, initHome(t, false))
	ctx := ctxT(t)
	genesis, err := c.GenesisID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dave := newSimEnclave(t, "Dave", measurement("v1"), genesis)
	p, _, err := c.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.AllowDebug || p.AllowAnyMRENCLAVE || len(p.TCBInfos) != 0 || !bytes.Equal(p.DCAPRoots[0], teerex.ProductionPolicy().DCAPRoots[0]) {
		t.Fatalf("production policy %+v", p)
	}
	info, err := c.RPC().ABCIInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h0 := info.Response.LastBlockHeight
	acc0, err := c.Account(ctx, dave.addr)
	if err != nil {
		t.Fatal(err)
	}

	_, err = c.RegisterEnclave(ctx, dave.key, dave.evidence, dave.shieldingKey, "")
	var te *client.TxError
	if !errors.As(err, &te) || te.Height != 0 || !errors.Is(err, teerex.ErrMRENCLAVENotAllowed) {
		t.Fatalf("registration: %v, want a CheckTx rejection with %s/%d", err, teerex.ErrMRENCLAVENotAllowed.Codespace, teerex.ErrMRENCLAVENotAllowed.Code)
	}
	if _, err := c.VerifiedHeader(ctx, h0+3); err != nil {
		t.Fatal(err)
	}
	info, err = c.RPC().ABCIInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Every block changes the app hash (it records its own hash): look at
	// the blocks instead, none of which carries a transaction.
	for h := h0 + 1; h <= info.Response.LastBlockHeight; h++ {
		b, err := c.RPC().Block(ctx, &h)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(b.Block.Txs); n != 0 {
			t.Fatalf("block %d carries %d transactions", h, n)
		}
	}
	if acc, err := c.Account(ctx, dave.addr); err != nil || acc != acc0 {
		t.Fatalf("Dave %+v, was %+v (%v)", acc, acc0, err)
	}

	if _, err := c.AllowMRENCLAVE(ctx, accounts.DevKey("Alice"), measurement("v1")); err != nil {
		t.Fatal(err)
	}
	sub, err := c.RegisterEnclave(ctx, dave.key, dave.evidence, dave.shieldingKey, "")
	if !errors.As(err, &te) || te.Height == 0 || !errors.Is(err, teerex.ErrUntrustedRoot) {
		t.Fatalf("registration: %v, want a failure in a block with %s/%d", err, teerex.ErrUntrustedRoot.Codespace, teerex.ErrUntrustedRoot.Code)
	}
	if !hasEvent(sub, accounts.EventFee) {
		t.Fatalf("failed registration paid no fee: %+v", sub.Events)
	}
	acc, err := c.Account(ctx, dave.addr)
	if err != nil || acc.Nonce != acc0.Nonce+1 || acc.Balance >= acc0.Balance {
		t.Fatalf("Dave %+v, was %+v (%v): want the fee charged and the nonce consumed", acc, acc0, err)
	}
	if got, _, err := c.Enclaves(ctx); err != nil || len(got) != 0 {
		t.Fatalf("enclaves %+v %v", got, err)
	}
}

func hasEvent(s *client.Submitted, typ string) bool {
	for _, e := range s.Events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

func containsSigner(es []teerex.Enclave, a tx.Address) bool {
	for _, e := range es {
		if e.Signer == a {
			return true
		}
	}
	return false
}

// The client lists more registrations than fit one page, proved at one
// height in batched queries, and can stop early. The listing it read before
// was one proved array, which stopped working past 4,096 registrations.
func TestClientListsEnclavesPageByPage(t *testing.T) {
	_, c := startNode(t, initHome(t, true))
	ctx := ctxT(t)
	genesis, err := c.GenesisID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 57 // more than a page, not a whole number of batches
	shard := measurement("v1")
	b, err := sim.New(sim.Config{Measurement: (*[32]byte)(&shard)})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]ed25519.PrivateKey, n)
	var last [32]byte
	for i := range keys {
		keys[i] = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, ed25519.SeedSize))
		call, err := accounts.TransferCall(tx.AddressOf(keys[i].Public().(ed25519.PublicKey)), accounts.Unit)
		if err != nil {
			t.Fatal(err)
		}
		wire, err := c.BuildMinFee(accounts.DevKey("Alice"), uint64(i), params, call)
		if err != nil {
			t.Fatal(err)
		}
		if last, err = c.Broadcast(ctx, wire); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.WaitTx(ctx, last); err != nil {
		t.Fatal(err)
	}
	want := map[tx.Address]bool{}
	hashes := make([][32]byte, n)
	for i, k := range keys {
		addr := tx.AddressOf(k.Public().(ed25519.PublicKey))
		want[addr] = true
		q, err := b.Quote(teerex.ReportData(addr, []byte("k"), genesis))
		if err != nil {
			t.Fatal(err)
		}
		call, err := teerex.RegisterEnclaveCall(teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}, []byte("k"), "")
		if err != nil {
			t.Fatal(err)
		}
		wire, err := c.BuildMinFee(k, 0, params, call)
		if err != nil {
			t.Fatal(err)
		}
		if hashes[i], err = c.Broadcast(ctx, wire); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range hashes {
		if _, err := c.WaitTx(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	for name, list := range map[string]func() ([]teerex.Enclave, int64, error){
		"all":      func() ([]teerex.Enclave, int64, error) { return c.Enclaves(ctx) },
		"of shard": func() ([]teerex.Enclave, int64, error) { return c.EnclavesOf(ctx, shard) },
	} {
		got, _, err := list()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != n {
			t.Fatalf("%s: %d listed, want %d", name, len(got), n)
		}
		for i, e := range got {
			if !want[e.Signer] || i > 0 && bytes.Compare(got[i-1].Signer[:], e.Signer[:]) >= 0 {
				t.Fatalf("%s: %d: %s unknown or out of order", name, i, e.Signer)
			}
		}
	}
	read := 0
	total, _, err := c.EachEnclave(ctx, &shard, func(teerex.Enclave) bool { read++; return read < 3 })
	if err != nil || total != n || read != 3 {
		t.Fatalf("EachEnclave stopping at 3: total %d, read %d, %v", total, read, err)
	}
}
