package enclave_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/merkle"
	"github.com/cometbft/cometbft/types"

	app "github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/internal/testchain"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
)

// newDirectChain is newChainSim with the sidechain module, so that the
// enclave's confirm_sidechain_block runs against the real chain.
func newDirectChain(t testing.TB) *chainSim {
	t.Helper()
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	tr := teerex.New(accounts.Keeper{})
	br := bridge.New(tr.Keeper, accounts.Keeper{}, accounts.Keeper{})
	a, err := app.New(app.Options{ChainID: chainID, Store: st, Modules: []runtime.Module{tr, br, sidechain.New(tr.Keeper, br)}})
	if err != nil {
		t.Fatal(err)
	}
	tc := testchain.New(chainID, 4, "direct validators")
	ag, _ := json.Marshal(accounts.DevGenesis())
	tg, err := teerex.DevGenesis(tc.Start)
	if err != nil {
		t.Fatal(err)
	}
	tgj, _ := json.Marshal(tg)
	genesis, err := json.Marshal(app.AppState{Dev: true, Modules: map[string]json.RawMessage{accounts.Name: ag, teerex.Name: tgj}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, Time: tc.Start, InitialHeight: 1, AppStateBytes: genesis, Validators: types.TM2PB.ValidatorUpdates(tc.Vals)}); err != nil {
		t.Fatal(err)
	}
	return &chainSim{t: t, app: a, tc: tc, nonces: map[tx.Address]uint64{}}
}

// direct is a registered enclave with Alice's incognito account funded
// through the chain, ready for direct calls.
type direct struct {
	t            testing.TB
	c            *chainSim
	h            *host
	shard        [32]byte
	pub          []byte
	enclave      tx.Address
	encNonce     uint64
	aliceI, bobI ed25519.PrivateKey
	processed    int64
	// persisted shard blocks, by number
	blocks map[uint64]sidechain.SignedHeader
}

func newDirect(t testing.TB, name string) *direct {
	t.Helper()
	c := newDirectChain(t)
	shard := sha256Of(name)
	h := newHost(t, shard)
	init := h.boot(c)
	d := &direct{
		t: t, c: c, h: h, shard: shard, pub: init.ShieldingPublic, enclave: tx.AddressOf(ed25519.PublicKey(init.SignerPublic)),
		aliceI: key("alice incognito"), bobI: key("bob incognito"), blocks: map[uint64]sidechain.SignedHeader{},
	}
	alice := accounts.DevKey("Alice")
	c.block(c.tx(alice, accounts.Name, accounts.MethodTransfer, accounts.Transfer{To: d.enclave, Amount: 10 * accounts.Unit}))
	reg, err := protocol.CallAs[*protocol.SignedTxs](context.Background(), h.c, &protocol.SignRegistration{Params: d.params(), WorkerURL: "ws://127.0.0.1:2000"})
	if err != nil {
		t.Fatal(err)
	}
	d.encNonce = reg.NextNonce
	d.chainOK(c.block(reg.Txs...), "register")
	aliceA := addr(d.aliceI)
	recipient, err := shielding.Encrypt(d.pub, shielding.InfoShieldRecipient, aliceA[:])
	if err != nil {
		t.Fatal(err)
	}
	c.block(c.tx(alice, bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: teerex.Hash(shard), Amount: 1000, EncryptedRecipient: recipient}))
	c.block()
	d.sync()
	return d
}

func (d *direct) params() protocol.TxParams {
	return protocol.TxParams{ChainID: chainID, Nonce: d.encNonce, BaseFee: accounts.DevBaseFee, PerByteFee: accounts.DevPerByteFee}
}

func (d *direct) chainOK(res []*abci.ExecTxResult, what string) {
	d.t.Helper()
	for i, r := range res {
		if r.Code != 0 {
			d.t.Fatalf("%s: tx %d failed on chain: %s/%d %s", what, i, r.Codespace, r.Code, r.Log)
		}
	}
}

// sync processes every chain block that has a successor.
func (d *direct) sync() {
	d.t.Helper()
	for d.processed+1 < d.c.tc.Height() {
		if _, err := d.h.process(d.c, d.processed+1); err != nil {
			d.t.Fatalf("block %d: %v", d.processed+1, err)
		}
		d.processed++
	}
}

func (d *direct) call(k ed25519.PrivateKey, call stf.Call, nonce uint64) []byte {
	d.t.Helper()
	ct, err := shielding.Encrypt(d.pub, shielding.InfoTrustedCall, trustedCall(d.t, k, call, nonce, d.shard, d.shard))
	if err != nil {
		d.t.Fatal(err)
	}
	return ct
}

func (d *direct) transfer(from, to ed25519.PrivateKey, amount, nonce uint64) []byte {
	return d.call(from, stf.Call{Transfer: &stf.Transfer{From: addr(from), To: addr(to), Amount: amount}}, nonce)
}

// submit sends a batch and, like the host, persists the reply atomically.
func (d *direct) submit(calls ...[]byte) *protocol.SubmitCallsReply {
	d.t.Helper()
	rep, err := d.submitOnly(calls...)
	if err != nil {
		d.t.Fatal(err)
	}
	d.persist(rep)
	return rep
}

func (d *direct) submitOnly(calls ...[]byte) (*protocol.SubmitCallsReply, error) {
	p := d.params()
	return protocol.CallAs[*protocol.SubmitCallsReply](context.Background(), d.h.c, &protocol.SubmitCalls{Calls: calls, Timestamp: 1, Sign: &p})
}

func (d *direct) persist(rep *protocol.SubmitCallsReply) {
	if rep.Block == nil {
		return
	}
	d.h.persist(&protocol.ProcessBlockReply{Height: d.h.height, Changes: rep.Changes, Checkpoint: rep.Checkpoint, Outgoing: rep.Outgoing})
	d.blocks[rep.Block.Header.Number] = *rep.Block
	d.encNonce = rep.NextNonce
}

// getter runs a private getter of k and opens the answer.
func (d *direct) getter(signer ed25519.PrivateKey, g stf.Getter) (*shielding.GetterResponse, error) {
	d.t.Helper()
	raw, err := stf.EncodeGetter(g)
	if err != nil {
		d.t.Fatal(err)
	}
	signed, err := stf.SignGetter(signer, raw, d.shard, d.shard)
	if err != nil {
		d.t.Fatal(err)
	}
	req, rk, err := shielding.NewGetterRequest(d.pub, signed)
	if err != nil {
		d.t.Fatal(err)
	}
	rep, err := protocol.CallAs[*protocol.PrivateGetterReply](context.Background(), d.h.c, &protocol.PrivateGetter{Request: req})
	if err != nil {
		return nil, err
	}
	return rk.Open(req, rep.Response)
}

func (d *direct) balance(k ed25519.PrivateKey) uint64 {
	d.t.Helper()
	a := addr(k)
	resp, err := d.getter(k, stf.Getter{FreeBalance: &a})
	if err != nil || resp.Error != "" {
		d.t.Fatalf("balance getter: %v %q", err, resp.Error)
	}
	var v uint64
	if err := codec.Unmarshal(resp.Value, &v); err != nil {
		d.t.Fatal(err)
	}
	return v
}

// checkBlock verifies a reply's block as a client would: signed by the
// enclave, chained to its parent, committing to the calls and to the
// state the host persisted.
func (d *direct) checkBlock(rep *protocol.SubmitCallsReply, number uint64, calls [][]byte) {
	d.t.Helper()
	b := rep.Block
	if b == nil {
		d.t.Fatal("no block")
	}
	hash, err := b.Verify()
	if err != nil {
		d.t.Fatal(err)
	}
	hd := b.Header
	if hd.Number != number || hd.Author != d.enclave || hd.Shard != teerex.Hash(d.shard) || hd.ChainHeight != d.processed {
		d.t.Fatalf("header %+v", hd)
	}
	var parent teerex.Hash
	if p, ok := d.blocks[number-1]; ok {
		if parent, err = p.Header.Hash(); err != nil {
			d.t.Fatal(err)
		}
		if hd.Timestamp < p.Header.Timestamp {
			d.t.Fatalf("timestamp went back: %d after %d", hd.Timestamp, p.Header.Timestamp)
		}
	}
	if hd.ParentHash != parent {
		d.t.Fatalf("parent %s, want %s", hd.ParentHash, parent)
	}
	if hd.StateHash != teerex.Hash(rep.StateRoot) || rep.StateRoot != d.h.root() {
		d.t.Fatalf("state hash %s, reply %x, persisted %x", hd.StateHash, rep.StateRoot, d.h.root())
	}
	if [32]byte(merkle.HashFromByteSlices(rep.Leaves)) != [32]byte(hd.CallsRoot) {
		d.t.Fatal("calls root is not the root of the leaves")
	}
	for i, ct := range calls {
		r := rep.Results[i]
		if r.Status == protocol.CallInvalid {
			continue
		}
		status := sidechain.LeafExecuted
		if r.Status == protocol.CallFailed {
			status = sidechain.LeafFailed
		}
		if !bytes.Equal(rep.Leaves[r.Index], sidechain.CallLeaf(sha256.Sum256(ct), status)) {
			d.t.Fatalf("call %d: leaf %d does not commit to it", i, r.Index)
		}
	}
	last := rep.Outgoing[len(rep.Outgoing)-1]
	want, err := sidechain.ConfirmCall(teerex.Hash(d.shard), number, hash)
	if err != nil {
		d.t.Fatal(err)
	}
	if last.Call.Method != want.Method || !bytes.Equal(last.Call.Args, want.Args) {
		d.t.Fatalf("last outgoing %s.%s is not the block's confirmation", last.Call.Module, last.Call.Method)
	}
	if len(rep.Txs) != len(rep.Outgoing) {
		d.t.Fatalf("%d outgoing, %d signed", len(rep.Outgoing), len(rep.Txs))
	}
}

func TestSubmitCalls(t *testing.T) {
	d := newDirect(t, "direct enclave v1")
	aliceI, bobI := d.aliceI, d.bobI
	other := sha256Of("another shard")
	otherShardCall, err := shielding.Encrypt(d.pub, shielding.InfoTrustedCall,
		trustedCall(t, aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(bobI), Amount: 1}}, 2, d.shard, other))
	if err != nil {
		t.Fatal(err)
	}
	// Eve signs a transfer from Alice's account, claiming to be Alice.
	forged, err := stf.SignCall(key("eve"), mustEncode(t, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(key("eve")), Amount: 1}}), 2, d.shard, d.shard)
	if err != nil {
		t.Fatal(err)
	}
	var sc stf.SignedCall
	if err := codec.Unmarshal(forged, &sc); err != nil {
		t.Fatal(err)
	}
	sc.Signer = addr(aliceI)
	forgedRaw, _ := codec.Marshal(sc)
	forgedCT, err := shielding.Encrypt(d.pub, shielding.InfoTrustedCall, forgedRaw)
	if err != nil {
		t.Fatal(err)
	}
	wrongInfo, err := shielding.Encrypt(d.pub, shielding.InfoShieldRecipient, trustedCall(t, aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(bobI), Amount: 1}}, 2, d.shard, d.shard))
	if err != nil {
		t.Fatal(err)
	}

	calls := [][]byte{
		d.transfer(aliceI, bobI, 100, 0),
		d.transfer(aliceI, bobI, 200, 1),
		d.transfer(aliceI, bobI, 100, 0), // replay in the same batch
		bytes.Repeat([]byte{7}, 1300),    // garbage
		forgedCT,
		otherShardCall,
		d.transfer(aliceI, bobI, 5, 9),         // future nonce
		d.transfer(aliceI, bobI, 1_000_000, 2), // fails: funds
		wrongInfo,
		make([]byte, protocol.MaxCallCiphertext+1),
	}
	want := []protocol.CallResult{
		{Status: protocol.CallExecuted, Index: 0},
		{Status: protocol.CallExecuted, Index: 1},
		{Status: protocol.CallInvalid, Reason: protocol.ReasonStaleNonce},
		{Status: protocol.CallInvalid, Reason: protocol.ReasonUndecryptable},
		{Status: protocol.CallInvalid, Reason: protocol.ReasonBadSignature},
		{Status: protocol.CallInvalid, Reason: protocol.ReasonBadSignature},
		{Status: protocol.CallInvalid, Reason: protocol.ReasonFutureNonce},
		{Status: protocol.CallFailed, Reason: stf.ErrInsufficientFunds.Error(), Index: 2},
		{Status: protocol.CallInvalid, Reason: protocol.ReasonUndecryptable},
		{Status: protocol.CallInvalid, Reason: protocol.ReasonTooLarge},
	}
	rep := d.submit(calls...)
	for i := range want {
		if rep.Results[i] != want[i] {
			t.Errorf("call %d: %+v, want %+v", i, rep.Results[i], want[i])
		}
	}
	if strings.Contains(rep.Results[7].Reason, "700") {
		t.Fatalf("failure reason leaks the balance: %q", rep.Results[7].Reason)
	}
	d.checkBlock(rep, 1, calls)
	if got := d.balance(bobI); got != 300 {
		t.Fatalf("bob %d", got)
	}
	if got := d.balance(aliceI); got != 700 {
		t.Fatalf("alice %d", got)
	}

	// Next batch: block 2 chains to block 1.
	second := [][]byte{d.transfer(bobI, aliceI, 50, 0)}
	d.checkBlock(d.submit(second...), 2, second)

	// An all-invalid batch makes no block and changes nothing.
	root := d.h.root()
	none := d.submit(d.transfer(bobI, aliceI, 50, 0))
	if none.Block != nil || len(none.Changes) != 0 || none.Checkpoint != nil || none.Results[0].Reason != protocol.ReasonStaleNonce || none.StateRoot != root {
		t.Fatalf("invalid batch %+v", none)
	}

	// A chain block in between: the next shard block records it.
	d.c.block(d.c.tx(accounts.DevKey("Bob"), accounts.Name, accounts.MethodTransfer, accounts.Transfer{To: accounts.DevAddress("Eve"), Amount: 1}))
	d.c.block()
	d.sync()
	third := [][]byte{d.transfer(aliceI, bobI, 1, 3)}
	d.checkBlock(d.submit(third...), 3, third)

	// The confirmations the enclave signed are accepted by the chain, in
	// order; the latest is block 3's header hash.
	d.chainOK(d.c.block(d.signedConfirmations()...), "confirm_sidechain_block")
	var latest sidechain.Confirmation
	q, err := d.c.app.Query(context.Background(), &abci.RequestQuery{Path: "/sidechain/shard/" + teerex.Hash(d.shard).String()})
	if err != nil || q.Code != 0 {
		t.Fatalf("query %v %+v", err, q)
	}
	if err := codec.Unmarshal(q.Value, &latest); err != nil {
		t.Fatal(err)
	}
	b3 := d.blocks[3]
	h3, _ := b3.Header.Hash()
	if latest.Number != 3 || latest.HeaderHash != h3 || latest.Enclave != d.enclave {
		t.Fatalf("latest confirmation %+v", latest)
	}
}

// signedConfirmations returns the signed transactions of every outgoing
// call persisted so far, in order (what the host's outbox submits).
func (d *direct) signedConfirmations() [][]byte {
	d.t.Helper()
	// Only the sidechain confirmations: the chain-block confirmations are
	// exercised by the enclave's own end-to-end test.
	var out []protocol.Outgoing
	for _, o := range d.h.outgoing {
		if o.Call.Module == sidechain.Name {
			out = append(out, o)
		}
	}
	signed, err := protocol.CallAs[*protocol.SignedTxs](context.Background(), d.h.c, &protocol.SignOutgoing{Calls: out, Params: protocol.TxParams{
		ChainID: chainID, Nonce: d.accountNonce(), BaseFee: accounts.DevBaseFee, PerByteFee: accounts.DevPerByteFee,
	}})
	if err != nil {
		d.t.Fatal(err)
	}
	return signed.Txs
}

func (d *direct) accountNonce() uint64 {
	d.t.Helper()
	q, err := d.c.app.Query(context.Background(), &abci.RequestQuery{Path: "/accounts/" + d.enclave.String()})
	if err != nil || q.Code != 0 {
		d.t.Fatalf("query %v %+v", err, q)
	}
	var a accounts.Account
	if err := codec.Unmarshal(q.Value, &a); err != nil {
		d.t.Fatal(err)
	}
	return a.Nonce
}

func mustEncode(t testing.TB, c stf.Call) []byte {
	t.Helper()
	b, err := stf.EncodeCall(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDirectRestart: an acknowledged (persisted) block survives a restart
// and is never applied twice; a block whose reply was lost before it was
// persisted never happened, and its calls can be sent again.
func TestDirectRestart(t *testing.T) {
	d := newDirect(t, "direct restart v1")
	first := d.transfer(d.aliceI, d.bobI, 100, 0)
	d.checkBlock(d.submit(first), 1, [][]byte{first})

	// Lost: executed by the enclave, never persisted by the host.
	lost := d.transfer(d.aliceI, d.bobI, 10, 1)
	if _, err := d.submitOnly(lost); err != nil {
		t.Fatal(err)
	}
	d.h.boot(d.c)
	if got := d.balance(d.bobI); got != 100 {
		t.Fatalf("after restart bob has %d, want the persisted 100", got)
	}
	// The acknowledged call is not applied again; the lost one can be.
	rep := d.submit(first, lost)
	if rep.Results[0].Reason != protocol.ReasonStaleNonce || rep.Results[1].Status != protocol.CallExecuted {
		t.Fatalf("results %+v", rep.Results)
	}
	d.checkBlock(rep, 2, [][]byte{first, lost})
	if got := d.balance(d.bobI); got != 110 {
		t.Fatalf("bob %d", got)
	}
	// Chain blocks after shard blocks keep the sidechain head in the
	// checkpoint: restart again after one.
	d.c.block()
	d.c.block()
	d.sync()
	d.h.boot(d.c)
	next := d.transfer(d.aliceI, d.bobI, 1, 2)
	d.checkBlock(d.submit(next), 3, [][]byte{next})
}

func TestPrivateGetter(t *testing.T) {
	d := newDirect(t, "private getter v1")
	ctx := context.Background()
	if got := d.balance(d.aliceI); got != 1000 {
		t.Fatalf("alice %d", got)
	}
	// Nonce getter.
	a := addr(d.aliceI)
	resp, err := d.getter(d.aliceI, stf.Getter{Nonce: &a})
	if err != nil || resp.Error != "" {
		t.Fatalf("nonce: %v %+v", err, resp)
	}

	// Someone else's getter: the refusal reaches the asker, encrypted.
	bobA := addr(d.bobI)
	resp, err = d.getter(d.aliceI, stf.Getter{FreeBalance: &bobA})
	if err != nil || resp.Error != stf.ErrNotOwner.Error() || resp.Value != nil {
		t.Fatalf("foreign getter: %v %+v", err, resp)
	}

	// Requests that do not decrypt, or carry no usable reply key, cannot
	// be answered encrypted: error replies.
	signed, err := stf.SignGetter(d.aliceI, mustGetter(t, stf.Getter{FreeBalance: &a}), d.shard, d.shard)
	if err != nil {
		t.Fatal(err)
	}
	noKey, _ := codec.Marshal(shielding.GetterRequest{Getter: signed, ReplyKey: []byte("short")})
	noKeyCT, err := shielding.Encrypt(d.pub, shielding.InfoGetter, noKey)
	if err != nil {
		t.Fatal(err)
	}
	asCall, err := shielding.Encrypt(d.pub, shielding.InfoTrustedCall, noKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string][]byte{"garbage": bytes.Repeat([]byte{1}, 1300), "bad reply key": noKeyCT, "trusted call info": asCall} {
		t.Run(name, func(t *testing.T) {
			if _, err := d.h.c.Call(ctx, &protocol.PrivateGetter{Request: req}); !errors.Is(err, protocol.ErrInvalidInput) {
				t.Fatalf("error %v", err)
			}
		})
	}

	// An answer opens only for its own request.
	req1, rk1, err := shielding.NewGetterRequest(d.pub, signed)
	if err != nil {
		t.Fatal(err)
	}
	req2, _, err := shielding.NewGetterRequest(d.pub, signed)
	if err != nil {
		t.Fatal(err)
	}
	rep2, err := protocol.CallAs[*protocol.PrivateGetterReply](ctx, d.h.c, &protocol.PrivateGetter{Request: req2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rk1.Open(req1, rep2.Response); !errors.Is(err, shielding.ErrGetterReply) {
		t.Fatalf("another request's answer: %v", err)
	}
	if _, err := rk1.Open(req2, rep2.Response); !errors.Is(err, shielding.ErrGetterReply) {
		t.Fatalf("another key's answer: %v", err)
	}
}

// TestPrivateGetterHidesAnswer: the host's traffic never holds the
// answer's plaintext, though a plaintext dev getter would show it.
func TestPrivateGetterHidesAnswer(t *testing.T) {
	d := newDirect(t, "hidden answer v1")
	const amount = 0x1122334455667
	sudo := key("shard sudo")
	set := d.call(sudo, stf.Call{SetBalance: &stf.SetBalance{Who: addr(d.bobI), Amount: amount}}, 0)
	if rep := d.submit(set); rep.Results[0].Status != protocol.CallExecuted {
		t.Fatalf("set_balance %+v", rep.Results[0])
	}
	plain, _ := codec.Marshal(uint64(amount))
	d.h.traffic.Reset()
	if got := d.balance(d.bobI); got != amount {
		t.Fatalf("bob %d", got)
	}
	if bytes.Contains(d.traffic(), plain) {
		t.Fatal("the host saw the getter's answer")
	}
	// Control: the dev plaintext getter shows it, so the check can fail.
	b := addr(d.bobI)
	signed, err := stf.SignGetter(d.bobI, mustGetter(t, stf.Getter{FreeBalance: &b}), d.shard, d.shard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.h.c.Call(context.Background(), &protocol.ExecuteGetter{Getter: signed}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(d.traffic(), plain) {
		t.Fatal("control: plaintext getter not seen in the traffic")
	}
}

func (d *direct) traffic() []byte {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	return bytes.Clone(d.h.traffic.Bytes())
}

func mustGetter(t testing.TB, g stf.Getter) []byte {
	t.Helper()
	b, err := stf.EncodeGetter(g)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSubmitCallsRejections(t *testing.T) {
	ctx := context.Background()
	c := newDirectChain(t)
	h := newHost(t, sha256Of("early"))
	h.boot(c)
	ct := bytes.Repeat([]byte{1}, 100)
	if _, err := h.c.Call(ctx, &protocol.SubmitCalls{Calls: [][]byte{ct}}); !errors.Is(err, protocol.ErrNotInitialized) {
		t.Fatalf("before the first block: %v", err)
	}
	c.block()
	c.block()
	if _, err := h.process(c, 1); err != nil {
		t.Fatal(err)
	}
	for name, calls := range map[string][][]byte{
		"empty":    nil,
		"too many": make([][]byte, protocol.MaxSubmitCalls+1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := h.c.Call(ctx, &protocol.SubmitCalls{Calls: calls}); !errors.Is(err, protocol.ErrInvalidInput) {
				t.Fatalf("error %v", err)
			}
		})
	}
	h2 := newHost(t, sha256Of("not ready"))
	h2.start()
	if _, err := h2.c.Call(ctx, &protocol.PrivateGetter{Request: ct}); !errors.Is(err, protocol.ErrNotInitialized) {
		t.Fatalf("getter before init: %v", err)
	}
}

// BenchmarkSubmitCalls measures one round trip of 100 direct transfers:
// decryption, verification, execution, the shard block and its
// checkpoint.
func BenchmarkSubmitCalls(b *testing.B) {
	d := newDirect(b, "bench direct")
	sudo := key("shard sudo")
	const batch = 100
	d.submit(d.call(sudo, stf.Call{SetBalance: &stf.SetBalance{Who: addr(d.aliceI), Amount: 1 << 40}}, 0))
	nonce := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		calls := make([][]byte, batch)
		for i := range calls {
			calls[i] = d.transfer(d.aliceI, d.bobI, 1, nonce)
			nonce++
		}
		b.StartTimer()
		rep := d.submit(calls...)
		if rep.Results[batch-1].Status != protocol.CallExecuted {
			b.Fatalf("%+v", rep.Results[batch-1])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/call")
}
