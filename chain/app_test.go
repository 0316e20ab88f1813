package chain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/smt"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

const chainID = "test-chain"

// newApp returns an app after InitChain with the dev genesis, on db.
func newApp(t *testing.T, db dbm.DB) *chain.App {
	t.Helper()
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	app, err := chain.New(chain.Options{ChainID: chainID, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func initChain(t *testing.T, app *chain.App) {
	t.Helper()
	acc, err := json.Marshal(accounts.DevGenesis())
	if err != nil {
		t.Fatal(err)
	}
	state, err := json.Marshal(chain.AppState{Dev: true, Modules: map[string]json.RawMessage{accounts.Name: acc}})
	if err != nil {
		t.Fatal(err)
	}
	vals, _ := moduletest.Validators("app test", 1)
	if _, err := app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, InitialHeight: 1, AppStateBytes: state, Time: time.Unix(0, 0), Validators: vals}); err != nil {
		t.Fatal(err)
	}
}

func signedTransfer(t *testing.T, from string, nonce uint64, to tx.Address, amount uint64) []byte {
	t.Helper()
	call, err := accounts.TransferCall(to, amount)
	if err != nil {
		t.Fatal(err)
	}
	body := tx.Body{ChainID: chainID, Sender: accounts.DevAddress(from), Nonce: nonce, Fee: 10 * accounts.DevBaseFee, Call: call}
	stx, err := tx.Sign(body, accounts.DevKey(from))
	if err != nil {
		t.Fatal(err)
	}
	wire, err := stx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

func account(t *testing.T, app *chain.App, a tx.Address) accounts.Account {
	t.Helper()
	res, err := app.Query(context.Background(), &abci.RequestQuery{Path: "/accounts/" + a.String()})
	if err != nil || res.Code != 0 {
		t.Fatalf("query: %v %s", err, res.Log)
	}
	var acc accounts.Account
	if res.Value != nil {
		if err := codec.Unmarshal(res.Value, &acc); err != nil {
			t.Fatal(err)
		}
	}
	return acc
}

func finalizeAndCommit(t *testing.T, app *chain.App, height int64, txs ...[]byte) *abci.ResponseFinalizeBlock {
	t.Helper()
	res, err := app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: height, Hash: moduletest.BlockHash(height), Txs: txs, Time: time.Unix(height, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestFinalizeBlockFeePolicy drives the app as a (faulty) proposer would:
// a transaction that fails validation in the block changes nothing, one
// whose call fails pays its fee and consumes its nonce.
func TestFinalizeBlockFeePolicy(t *testing.T) {
	app := newApp(t, dbm.NewMemDB())
	initChain(t, app)
	bob := accounts.DevAddress("Bob")
	// Block 1: Alice sends almost everything to Bob, then (nonce 1) more than
	// what is left: the second call fails in execution.
	first := signedTransfer(t, "Alice", 0, bob, accounts.DevBalance-20*accounts.DevBaseFee)
	second := signedTransfer(t, "Alice", 1, bob, 5*accounts.DevBaseFee)
	stale := signedTransfer(t, "Alice", 0, bob, 1) // fails validation: nonce already used
	res := finalizeAndCommit(t, app, 1, first, second, stale)

	codes := []uint32{res.TxResults[0].Code, res.TxResults[1].Code, res.TxResults[2].Code}
	if codes[0] != 0 || codes[1] != accounts.ErrInsufficientFunds.Code || res.TxResults[1].Codespace != accounts.Name ||
		codes[2] != types.ErrStaleNonce.Code || res.TxResults[2].Codespace != types.CodespaceApp {
		t.Fatalf("codes %v (%s / %s)", codes, res.TxResults[1].Log, res.TxResults[2].Log)
	}
	fee := uint64(10 * accounts.DevBaseFee)
	alice := account(t, app, accounts.DevAddress("Alice"))
	if want := (accounts.Account{Balance: 20*accounts.DevBaseFee - 2*fee, Nonce: 2}); alice != want {
		t.Fatalf("Alice %+v, want %+v", alice, want)
	}
	if got := account(t, app, accounts.FeeCollectorAddress()).Balance; got != 2*fee {
		t.Fatalf("collector %d, want %d", got, 2*fee)
	}
	if got := account(t, app, bob).Balance; got != 2*accounts.DevBalance-20*accounts.DevBaseFee {
		t.Fatalf("Bob %d", got)
	}
	// The failed call's result carries the fee events only.
	for _, ev := range res.TxResults[1].Events {
		if ev.Type == accounts.EventTransfer {
			t.Fatal("failed transfer emitted a transfer event")
		}
	}
	if len(res.TxResults[2].Events) != 0 {
		t.Fatal("rejected tx emitted events")
	}

	// A block of only invalid transactions gives the app hash of an empty
	// block (which differs from the last one only by the recorded block
	// hash), computed on a second app with the same history.
	badSig := bytes.Clone(signedTransfer(t, "Bob", 0, bob, 1))
	stx, _ := tx.Decode(badSig)
	stx.Signature[3] ^= 0x40
	badSig, _ = stx.Encode()
	res2 := finalizeAndCommit(t, app, 2, badSig, stale, []byte{0xa0})
	twin := newApp(t, dbm.NewMemDB())
	initChain(t, twin)
	finalizeAndCommit(t, twin, 1, first, second, stale)
	if empty := finalizeAndCommit(t, twin, 2); !bytes.Equal(res2.AppHash, empty.AppHash) {
		t.Fatal("invalid transactions changed the state")
	}
	for i, r := range res2.TxResults {
		if r.Code == 0 {
			t.Fatalf("invalid tx %d accepted", i)
		}
	}
}

func TestProposalHandling(t *testing.T) {
	app := newApp(t, dbm.NewMemDB())
	initChain(t, app)
	bob := accounts.DevAddress("Bob")
	good := signedTransfer(t, "Alice", 0, bob, 1)
	gap := signedTransfer(t, "Alice", 5, bob, 1)
	ctx := context.Background()

	prep, err := app.PrepareProposal(ctx, &abci.RequestPrepareProposal{Height: 1, Txs: [][]byte{good, gap, []byte("junk")}, MaxTxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(prep.Txs) != 1 || !bytes.Equal(prep.Txs[0], good) {
		t.Fatalf("prepared %d txs, want only the valid one", len(prep.Txs))
	}
	for _, tc := range []struct {
		txs  [][]byte
		want abci.ResponseProcessProposal_ProposalStatus
	}{
		{[][]byte{good}, abci.ResponseProcessProposal_ACCEPT},
		{[][]byte{good, gap}, abci.ResponseProcessProposal_ACCEPT}, // stateful: left to FinalizeBlock
		{[][]byte{good, []byte("junk")}, abci.ResponseProcessProposal_REJECT},
	} {
		res, err := app.ProcessProposal(ctx, &abci.RequestProcessProposal{Height: 1, Txs: tc.txs})
		if err != nil || res.Status != tc.want {
			t.Fatalf("process %d txs: %v %v, want %v", len(tc.txs), res.Status, err, tc.want)
		}
	}
	// PrepareProposal must not have touched the state the block starts from.
	if got := account(t, app, accounts.DevAddress("Alice")); got.Nonce != 0 {
		t.Fatalf("prepare changed state: %+v", got)
	}
}

func TestCheckTxSequencesNonces(t *testing.T) {
	app := newApp(t, dbm.NewMemDB())
	initChain(t, app)
	bob := accounts.DevAddress("Bob")
	ctx := context.Background()
	for i, tc := range []struct {
		wire []byte
		want *types.Error
	}{
		{signedTransfer(t, "Alice", 0, bob, 1), nil},
		{signedTransfer(t, "Alice", 1, bob, 1), nil}, // admitted on top of the pending one
		{signedTransfer(t, "Alice", 1, bob, 2), types.ErrStaleNonce},
		{signedTransfer(t, "Alice", 3, bob, 1), types.ErrFutureNonce},
	} {
		res, err := app.CheckTx(ctx, &abci.RequestCheckTx{Tx: tc.wire})
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == nil && res.Code != 0 || tc.want != nil && (res.Code != tc.want.Code || res.Codespace != tc.want.Codespace) {
			t.Fatalf("tx %d: code %s/%d %q", i, res.Codespace, res.Code, res.Log)
		}
	}
}

func TestStateSurvivesReopen(t *testing.T) {
	db := dbm.NewMemDB()
	app := newApp(t, db)
	initChain(t, app)
	res := finalizeAndCommit(t, app, 1, signedTransfer(t, "Alice", 0, accounts.DevAddress("Bob"), 42))
	info, err := newApp(t, db).Info(context.Background(), &abci.RequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if info.LastBlockHeight != 1 || !bytes.Equal(info.LastBlockAppHash, res.AppHash) {
		t.Fatalf("info after reopen: %d %X, want 1 %X", info.LastBlockHeight, info.LastBlockAppHash, res.AppHash)
	}
	fresh, err := newApp(t, dbm.NewMemDB()).Info(context.Background(), &abci.RequestInfo{})
	if err != nil || fresh.LastBlockHeight != 0 || fresh.LastBlockAppHash != nil {
		t.Fatalf("fresh info: %+v %v", fresh, err)
	}
}

func TestQueryErrors(t *testing.T) {
	app := newApp(t, dbm.NewMemDB())
	initChain(t, app)
	finalizeAndCommit(t, app, 1)
	for _, tc := range []struct {
		path   string
		height int64
		want   *types.Error
	}{
		{"/nosuch/x", 0, types.ErrBadQuery},
		{"/accounts/zz", 0, types.ErrBadQuery},
		{"/accounts", 0, types.ErrBadQuery},
		{"/accounts/params", 7, types.ErrHeightUnavailable},
	} {
		res, err := app.Query(context.Background(), &abci.RequestQuery{Path: tc.path, Height: tc.height})
		if err != nil || res.Code != tc.want.Code || res.Codespace != tc.want.Codespace {
			t.Errorf("%s: %v %s/%d %q", tc.path, err, res.Codespace, res.Code, res.Log)
		}
	}
	res, err := app.Query(context.Background(), &abci.RequestQuery{Path: "/accounts/params", Prove: true})
	if err != nil || res.Code != 0 {
		t.Fatal(err, res.Log)
	}
	p, err := smt.ProofFromOps(res.ProofOps, res.Key)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := app.Info(context.Background(), &abci.RequestInfo{})
	if err := p.Verify(info.LastBlockAppHash, res.Key, res.Value); err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(info.LastBlockAppHash, res.Key, nil); !errors.Is(err, smt.ErrInvalidProof) {
		t.Fatal("absence of params verified")
	}
}

// failingDB fails every read once fail is set, as a closed database does.
type failingDB struct {
	dbm.DB
	fail bool
}

func (d *failingDB) Get(key []byte) ([]byte, error) {
	if d.fail {
		return nil, errors.New("leveldb: closed")
	}
	return d.DB.Get(key)
}

// A store failure in CheckTx is the node's, not the transaction's: the
// transaction is refused with the internal code, and CheckTx returns no
// error, which CometBFT's mempool recheck would turn into a panic.
func TestCheckTxStoreFailureIsInternalCode(t *testing.T) {
	db := &failingDB{DB: dbm.NewMemDB()}
	app := newApp(t, db)
	initChain(t, app)
	finalizeAndCommit(t, app, 1)
	db.fail = true
	res, err := app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: signedTransfer(t, "Charlie", 0, accounts.DevAddress("Bob"), 1)})
	if err != nil {
		t.Fatalf("CheckTx returned an error: %v", err)
	}
	if res.Code != types.ErrInternal.Code || res.Codespace != types.ErrInternal.Codespace {
		t.Fatalf("CheckTx = %s/%d %q, want the internal code", res.Codespace, res.Code, res.Log)
	}
}

// A rejection's log says what failed once: the app's classification and a
// lower layer's error of the same meaning used to repeat ("malformed
// transaction: malformed transaction: …", "bad signature: bad signature").
func TestRejectionMessages(t *testing.T) {
	app := newApp(t, dbm.NewMemDB())
	initChain(t, app)
	bob := accounts.DevAddress("Bob")
	resign := func(f func(*tx.SignedTx)) []byte {
		t.Helper()
		stx, err := tx.Decode(signedTransfer(t, "Alice", 0, bob, 1))
		if err != nil {
			t.Fatal(err)
		}
		f(stx)
		wire, err := stx.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return wire
	}
	badSig := resign(func(s *tx.SignedTx) { s.Signature[0] ^= 1 })
	shortSig := resign(func(s *tx.SignedTx) { s.Signature = s.Signature[:3] })
	badArgs := resign(func(s *tx.SignedTx) {
		s.Body.Call.Args = []byte{0x61, 'x'} // CBOR "x", not a transfer
		signed, err := tx.Sign(s.Body, accounts.DevKey("Alice"))
		if err != nil {
			t.Fatal(err)
		}
		*s = *signed
	})
	for _, tc := range []struct {
		name   string
		wire   []byte
		want   *types.Error
		log    string // exact, or the prefix of a log ending in a decoder's words
		prefix bool
	}{
		{"not CBOR", []byte{0xff}, types.ErrTxMalformed, "malformed transaction: ", true},
		{"too large", make([]byte, tx.MaxTxBytes+1), types.ErrTxTooLarge, "transaction too large: 131073 bytes, limit 131072", false},
		{"bad signature", badSig, types.ErrBadSignature, "bad signature", false},
		{"short signature", shortSig, types.ErrBadSignature, "bad signature: signature has 3 bytes", false},
		{"bad arguments", badArgs, types.ErrMalformedCall, "malformed call: accounts.transfer args: ", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: tc.wire})
			if err != nil {
				t.Fatal(err)
			}
			if res.Codespace != tc.want.Codespace || res.Code != tc.want.Code {
				t.Fatalf("code %s/%d %q, want %s/%d", res.Codespace, res.Code, res.Log, tc.want.Codespace, tc.want.Code)
			}
			if tc.prefix && !strings.HasPrefix(res.Log, tc.log) || !tc.prefix && res.Log != tc.log {
				t.Fatalf("log %q, want %q", res.Log, tc.log)
			}
			parts := strings.Split(res.Log, ": ")
			for i := 1; i < len(parts); i++ {
				if parts[i] == parts[i-1] || strings.HasPrefix(parts[i], tc.want.Msg) {
					t.Fatalf("log %q repeats %q", res.Log, parts[i])
				}
			}
		})
	}
}

// TestSignatureVerifiedOnce: a node checks a transaction's signature once
// (it remembers the hashes of transactions that verified), which must
// never let through other bytes: the same body under a forged signature,
// or a refused transaction sent again, is refused every time, in CheckTx
// and in a block.
func TestSignatureVerifiedOnce(t *testing.T) {
	app := newApp(t, dbm.NewMemDB())
	initChain(t, app)
	ctx := context.Background()
	bob := accounts.DevAddress("Bob")
	good := signedTransfer(t, "Alice", 0, bob, 1)
	stx, err := tx.Decode(good)
	if err != nil {
		t.Fatal(err)
	}
	stx.Signature[5] ^= 0x40
	forged, err := stx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	check := func(wire []byte, want *types.Error) {
		t.Helper()
		res, err := app.CheckTx(ctx, &abci.RequestCheckTx{Tx: wire})
		if err != nil {
			t.Fatal(err)
		}
		if want == nil && res.Code != 0 || want != nil && (res.Code != want.Code || res.Codespace != want.Codespace) {
			t.Fatalf("CheckTx: %s/%d %s, want %v", res.Codespace, res.Code, res.Log, want)
		}
	}
	check(forged, types.ErrBadSignature)
	check(good, nil)
	for range 2 {
		check(forged, types.ErrBadSignature) // after the good one verified, and again
	}
	res := finalizeAndCommit(t, app, 1, forged, good, forged)
	for i, want := range []uint32{types.ErrBadSignature.Code, 0, types.ErrBadSignature.Code} {
		if r := res.TxResults[i]; r.Code != want {
			t.Fatalf("block tx %d: %s/%d %s, want code %d", i, r.Codespace, r.Code, r.Log, want)
		}
	}
	if got := account(t, app, bob).Balance; got != accounts.DevBalance+1 {
		t.Fatalf("Bob has %d, want %d", got, accounts.DevBalance+1)
	}
}
