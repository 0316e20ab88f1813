package enclave_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/internal/testchain"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/seal"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
)

func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	c := newChainSim(t)
	shard := sha256Of("integritee e2e enclave v1") // MRENCLAVE of the sim enclave = shard
	h := newHost(t, shard)

	// First start creates keys; a restart unseals the same ones.
	first := h.boot(c)
	if !first.Created || first.Height != 0 || first.MRENCLAVE != shard {
		t.Fatalf("first init %+v", first)
	}
	again := h.boot(c)
	if again.Created || !bytes.Equal(again.SignerPublic, first.SignerPublic) || !bytes.Equal(again.ShieldingPublic, first.ShieldingPublic) {
		t.Fatal("restart did not restore the same keys")
	}
	enc := tx.AddressOf(ed25519.PublicKey(first.SignerPublic))
	pub := first.ShieldingPublic

	alice, bob := accounts.DevKey("Alice"), accounts.DevKey("Bob")
	aliceI, bobI := key("alice incognito"), key("bob incognito")
	aliceA, bobA := addr(aliceI), addr(bobI)
	beneficiary := accounts.DevAddress("Charlie")
	otherShard := sha256Of("another shard")
	// otherChain has this chain's ID but other genesis validators.
	otherChain := c.target(shard, shard)
	otherChain.Genesis = teerex.GenesisID(chainID, 1, testchain.New(chainID, 4, "other validators").Vals.Hash())
	params := func(nonce uint64) protocol.TxParams {
		return protocol.TxParams{ChainID: chainID, Nonce: nonce, BaseFee: accounts.DevBaseFee, PerByteFee: accounts.DevPerByteFee}
	}
	wantOK := func(res interface{ GetCode() uint32 }, what string) {
		t.Helper()
		if res.GetCode() != 0 {
			t.Fatalf("%s failed on chain: code %d", what, res.GetCode())
		}
	}

	// Block 1: Alice funds the enclave's account.
	for _, r := range c.block(c.tx(alice, accounts.Name, accounts.MethodTransfer, accounts.Transfer{To: enc, Amount: 10 * accounts.Unit})) {
		wantOK(r, "funding")
	}
	// Block 2: the enclave registers (its quote verified on chain).
	reg, err := protocol.CallAs[*protocol.SignedTxs](ctx, h.c, &protocol.SignRegistration{Params: params(0), WorkerURL: "wss://127.0.0.1:2000"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.block(reg.Txs...) {
		wantOK(r, "register_enclave")
	}
	// Block 3: Alice shields 1000 to her incognito account; 5 more to a
	// recipient nobody can decrypt; garbage and another shard's invoke.
	recipient, err := shielding.Encrypt(pub, shielding.InfoShieldRecipient, aliceA[:])
	if err != nil {
		t.Fatal(err)
	}
	c.block(
		c.tx(alice, bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: types.Hash(shard), Amount: 1000, EncryptedRecipient: recipient}),
		c.tx(alice, bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: types.Hash(shard), Amount: 5, EncryptedRecipient: []byte("not a ciphertext")}),
		c.tx(bob, bridge.Name, bridge.MethodInvoke, bridge.Invoke{Shard: types.Hash(shard), Ciphertext: bytes.Repeat([]byte{0x42}, 1200)}),
		// Fails on chain (Bob cannot pay it): the enclave must not credit it.
		c.tx(bob, bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: types.Hash(shard), Amount: 10 * accounts.DevBalance, EncryptedRecipient: recipient}),
		invoke(t, c, bob, pub, otherShard, trustedCall(t, aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(bobI), Amount: 1}}, 0, c.target(shard, otherShard))),
	)
	// Block 4: a confidential transfer of 300.
	transfer := trustedCall(t, aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(bobI), Amount: 300}}, 0, c.target(shard, shard))
	transferTx := invoke(t, c, bob, pub, shard, transfer)
	c.block(transferTx)
	// Block 5: Bob unshields 100 to Charlie's public account; a replay of
	// the transfer, and calls signed for another shard, enclave and chain.
	unshield := trustedCall(t, bobI, stf.Call{Unshield: &stf.UnshieldTo{From: addr(bobI), Beneficiary: beneficiary, Amount: 100}}, 0, c.target(shard, shard))
	c.block(
		invoke(t, c, bob, pub, shard, unshield),
		invoke(t, c, bob, pub, shard, transfer),
		invoke(t, c, bob, pub, shard, trustedCall(t, aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(bobI), Amount: 1}}, 1, c.target(shard, otherShard))),
		invoke(t, c, bob, pub, shard, trustedCall(t, aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(bobI), Amount: 1}}, 1, c.target(otherShard, shard))),
		invoke(t, c, bob, pub, shard, trustedCall(t, aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(bobI), Amount: 1}}, 1, otherChain)),
	)
	c.block() // block 6: proves the results of 5

	wantStats := map[int64]protocol.Stats{
		1: {}, 2: {},
		3: {Invokes: 1, Rejected: 1, Shields: 2, ShieldsRejected: 1},
		4: {Invokes: 1, Applied: 1},
		5: {Invokes: 5, Applied: 1, Rejected: 4},
	}
	var last *protocol.ProcessBlockReply
	for hgt := int64(1); hgt <= 5; hgt++ {
		rep, err := h.process(c, hgt)
		if err != nil {
			t.Fatalf("block %d: %v", hgt, err)
		}
		if rep.Stats != wantStats[hgt] {
			t.Fatalf("block %d stats %+v, want %+v", hgt, rep.Stats, wantStats[hgt])
		}
		if rep.StateRoot != h.root() {
			t.Fatalf("block %d: state hash %x is not the hash of the persisted entries %x", hgt, rep.StateRoot, h.root())
		}
		last = rep
	}
	balance := func(k ed25519.PrivateKey) uint64 {
		t.Helper()
		return privateBalance(t, c, h, first.ShieldingPublic, k)
	}
	if a, b := balance(aliceI), balance(bobI); a != 700 || b != 200 {
		t.Fatalf("confidential balances alice %d bob %d, want 700 200", a, b)
	}

	// Block 5's outgoing: its shard block's confirmation, the unshield
	// proved by that block, and the processed-block confirmation.
	if len(last.Outgoing) != 3 || last.Outgoing[0].Call.Method != sidechain.MethodConfirmSidechainBlock ||
		last.Outgoing[1].Call.Method != bridge.MethodUnshieldFunds || last.Outgoing[2].Call.Method != bridge.MethodConfirmProcessedBlock {
		t.Fatalf("outgoing %+v", last.Outgoing)
	}
	var u bridge.UnshieldFunds
	if err := last.Outgoing[1].Call.DecodeArgs(&u); err != nil || u.Beneficiary != beneficiary || u.Amount != 100 || u.Shard != types.Hash(shard) ||
		last.Block == nil || u.Block != last.Block.Header.Number {
		t.Fatalf("unshield %+v %v", u, err)
	}

	// Forged call tags are refused.
	forged := last.Outgoing[1]
	forged.Call, _ = tx.NewCall(bridge.Name, bridge.MethodUnshieldFunds, bridge.UnshieldFunds{Shard: u.Shard, Beneficiary: accounts.DevAddress("Eve"), Amount: 900, CallHash: u.CallHash})
	if _, err := h.c.Call(ctx, &protocol.SignOutgoing{Calls: []protocol.Outgoing{forged}, Params: params(1)}); !errors.Is(err, protocol.ErrForbidden) {
		t.Fatalf("forged outgoing: %v", err)
	}
	// The host submits everything the enclave produced, in order: the
	// unshield pays only once its shard block, and every block before it,
	// is confirmed.
	signed, err := protocol.CallAs[*protocol.SignedTxs](ctx, h.c, &protocol.SignOutgoing{Calls: h.outgoing, Params: params(1)})
	if err != nil || signed.NextNonce != 1+uint64(len(h.outgoing)) {
		t.Fatalf("sign outgoing: %v", err)
	}
	charlieBefore := c.balance(beneficiary)
	for _, r := range c.block(signed.Txs...) {
		wantOK(r, "enclave transaction")
	}
	// Public balances: exactly the shielded and unshielded amounts.
	vault := bridge.VaultAddress(types.Hash(shard))
	if got := c.balance(vault); got != 1000+5-100 {
		t.Fatalf("vault holds %d, want 905", got)
	}
	if got := c.balance(beneficiary) - charlieBefore; got != 100 {
		t.Fatalf("beneficiary received %d, want 100", got)
	}
	aliceTxs := c.nonces[accounts.DevAddress("Alice")]
	if got, want := c.balance(accounts.DevAddress("Alice")), accounts.DevBalance-10*accounts.Unit-1005-aliceTxs*fee; got != want {
		t.Fatalf("alice public %d, want %d", got, want)
	}
	// The chain recorded the enclave's state hash.
	rec := c.shard(shard)
	if rec.Latest == nil || rec.Latest.Height != 5 || rec.Latest.StateHash != types.Hash(last.StateRoot) || rec.Latest.Enclave != enc {
		t.Fatalf("chain's confirmation %+v, enclave root %x", rec.Latest, last.StateRoot)
	}
	// The chain never saw a plaintext call or an incognito account.
	for _, raw := range c.txs {
		for _, secret := range [][]byte{aliceA[:], bobA[:], transfer, unshield} {
			if bytes.Contains(raw, secret) {
				t.Fatal("plaintext of a trusted call on chain")
			}
		}
	}

	// A forged commit for the next block is refused; nothing changes.
	c.block() // 8
	info := stateInfo(t, h)
	forgedReq := request(t, c.tc, 6)
	impostor := forgeBlock(t, c, 6)
	forgedReq.Block = impostor
	if _, err := h.c.Call(ctx, forgedReq); !errors.Is(err, protocol.ErrVerification) {
		t.Fatalf("forged commit: %v", err)
	}
	garbage := request(t, c.tc, 6)
	garbage.Block.SignedHeader = []byte("garbage")
	if _, err := h.c.Call(ctx, garbage); !errors.Is(err, protocol.ErrVerification) {
		t.Fatalf("garbage header: %v", err)
	}
	skip := request(t, c.tc, 7)
	if _, err := h.c.Call(ctx, skip); !errors.Is(err, protocol.ErrVerification) {
		t.Fatalf("skipped block: %v", err)
	}
	if got := stateInfo(t, h); got != info {
		t.Fatalf("rejections changed the enclave: %+v -> %+v", info, got)
	}

	// Crash after processing 6 but before persisting it: the restarted
	// enclave redoes 6 from the checkpoint of 5 with the same outcome.
	lost, err := protocol.CallAs[*protocol.ProcessBlockReply](ctx, h.c, request(t, c.tc, 6))
	if err != nil {
		t.Fatal(err)
	}
	rep := h.boot(c)
	if !rep.AwaitingEntries || rep.Height != 5 || rep.StateRoot != last.StateRoot {
		t.Fatalf("restart %+v", rep)
	}
	if got := stateInfo(t, h); got.Height != 5 || got.StateRoot != last.StateRoot {
		t.Fatalf("restored %+v", got)
	}
	redo, err := h.process(c, 6)
	if err != nil {
		t.Fatal(err)
	}
	if redo.StateRoot != lost.StateRoot || !equalEntries(redo.Changes, lost.Changes) {
		t.Fatal("reprocessing a block after a restart gave another result")
	}
	if a, b := balance(aliceI), balance(bobI); a != 700 || b != 200 {
		t.Fatalf("after restart alice %d bob %d", a, b)
	}
	if _, err := h.process(c, 7); err != nil {
		t.Fatal(err)
	}

	assertNoKeyMaterial(t, h)
	assertNoPlaintextState(t, h, aliceA, bobA)
}

// assertNoPlaintextState checks that no plaintext state crossed the
// enclave boundary in h's traffic (production rules): no state key (the
// balances and nonces prefixes), no incognito account address. Checked
// against a dev build's plaintext getter, the same scan finds them.
func assertNoPlaintextState(t *testing.T, h *host, accounts ...tx.Address) {
	t.Helper()
	if found := plaintextState(t, h, accounts...); found != "" {
		t.Fatalf("%s crossed the enclave boundary in plaintext", found)
	}
}

// plaintextState names the first plaintext state item found in h's
// traffic, or "".
func plaintextState(t *testing.T, h *host, accounts ...tx.Address) string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.traffic.Len() == 0 {
		t.Fatal("no traffic recorded")
	}
	secrets := map[string][]byte{"balance key": []byte("balances/free/"), "nonce key": []byte("system/nonce/")}
	for i, a := range accounts {
		secrets[fmt.Sprintf("account %d", i)] = a[:]
	}
	for name, s := range secrets {
		if bytes.Contains(h.traffic.Bytes(), s) {
			return name
		}
	}
	return ""
}

// TestPlaintextStateScanFinds is the control of assertNoPlaintextState: a
// dev build's plaintext state read shows up in the same scan.
func TestPlaintextStateScanFinds(t *testing.T) {
	d := newDevDirect(t, "plaintext scan control")
	a := addr(d.aliceI)
	if _, err := d.h.c.Call(context.Background(), &protocol.GetState{Key: append([]byte("balances/free/"), a[:]...)}); err != nil {
		t.Fatal(err)
	}
	if found := plaintextState(t, d.h, a); found == "" {
		t.Fatal("the scan misses a plaintext state read")
	}
}

func sha256Of(s string) [32]byte {
	var out [32]byte
	copy(out[:], key(s).Seed())
	return out
}

func equalEntries(a, b []protocol.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func stateInfo(t testing.TB, h *host) protocol.StateInfoReply {
	t.Helper()
	r, err := protocol.CallAs[*protocol.StateInfoReply](context.Background(), h.c, &protocol.StateInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return *r
}

// forgeBlock returns block hgt's header re-signed by keys that are not the
// validators'.
func forgeBlock(t testing.TB, c *chainSim, hgt int64) protocol.Header {
	t.Helper()
	b := *c.tc.Block(hgt)
	impostors := newImpostors()
	sh := *b.Header
	sh.Commit = c.tc.Sign(sh.Header, impostors)
	b.Header = &sh
	return header(t, &b)
}

// assertNoKeyMaterial checks that no private key the enclave holds ever
// crossed the pipe: the sealed blobs are opened here with the enclave's
// own backend to learn the keys.
func assertNoKeyMaterial(t *testing.T, h *host) {
	t.Helper()
	secrets := map[string][]byte{}
	for label, blob := range map[string][]byte{keys.LabelSigner: h.sealed.Signer, keys.LabelShielding: h.sealed.Shielding, keys.LabelState: h.sealed.State} {
		k, err := seal.Open(h.backend, label, enclave.SealScope(h.shard, h.genesis), blob)
		if err != nil {
			t.Fatal(err)
		}
		secrets[label] = k
	}
	secrets["signer private key"] = ed25519.NewKeyFromSeed(secrets[keys.LabelSigner])
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.traffic.Len() == 0 {
		t.Fatal("no traffic recorded")
	}
	for name, s := range secrets {
		if bytes.Contains(h.traffic.Bytes(), s) {
			t.Fatalf("%s crossed the enclave boundary", name)
		}
	}
}
