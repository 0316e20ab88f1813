package enclave_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
)

// newDirectChain is newChainSim with the sidechain module, so that the
// enclave's confirm_sidechain_block runs against the real chain.
func newDirectChain(t testing.TB) *chainSim {
	t.Helper()
	return newChainSimSeed(t, "direct validators")
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
	// persisted shard blocks, by number; base is the number of the last
	// block of the setup (its shield is a chain block).
	blocks map[uint64]sidechain.SignedHeader
	base   uint64
	// flushed counts the host's outgoing calls already put on chain.
	flushed int
}

func newDirect(t testing.TB, name string) *direct {
	t.Helper()
	return newDirectBuild(t, name, false)
}

// newDevDirect is newDirect with a dev build of the enclave, for tests of
// dev features (set_balance).
func newDevDirect(t testing.TB, name string) *direct {
	t.Helper()
	return newDirectBuild(t, name, true)
}

func newDirectBuild(t testing.TB, name string, dev bool) *direct {
	t.Helper()
	return newDirectWith(t, name, func(h *host) { h.dev = dev })
}

// newDirectWith is newDirect with setup applied to the host before the
// enclave's first start.
func newDirectWith(t testing.TB, name string, setup func(*host)) *direct {
	t.Helper()
	c := newDirectChain(t)
	shard := sha256Of(name)
	h := newHost(t, shard)
	setup(h)
	init := h.boot(c)
	d := &direct{
		t: t, c: c, h: h, shard: shard, pub: init.ShieldingPublic, enclave: tx.AddressOf(ed25519.PublicKey(init.SignerPublic)),
		aliceI: key("alice incognito"), bobI: key("bob incognito"), blocks: map[uint64]sidechain.SignedHeader{},
	}
	h.signer = d.enclave
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
	c.block(c.tx(alice, bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: types.Hash(shard), Amount: 1000, EncryptedRecipient: recipient}))
	c.block()
	d.sync()
	d.base = uint64(len(d.blocks))
	return d
}

// catchUp processes the chain's blocks after d.processed until one fails,
// and returns that error (nil once all are applied).
func (d *direct) catchUp() error {
	var err error
	for d.processed+1 < d.c.tc.Height() && err == nil {
		_, err = d.h.process(d.c, d.processed+1)
		d.processed++
	}
	return err
}

// wantRolledBack fails t unless err is the enclave stopping for good on a
// confirmation its state does not hold.
func wantRolledBack(t testing.TB, err error, what string) {
	t.Helper()
	if !errors.Is(err, protocol.ErrState) || !strings.Contains(err.Error(), "provision this worker again") {
		t.Fatalf("%s: %v", what, err)
	}
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
		rep, err := d.h.process(d.c, d.processed+1)
		if err != nil {
			d.t.Fatalf("block %d: %v", d.processed+1, err)
		}
		if rep.Block != nil {
			d.blocks[rep.Block.Header.Number] = *rep.Block
		}
		d.processed++
	}
}

// target is what calls and getters for d's enclave are signed for.
func (d *direct) target() stf.Target { return d.c.target(d.shard, d.shard) }

func (d *direct) call(k ed25519.PrivateKey, call stf.Call, nonce uint64) []byte {
	d.t.Helper()
	ct, err := shielding.Encrypt(d.pub, shielding.InfoTrustedCall, trustedCall(d.t, k, call, nonce, d.target()))
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
	return protocol.CallAs[*protocol.SubmitCallsReply](context.Background(), d.h.c, &protocol.SubmitCalls{Calls: calls, Timestamp: 1})
}

func (d *direct) persist(rep *protocol.SubmitCallsReply) {
	if rep.Block == nil {
		return
	}
	d.h.persist(&protocol.ProcessBlockReply{Height: d.h.height, Changes: rep.Changes, Checkpoint: rep.Checkpoint, Outgoing: rep.Outgoing})
	d.blocks[rep.Block.Header.Number] = *rep.Block
}

// chainTime is the time of the last block the enclave verified: what it
// judges getter expiries by.
func (d *direct) chainTime() time.Time { return d.c.tc.Block(d.processed).Header.Time }

// signGetter signs g of signer for d's enclave, expiring at expires and
// for reply key rk (nil: a plaintext answer).
func (d *direct) signGetter(signer ed25519.PrivateKey, g stf.Getter, expires time.Time, rk *shielding.ReplyKey) []byte {
	d.t.Helper()
	var pub []byte
	if rk != nil {
		pub = rk.Public()
	}
	signed, err := stf.SignGetter(signer, mustGetter(d.t, g), expires, pub, d.target())
	if err != nil {
		d.t.Fatal(err)
	}
	return signed
}

// newReplyKey returns a fresh reply key.
func newReplyKey(t testing.TB) *shielding.ReplyKey {
	t.Helper()
	rk, err := shielding.NewReplyKey()
	if err != nil {
		t.Fatal(err)
	}
	return rk
}

// request wraps a signed getter with reply key rk for the enclave.
func (d *direct) request(signed []byte, rk *shielding.ReplyKey) []byte {
	d.t.Helper()
	req, err := shielding.NewGetterRequest(d.pub, rk, signed)
	if err != nil {
		d.t.Fatal(err)
	}
	return req
}

// ask sends a private getter request and opens the answer with rk.
func (d *direct) ask(req []byte, rk *shielding.ReplyKey) (*shielding.GetterResponse, error) {
	d.t.Helper()
	rep, err := protocol.CallAs[*protocol.PrivateGetterReply](context.Background(), d.h.c, &protocol.PrivateGetter{Request: req})
	if err != nil {
		return nil, err
	}
	return rk.Open(req, rep.Response)
}

// getter runs a private getter of signer, as a client does: a fresh reply
// key, an expiry a minute after the chain's time.
func (d *direct) getter(signer ed25519.PrivateKey, g stf.Getter) (*shielding.GetterResponse, error) {
	d.t.Helper()
	rk := newReplyKey(d.t)
	return d.ask(d.request(d.signGetter(signer, g, d.chainTime().Add(time.Minute), rk), rk), rk)
}

func (d *direct) balance(k ed25519.PrivateKey) uint64 {
	d.t.Helper()
	return privateBalance(d.t, d.c, d.h, d.pub, k)
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
	if hd.Number != number || hd.Author != d.enclave || hd.Shard != types.Hash(d.shard) || hd.ChainHeight != d.processed {
		d.t.Fatalf("header %+v", hd)
	}
	var parent types.Hash
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
	if hd.StateHash != types.Hash(rep.StateRoot) || rep.StateRoot != d.h.root() {
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
	first := rep.Outgoing[0]
	want, err := sidechain.ConfirmCall(hd)
	if err != nil {
		d.t.Fatal(err)
	}
	if first.Call.Method != want.Method || !bytes.Equal(first.Call.Args, want.Args) {
		d.t.Fatalf("first outgoing %s.%s is not the block's confirmation", first.Call.Module, first.Call.Method)
	}
	_ = hash
}

func TestSubmitCalls(t *testing.T) {
	d := newDirect(t, "direct enclave v1")
	aliceI, bobI := d.aliceI, d.bobI
	other := sha256Of("another shard")
	otherShardCall, err := shielding.Encrypt(d.pub, shielding.InfoTrustedCall,
		trustedCall(t, aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(bobI), Amount: 1}}, 2, d.c.target(d.shard, other)))
	if err != nil {
		t.Fatal(err)
	}
	otherChain := d.target()
	otherChain.Genesis = teerex.GenesisID(chainID+"-fork", 1, d.c.tc.Vals.Hash())
	otherChainCall, err := shielding.Encrypt(d.pub, shielding.InfoTrustedCall,
		trustedCall(t, aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(bobI), Amount: 1}}, 2, otherChain))
	if err != nil {
		t.Fatal(err)
	}
	// Eve signs a transfer from Alice's account, claiming to be Alice.
	forged, err := stf.SignCall(key("eve"), mustEncode(t, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(key("eve")), Amount: 1}}), 2, d.target())
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
	wrongInfo, err := shielding.Encrypt(d.pub, shielding.InfoShieldRecipient, trustedCall(t, aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(bobI), Amount: 1}}, 2, d.target()))
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
		otherChainCall,
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
	d.checkBlock(rep, d.base+1, calls)
	if got := d.balance(bobI); got != 300 {
		t.Fatalf("bob %d", got)
	}
	if got := d.balance(aliceI); got != 700 {
		t.Fatalf("alice %d", got)
	}

	// Next batch: block 2 chains to block 1.
	second := [][]byte{d.transfer(bobI, aliceI, 50, 0)}
	d.checkBlock(d.submit(second...), d.base+2, second)

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
	d.checkBlock(d.submit(third...), d.base+3, third)

	// The confirmations the enclave signed are accepted by the chain, in
	// order; the latest is block 3's header hash.
	d.chainOK(d.c.block(d.signedConfirmations()...), "confirm_sidechain_block")
	var latest sidechain.Confirmation
	q, err := d.c.app.Query(context.Background(), &abci.RequestQuery{Path: "/sidechain/shard/" + types.Hash(d.shard).String()})
	if err != nil || q.Code != 0 {
		t.Fatalf("query %v %+v", err, q)
	}
	if err := codec.Unmarshal(q.Value, &latest); err != nil {
		t.Fatal(err)
	}
	b3 := d.blocks[d.base+3]
	h3, _ := b3.Header.Hash()
	if latest.Number != d.base+3 || latest.HeaderHash != h3 || latest.Enclave != d.enclave {
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
	checkSignedFees(d.t, signed.Txs, accounts.Params{BaseFee: accounts.DevBaseFee, PerByteFee: accounts.DevPerByteFee})
	return signed.Txs
}

// checkSignedFees checks what the enclave signed: each transaction
// verifies and declares exactly the smallest fee its own encoded size
// requires (the fee is settled before the one signature).
func checkSignedFees(t testing.TB, txs [][]byte, p accounts.Params) {
	t.Helper()
	for i, raw := range txs {
		stx, err := tx.Decode(raw)
		if err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
		if err := stx.Verify(); err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
		if want := p.MinFee(len(raw)); stx.Body.Fee != want {
			t.Fatalf("tx %d of %d bytes declares fee %d, the smallest is %d", i, len(raw), stx.Body.Fee, want)
		}
	}
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
	d.checkBlock(d.submit(first), d.base+1, [][]byte{first})

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
	d.checkBlock(rep, d.base+2, [][]byte{first, lost})
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
	d.checkBlock(d.submit(next), d.base+3, [][]byte{next})
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
	signed := d.signGetter(d.aliceI, stf.Getter{FreeBalance: &a}, d.chainTime().Add(time.Minute), nil)
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
	rk1, rk2 := newReplyKey(t), newReplyKey(t)
	req1 := d.request(d.signGetter(d.aliceI, stf.Getter{FreeBalance: &a}, d.chainTime().Add(time.Minute), rk1), rk1)
	req2 := d.request(d.signGetter(d.aliceI, stf.Getter{FreeBalance: &a}, d.chainTime().Add(time.Minute), rk2), rk2)
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

// TestGetterReplay: what whoever holds a signed getter (a replaying host,
// or anyone it leaked to) can do with it. It is answered until its expiry
// passes the chain's time, only if that expiry is near, and only to the
// reply key it was signed for.
func TestGetterReplay(t *testing.T) {
	d := newDirect(t, "getter replay v1")
	a := addr(d.aliceI)
	refused := func(t *testing.T, resp *shielding.GetterResponse, err error, want error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(resp.Error, want.Error()) || resp.Value != nil {
			t.Fatalf("answer %+v, want refusal %q", resp, want)
		}
	}

	// A good getter is answered, and again while it has not expired.
	rk := newReplyKey(t)
	soon := d.request(d.signGetter(d.aliceI, stf.Getter{FreeBalance: &a}, d.chainTime().Add(1500*time.Millisecond), rk), rk)
	for range 2 {
		if resp, err := d.ask(soon, rk); err != nil || resp.Error != "" || !bytes.Equal(resp.Value, mustUint(t, 1000)) {
			t.Fatalf("good getter: %+v %v", resp, err)
		}
	}
	// Two more verified blocks (a second each) and it has expired: the
	// replayed request is refused.
	d.c.block()
	d.c.block()
	d.sync()
	resp, err := d.ask(soon, rk)
	refused(t, resp, err, stf.ErrGetterExpired)

	// Signed to expire far ahead: refused, so no signed getter outlives
	// MaxGetterLifetime.
	rk = newReplyKey(t)
	far := d.signGetter(d.aliceI, stf.Getter{FreeBalance: &a}, d.chainTime().Add(stf.MaxGetterLifetime+time.Millisecond), rk)
	resp, err = d.ask(d.request(far, rk), rk)
	refused(t, resp, err, stf.ErrGetterExpiryTooFar)

	// Wrapped again with the replayer's own reply key: the replayer can
	// open the answer, which is only the refusal.
	signed := d.signGetter(d.aliceI, stf.Getter{FreeBalance: &a}, d.chainTime().Add(time.Minute), newReplyKey(t))
	mine := newReplyKey(t)
	resp, err = d.ask(d.request(signed, mine), mine)
	refused(t, resp, err, stf.ErrGetterReplyKey)

	// Signed for a plaintext answer (the dev path), asked privately.
	plain := d.signGetter(d.aliceI, stf.Getter{FreeBalance: &a}, d.chainTime().Add(time.Minute), nil)
	resp, err = d.ask(d.request(plain, mine), mine)
	refused(t, resp, err, stf.ErrGetterReplyKey)
}

func mustUint(t testing.TB, v uint64) []byte {
	t.Helper()
	b, err := codec.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPrivateGetterHidesAnswer: the host's traffic never holds the
// answer's plaintext, though a plaintext dev getter would show it.
func TestPrivateGetterHidesAnswer(t *testing.T) {
	d := newDevDirect(t, "hidden answer v1")
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
	signed := d.signGetter(d.bobI, stf.Getter{FreeBalance: &b}, d.chainTime().Add(time.Minute), nil)
	if _, err := d.h.c.Call(context.Background(), &protocol.ExecuteGetter{Getter: signed}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(d.traffic(), plain) {
		t.Fatal("control: plaintext getter not seen in the traffic")
	}
}

// TestPlaintextGetter: the dev-only plaintext getter follows the rules of
// private ones, and never answers a getter signed for a private answer
// (the host would read it).
func TestPlaintextGetter(t *testing.T) {
	d := newDevDirect(t, "plaintext getter v1") // plaintext getters exist in dev builds only
	a := addr(d.aliceI)
	for _, tc := range []struct {
		name    string
		expires time.Time
		rk      *shielding.ReplyKey
		want    error
	}{
		{"good", d.chainTime().Add(time.Minute), nil, nil},
		{"signed for a reply key", d.chainTime().Add(time.Minute), newReplyKey(t), stf.ErrGetterReplyKey},
		{"expired", d.chainTime().Add(-time.Millisecond), nil, stf.ErrGetterExpired},
		{"expiry too far ahead", d.chainTime().Add(stf.MaxGetterLifetime + time.Millisecond), nil, stf.ErrGetterExpiryTooFar},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signed := d.signGetter(d.aliceI, stf.Getter{FreeBalance: &a}, tc.expires, tc.rk)
			rep, err := protocol.CallAs[*protocol.GetterReply](context.Background(), d.h.c, &protocol.ExecuteGetter{Getter: signed})
			if tc.want == nil {
				if err != nil || !bytes.Equal(rep.Value, mustUint(t, 1000)) {
					t.Fatalf("answer %+v %v", rep, err)
				}
				return
			}
			if !errors.Is(err, protocol.ErrInvalidInput) || !strings.Contains(err.Error(), tc.want.Error()) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
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

// TestGetterBeforeTheFirstBlock: without a verified block the enclave has
// no time to judge an expiry by, and refuses getters (it never asks the
// host's clock).
func TestGetterBeforeTheFirstBlock(t *testing.T) {
	c := newDirectChain(t)
	h := newHost(t, sha256Of("getter before the first block"))
	init := h.boot(c)
	a := addr(key("alice incognito"))
	rk := newReplyKey(t)
	signed, err := stf.SignGetter(key("alice incognito"), mustGetter(t, stf.Getter{FreeBalance: &a}), c.tc.Start.Add(time.Minute), rk.Public(), h.target())
	if err != nil {
		t.Fatal(err)
	}
	req, err := shielding.NewGetterRequest(init.ShieldingPublic, rk, signed)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := protocol.CallAs[*protocol.PrivateGetterReply](context.Background(), h.c, &protocol.PrivateGetter{Request: req})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rk.Open(req, rep.Response)
	if err != nil || resp.Error != stf.ErrNoChainTime.Error() || resp.Value != nil {
		t.Fatalf("answer %+v %v, want %q", resp, err, stf.ErrNoChainTime)
	}
}

// BenchmarkSubmitCalls measures one round trip of 100 direct transfers:
// decryption, verification, execution, the shard block and its
// checkpoint.
func BenchmarkSubmitCalls(b *testing.B) {
	d := newDevDirect(b, "bench direct")
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

// flush signs every outgoing call persisted since the last flush, in
// order (as the host's outbox does), puts them in a chain block and
// returns their results.
func (d *direct) flush() []*abci.ExecTxResult {
	d.t.Helper()
	calls := d.h.outgoing[d.flushed:]
	d.flushed = len(d.h.outgoing)
	if len(calls) == 0 {
		return nil
	}
	p := d.params()
	p.Nonce = d.accountNonce()
	signed, err := protocol.CallAs[*protocol.SignedTxs](context.Background(), d.h.c, &protocol.SignOutgoing{Calls: calls, Params: p})
	if err != nil {
		d.t.Fatal(err)
	}
	return d.c.block(signed.Txs...)
}

// hostState is what a worker host persists: an old copy of it is what a
// malicious host restores.
type hostState struct {
	checkpoint []byte
	entries    map[[32]byte][]byte
	height     int64
	outgoing   []protocol.Outgoing
}

func (h *host) snapshot() hostState {
	return hostState{checkpoint: h.checkpoint, entries: maps.Clone(h.entries), height: h.height, outgoing: slices.Clone(h.outgoing)}
}

func (h *host) restore(s hostState) {
	h.checkpoint, h.entries, h.height, h.outgoing = s.checkpoint, maps.Clone(s.entries), s.height, slices.Clone(s.outgoing)
}

// TestAttackRollbackDoubleUnshield is attack 3 of issue 8. Before, a host
// copied worker.db, had the enclave unshield X through a direct call (the
// chain paid on the enclave's word), restored the copy and had it unshield
// X again to another beneficiary: a new call hash, so the chain paid
// again. Now an unshield pays only with a proof into a shard block the
// chain confirmed as the next of the shard's one chain: the restored
// enclave's block has a number the chain confirmed already, with another
// hash, so its confirmation is refused (ErrForkedBlock) and its unshield
// too (ErrUnshieldProof); and once the enclave's light client shows it the
// confirmation it does not hold, it stops (ErrRolledBack).
func TestAttackRollbackDoubleUnshield(t *testing.T) {
	d := newDirect(t, "rollback double unshield")
	d.chainOK(d.flush(), "setup's outgoing calls")
	vault := bridge.VaultAddress(types.Hash(d.shard))
	vaultBefore := d.c.balance(vault)
	charlie, dave := accounts.DevAddress("Charlie"), accounts.DevAddress("Dave")
	charlieBefore, daveBefore := d.c.balance(charlie), d.c.balance(dave)
	unshield := func(to tx.Address) []byte {
		return d.call(d.aliceI, stf.Call{Unshield: &stf.UnshieldTo{From: addr(d.aliceI), Beneficiary: to, Amount: 600}}, 0)
	}

	old := d.h.snapshot()
	if rep := d.submit(unshield(charlie)); rep.Results[0].Status != protocol.CallExecuted {
		t.Fatalf("unshield to charlie %+v", rep.Results[0])
	}
	d.chainOK(d.flush(), "confirmation and unshield")
	if got := d.c.balance(charlie) - charlieBefore; got != 600 {
		t.Fatalf("charlie received %d, want 600", got)
	}

	// The host restores the old copy and restarts the enclave from it.
	d.h.restore(old)
	d.flushed = len(d.h.outgoing)
	d.h.boot(d.c)
	if got := d.balance(d.aliceI); got != 1000 {
		t.Fatalf("the restored state has alice at %d, want 1000", got)
	}
	if rep := d.submit(unshield(dave)); rep.Results[0].Status != protocol.CallExecuted {
		t.Fatalf("the rolled-back enclave refused the unshield: %+v", rep.Results[0])
	}
	res := d.flush()
	if len(res) != 2 {
		t.Fatalf("%d results, want the confirmation and the unshield", len(res))
	}
	for i, want := range []*types.Error{sidechain.ErrForkedBlock, bridge.ErrUnshieldProof} {
		if res[i].Codespace != want.Codespace || res[i].Code != want.Code {
			t.Fatalf("tx %d: %s/%d %q, want %s/%d (%s)", i, res[i].Codespace, res[i].Code, res[i].Log, want.Codespace, want.Code, want.Msg)
		}
	}
	if got := d.c.balance(dave) - daveBefore; got != 0 {
		t.Fatalf("dave received %d from the rolled-back enclave", got)
	}
	if got := vaultBefore - d.c.balance(vault); got != 600 {
		t.Fatalf("the vault paid %d, want 600 once", got)
	}

	// The enclave then sees the chain's confirmation of the block it no
	// longer holds, and stops for good.
	d.c.block()
	wantRolledBack(t, d.catchUp(), "a rolled-back enclave seeing the confirmed chain")
	if _, err := d.submitOnly(d.transfer(d.aliceI, d.bobI, 1, 1)); !errors.Is(err, protocol.ErrInternal) {
		t.Fatalf("a stopped enclave took a call: %v", err)
	}
}

// TestAttackTwoWorkersDirectAndIndirect is attack 4 of issue 8. Before,
// only the host checked that a shard with several workers takes no direct
// calls: the operator of one worker let its enclave execute a direct
// unshield of Alice's funds while the honest worker applied Alice's
// indirect unshield of the same funds, and both were paid. Now the chain
// confirms a shard block only with the votes of a majority of the shard's
// enclaves: the rogue direct block has one vote of the two it needs, so
// its unshield never pays (ErrBlockNotConfirmed); the honest worker's
// block at the same number has the other vote, so it waits too, and the
// vault pays nothing. A rogue host of one of two workers stalls the shard;
// it cannot make it pay twice, nor stop the honest enclave with its vote.
func TestAttackTwoWorkersDirectAndIndirect(t *testing.T) {
	ctx := context.Background()
	d := newDirect(t, "two workers, direct and indirect")
	d.chainOK(d.flush(), "setup's outgoing calls")
	// Worker A (d) serves provisioning; worker B joins the shard.
	d.h.peers = simPeers(d.h.backend)
	d.h.boot(d.c)
	b := provisioned(t, d.c, d.shard, d.h)
	reg, err := protocol.CallAs[*protocol.SignedTxs](ctx, b.c, &protocol.SignRegistration{Params: d.params0(tx.Address{}), WorkerURL: "ws://127.0.0.1:2001"})
	if err != nil {
		t.Fatal(err)
	}
	regTx, err := tx.Decode(reg.Txs[0])
	if err != nil {
		t.Fatal(err)
	}
	bSigner := regTx.Body.Sender
	d.c.block(d.c.tx(accounts.DevKey("Alice"), accounts.Name, accounts.MethodTransfer, accounts.Transfer{To: bSigner, Amount: 10 * accounts.Unit}))
	d.chainOK(d.c.block(reg.Txs...), "register worker B")
	d.c.block()
	d.sync()
	for b.height+1 < d.c.tc.Height() {
		if _, err := b.process(d.c, b.height+1); err != nil {
			t.Fatalf("worker B block %d: %v", b.height+1, err)
		}
	}
	vault := bridge.VaultAddress(types.Hash(d.shard))
	vaultBefore := d.c.balance(vault)
	charlie, dave := accounts.DevAddress("Charlie"), accounts.DevAddress("Dave")
	charlieBefore, daveBefore := d.c.balance(charlie), d.c.balance(dave)

	d.chainOK(d.flush(), "worker A's confirmations")
	// A's host lets its enclave take a direct unshield of all of Alice's
	// funds to Charlie.
	direct := d.call(d.aliceI, stf.Call{Unshield: &stf.UnshieldTo{From: addr(d.aliceI), Beneficiary: charlie, Amount: 1000}}, 0)
	if rep := d.submit(direct); rep.Results[0].Status != protocol.CallExecuted {
		t.Fatalf("direct unshield %+v", rep.Results[0])
	}
	got := d.flush()
	// A's vote for its direct block is taken as a vote, not a
	// confirmation: the shard's two enclaves must both vote for a block.
	if got[0].Code != 0 || len(got[0].Data) != 0 {
		t.Fatalf("A's vote: %s/%d %q data %q, want a vote that confirms nothing", got[0].Codespace, got[0].Code, got[0].Log, got[0].Data)
	}
	if got[1].Codespace != bridge.ErrBlockNotConfirmed.Codespace || got[1].Code != bridge.ErrBlockNotConfirmed.Code {
		t.Fatalf("A's unshield: %s/%d %q, want %s", got[1].Codespace, got[1].Code, got[1].Log, bridge.ErrBlockNotConfirmed.Msg)
	}
	// Meanwhile Alice unshields the same funds to Dave through the chain;
	// the honest worker B applies it. B sees A's vote on chain and goes
	// on: a vote is not a confirmation (only sidechain.ResultConfirmed in
	// a verified result is).
	indirect := trustedCall(t, d.aliceI, stf.Call{Unshield: &stf.UnshieldTo{From: addr(d.aliceI), Beneficiary: dave, Amount: 1000}}, 0, d.target())
	d.c.block(invoke(t, d.c, accounts.DevKey("Bob"), d.pub, d.shard, indirect))
	d.c.block()
	first := len(b.outgoing)
	for b.height+1 < d.c.tc.Height() {
		if _, err := b.process(d.c, b.height+1); err != nil {
			t.Fatalf("worker B block %d: %v", b.height+1, err)
		}
	}
	p := d.params0(bSigner)
	signed, err := protocol.CallAs[*protocol.SignedTxs](ctx, b.c, &protocol.SignOutgoing{Calls: b.outgoing[first:], Params: p})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range d.c.block(signed.Txs...) {
		if r.Code != 0 && r.Codespace != bridge.Name { // a stale processed-block confirmation may fail
			t.Fatalf("worker B tx %d: %s/%d %s", i, r.Codespace, r.Code, r.Log)
		}
	}
	// B's block at that number differs from A's: each has one of the two
	// votes it needs, neither is confirmed, and nothing pays. A rogue host
	// of one of two workers can stall the shard (docs/sidechain.md), never
	// make it pay twice.
	if got := d.c.balance(dave) - daveBefore; got != 0 {
		t.Fatalf("dave received %d while the shard's block is not confirmed", got)
	}
	if got := d.c.balance(charlie) - charlieBefore; got != 0 {
		t.Fatalf("charlie received %d through the direct unshield", got)
	}
	if got := vaultBefore - d.c.balance(vault); got != 0 {
		t.Fatalf("the vault paid %d, want 0", got)
	}
	// And B still serves: its state holds the indirect unshield.
	if bal := privateBalance(t, d.c, b, d.pub, d.aliceI); bal != 0 {
		t.Fatalf("worker B: alice %d, want 0 after the unshield", bal)
	}
}

// params0 are the transaction parameters of account a at its current
// nonce.
func (d *direct) params0(a tx.Address) protocol.TxParams {
	d.t.Helper()
	q, err := d.c.app.Query(context.Background(), &abci.RequestQuery{Path: "/accounts/" + a.String()})
	if err != nil {
		d.t.Fatal(err)
	}
	var acc accounts.Account
	if q.Code == 0 && len(q.Value) > 0 {
		if err := codec.Unmarshal(q.Value, &acc); err != nil {
			d.t.Fatal(err)
		}
	}
	return protocol.TxParams{ChainID: chainID, Nonce: acc.Nonce, BaseFee: accounts.DevBaseFee, PerByteFee: accounts.DevPerByteFee}
}
