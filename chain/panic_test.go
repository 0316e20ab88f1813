package chain_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// panicky is a module with a bug that a transaction reaches: method
// "decode" panics in DecodeCall, "execute" writes a key and then panics in
// Execute, "write" just writes the key. Its EndBlock writes a key per
// block and panics at heights in panicAt.
type panicky struct{ panicAt map[int64]bool }

func (*panicky) Name() string { return "panicky" }

func (*panicky) DecodeCall(call tx.Call) (runtime.Msg, error) {
	switch call.Method {
	case "decode":
		var s []int
		_ = s[len(call.Method)] // index out of range, as a parser bug would
	case "execute", "write":
		return call.Method, nil
	}
	return nil, fmt.Errorf("%w: %s", types.ErrUnknownCall, call.Method)
}

func (*panicky) Execute(ctx *runtime.Context, msg runtime.Msg) error {
	ctx.Store.Set(fmt.Appendf(nil, "panicky/%s", ctx.Sender), []byte{1})
	ctx.Emit("panicky.wrote", "sender", ctx.Sender.String())
	if msg == "execute" {
		var counts []int
		counts[len(ctx.ChainID)]++ // index out of range, as a module bug would
	}
	return nil
}

func (p *panicky) EndBlock(ctx *runtime.Context) error {
	ctx.Store.Set(fmt.Appendf(nil, "panicky/block/%d", ctx.Height), []byte{1})
	ctx.Emit("panicky.end_block")
	if p.panicAt[ctx.Height] {
		panic(errors.New("end block bug"))
	}
	return nil
}

func (*panicky) QueryKey(path []string) ([]byte, error) {
	return []byte("panicky/" + strings.Join(path, "/")), nil
}

func panickyApp(t *testing.T, log io.Writer, panicAt ...int64) *chain.App {
	t.Helper()
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	p := &panicky{panicAt: map[int64]bool{}}
	for _, h := range panicAt {
		p.panicAt[h] = true
	}
	app, err := chain.New(chain.Options{ChainID: chainID, Store: st, Modules: []runtime.Module{p},
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	initChain(t, app)
	return app
}

func signedCall(t *testing.T, from string, nonce uint64, module, method string) []byte {
	t.Helper()
	call, err := tx.NewCall(module, method, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	stx, err := tx.Sign(tx.Body{ChainID: chainID, Sender: accounts.DevAddress(from), Nonce: nonce, Fee: 10 * accounts.DevBaseFee, Call: call}, accounts.DevKey(from))
	if err != nil {
		t.Fatal(err)
	}
	wire, err := stx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

func written(t *testing.T, app *chain.App, key string) bool {
	t.Helper()
	res, err := app.Query(context.Background(), &abci.RequestQuery{Path: "/panicky/" + key})
	if err != nil || res.Code != 0 {
		t.Fatalf("query %s: %v %s", key, err, res.GetLog())
	}
	return len(res.Value) > 0
}

func wantPanicCode(t *testing.T, what, space string, code uint32, log string) {
	t.Helper()
	if space != types.ErrPanic.Codespace || code != types.ErrPanic.Code {
		t.Fatalf("%s: %s/%d %q, want ErrPanic", what, space, code, log)
	}
}

// A transaction that makes module code panic fails with ErrPanic in
// CheckTx and in the block, the same for every validator; the block
// commits, the other transactions are unaffected and nothing the panicking
// one wrote stays, its fee and nonce included. Before the recovery, the
// panic escaped CheckTx and FinalizeBlock (halting the node) and this test
// crashed.
func TestTransactionPanicIsRecovered(t *testing.T) {
	var log bytes.Buffer
	app := panickyApp(t, &log)
	ctx := context.Background()
	bob, charlie := accounts.DevAddress("Bob"), accounts.DevAddress("Charlie")
	for _, method := range []string{"decode", "execute"} {
		res, err := app.CheckTx(ctx, &abci.RequestCheckTx{Tx: signedCall(t, "Charlie", 0, "panicky", method)})
		if err != nil {
			t.Fatalf("CheckTx %s: %v", method, err)
		}
		wantPanicCode(t, "CheckTx "+method, res.Codespace, res.Code, res.Log)
	}
	// A faulty proposer includes them anyway; a proposal whose transaction
	// cannot even be decoded is rejected, as one with junk would be.
	decodePanic := signedCall(t, "Charlie", 0, "panicky", "decode")
	pp, err := app.ProcessProposal(ctx, &abci.RequestProcessProposal{Height: 1, Txs: [][]byte{decodePanic}})
	if err != nil || pp.Status != abci.ResponseProcessProposal_REJECT {
		t.Fatalf("ProcessProposal: %v %v, want REJECT", pp.GetStatus(), err)
	}
	prep, err := app.PrepareProposal(ctx, &abci.RequestPrepareProposal{Height: 1, MaxTxBytes: 1 << 20,
		Txs: [][]byte{signedCall(t, "Charlie", 0, "panicky", "execute"), signedCall(t, "Bob", 0, "panicky", "write")}})
	if err != nil || len(prep.Txs) != 1 {
		t.Fatalf("PrepareProposal kept %d txs (%v), want only the one that does not panic", len(prep.GetTxs()), err)
	}

	collector := account(t, app, accounts.FeeCollectorAddress()).Balance
	res, err := app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: 1, Hash: moduletest.BlockHash(1), Time: time.Unix(1, 0), Txs: [][]byte{
		signedTransfer(t, "Alice", 0, bob, 7),
		signedCall(t, "Charlie", 0, "panicky", "execute"),
		decodePanic,
		signedCall(t, "Bob", 0, "panicky", "write"),
		signedTransfer(t, "Alice", 1, bob, 8),
	}})
	if err != nil {
		t.Fatalf("FinalizeBlock: %v", err)
	}
	if _, err := app.Commit(ctx, &abci.RequestCommit{}); err != nil {
		t.Fatal(err)
	}
	for i, r := range res.TxResults {
		switch i {
		case 1, 2:
			wantPanicCode(t, fmt.Sprintf("tx %d", i), r.Codespace, r.Code, r.Log)
			if len(r.Events) != 0 {
				t.Fatalf("tx %d: dropped transaction has events %v", i, r.Events)
			}
		default:
			if r.Code != 0 {
				t.Fatalf("tx %d: %s/%d %q", i, r.Codespace, r.Code, r.Log)
			}
		}
	}
	if got := account(t, app, charlie); got != (accounts.Account{Balance: accounts.DevBalance}) {
		t.Fatalf("Charlie paid for the panicking transactions: %+v", got)
	}
	if got := account(t, app, bob); got.Balance != accounts.DevBalance+15-10*accounts.DevBaseFee || got.Nonce != 1 {
		t.Fatalf("Bob %+v", got)
	}
	if got := account(t, app, accounts.FeeCollectorAddress()).Balance; got != collector+3*10*accounts.DevBaseFee {
		t.Fatalf("fee collector got %d, want the fees of the three good transactions", got-collector)
	}
	if written(t, app, charlie.String()) {
		t.Fatal("the panicking transaction's write was kept")
	}
	if !written(t, app, bob.String()) {
		t.Fatal("the good module call's write is missing")
	}
	if n := strings.Count(log.String(), "transaction panicked"); n < 3 {
		t.Fatalf("%d panics logged, want one per panicking CheckTx and delivery", n)
	}
	// Charlie's nonce 0 is still unused.
	if res, _ := app.CheckTx(ctx, &abci.RequestCheckTx{Tx: signedTransfer(t, "Charlie", 0, bob, 1)}); res.Code != 0 {
		t.Fatalf("Charlie's nonce was consumed: %s", res.Log)
	}
}

// A panic in a module's EndBlock drops that module's writes and events of
// the block; the block commits, its transactions stay, and the next block
// runs the hook again. Before the recovery, FinalizeBlock panicked.
func TestEndBlockPanicIsRecovered(t *testing.T) {
	var log bytes.Buffer
	app := panickyApp(t, &log, 2)
	res1 := finalizeAndCommit(t, app, 1)
	res2 := finalizeAndCommit(t, app, 2, signedTransfer(t, "Alice", 0, accounts.DevAddress("Bob"), 1))
	res3 := finalizeAndCommit(t, app, 3)
	if res2.TxResults[0].Code != 0 {
		t.Fatalf("transfer: %s", res2.TxResults[0].Log)
	}
	if got := account(t, app, accounts.DevAddress("Alice")).Nonce; got != 1 {
		t.Fatalf("the block's transfer was dropped: Alice's nonce %d", got)
	}
	if !strings.Contains(log.String(), "end block panicked") {
		t.Fatal("the end block panic was not logged")
	}
	for h, want := range map[int64]bool{1: true, 2: false, 3: true} {
		if got := written(t, app, fmt.Sprintf("block/%d", h)); got != want {
			t.Errorf("end block write of height %d kept: %v, want %v", h, got, want)
		}
	}
	for i, n := range []int{len(res1.Events), len(res2.Events), len(res3.Events)} {
		if want := map[int]int{0: 1, 1: 0, 2: 1}[i]; n != want {
			t.Errorf("block %d: %d end block events, want %d", i+1, n, want)
		}
	}
}
