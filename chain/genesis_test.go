package chain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/smt"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// probe is a module whose one call records what the runtime context shows
// it: the genesis ID and the hashes of the blocks it asks for.
type probe struct{ seen []probeView }

type probeView struct {
	height  int64
	genesis [32]byte
	hashes  map[int64][]byte // absent: not known
}

type probeArgs struct {
	Heights []int64 `cbor:"heights"`
}

func (*probe) Name() string { return "probe" }

func (*probe) DecodeCall(call tx.Call) (runtime.Msg, error) {
	var a probeArgs
	if err := call.DecodeArgs(&a); err != nil {
		return nil, fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
	}
	return &a, nil
}

func (p *probe) Execute(ctx *runtime.Context, msg runtime.Msg) error {
	v := probeView{height: ctx.Height, genesis: ctx.Genesis, hashes: map[int64][]byte{}}
	for _, h := range msg.(*probeArgs).Heights {
		b, ok, err := ctx.BlockHash(h)
		if err != nil {
			return err
		}
		if ok {
			v.hashes[h] = b
		}
	}
	p.seen = append(p.seen, v)
	return nil
}

func (*probe) QueryKey([]string) ([]byte, error) { return nil, fmt.Errorf("no queries") }

func newProbeApp(t *testing.T, db dbm.DB) (*chain.App, *probe) {
	t.Helper()
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	p := &probe{}
	a, err := chain.New(chain.Options{ChainID: chainID, Store: st, Modules: []runtime.Module{p}})
	if err != nil {
		t.Fatal(err)
	}
	return a, p
}

func probeTx(t *testing.T, nonce uint64, heights ...int64) []byte {
	t.Helper()
	call, err := tx.NewCall("probe", "look", probeArgs{Heights: heights})
	if err != nil {
		t.Fatal(err)
	}
	stx, err := tx.Sign(tx.Body{ChainID: chainID, Sender: accounts.DevAddress("Alice"), Nonce: nonce, Fee: accounts.Unit / 100, Call: call}, accounts.DevKey("Alice"))
	if err != nil {
		t.Fatal(err)
	}
	wire, err := stx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

func devState(t *testing.T) []byte {
	t.Helper()
	acc, err := json.Marshal(accounts.DevGenesis())
	if err != nil {
		t.Fatal(err)
	}
	state, err := json.Marshal(chain.AppState{Dev: true, Modules: map[string]json.RawMessage{accounts.Name: acc}})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// The app computes the genesis ID from the chain ID, initial height and
// genesis validators, commits it with genesis, proves it at /app/genesis
// and shows it to modules, also after a restart. A genesis without
// validators, or with an invalid set, is refused.
func TestGenesisID(t *testing.T) {
	db := dbm.NewMemDB()
	a, p := newProbeApp(t, db)
	ctx := context.Background()
	state := devState(t)
	dup, _ := moduletest.Validators("genesis test", 1)
	for _, tc := range []struct {
		name string
		vals []abci.ValidatorUpdate
		want string
	}{
		{"no validators", nil, "no validators"},
		{"duplicate validator", append(dup, dup...), "duplicate"},
	} {
		_, err := a.InitChain(ctx, &abci.RequestInitChain{ChainId: chainID, InitialHeight: 1, AppStateBytes: state, Validators: tc.vals})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: InitChain gave %v, want an error about %q", tc.name, err, tc.want)
		}
	}

	vals, valsHash := moduletest.Validators("genesis test", 3)
	if _, err := a.InitChain(ctx, &abci.RequestInitChain{ChainId: chainID, InitialHeight: 1, AppStateBytes: state, Validators: vals}); err != nil {
		t.Fatal(err)
	}
	want := [32]byte(teerex.GenesisID(chainID, 1, valsHash))
	res := finalizeAndCommit(t, a, 1, probeTx(t, 0))
	if res.TxResults[0].Code != 0 {
		t.Fatal(res.TxResults[0].Log)
	}

	q, err := a.Query(ctx, &abci.RequestQuery{Path: "/app/genesis", Prove: true})
	if err != nil || q.Code != 0 {
		t.Fatalf("query: %v %s", err, q.Log)
	}
	if !bytes.Equal(q.Value, want[:]) || !bytes.Equal(q.Key, runtime.GenesisKey()) {
		t.Fatalf("/app/genesis = %X (key %q), want %X", q.Value, q.Key, want)
	}
	proof, err := smt.ProofFromOps(q.ProofOps, q.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.Verify(res.AppHash, q.Key, q.Value); err != nil {
		t.Fatalf("proof: %v", err)
	}
	for _, path := range []string{"/app", "/app/nosuch", "/app/genesis/x"} {
		if q, err := a.Query(ctx, &abci.RequestQuery{Path: path}); err != nil || q.Code != types.ErrBadQuery.Code {
			t.Errorf("%s: %v %d %q, want bad query", path, err, q.Code, q.Log)
		}
	}

	// A restarted node loads the ID from the state.
	a2, p2 := newProbeApp(t, db)
	finalizeAndCommit(t, a2, 2, probeTx(t, 1))
	for i, v := range append(p.seen, p2.seen...) {
		if v.genesis != want {
			t.Fatalf("call %d at height %d saw genesis %X, want %X", i, v.height, v.genesis, want)
		}
	}
	if len(p.seen)+len(p2.seen) != 2 {
		t.Fatalf("probe ran %d times, want 2", len(p.seen)+len(p2.seen))
	}

	// Another initial height or validator set is another chain.
	other, otherHash := moduletest.Validators("other validators", 3)
	for _, tc := range []struct {
		initial int64
		vals    []abci.ValidatorUpdate
		hash    []byte
	}{
		{1, other, otherHash},
		{5, vals, valsHash},
	} {
		b, _ := newProbeApp(t, dbm.NewMemDB())
		if _, err := b.InitChain(ctx, &abci.RequestInitChain{ChainId: chainID, InitialHeight: tc.initial, AppStateBytes: state, Validators: tc.vals}); err != nil {
			t.Fatal(err)
		}
		finalizeAndCommit(t, b, tc.initial)
		q, err := b.Query(ctx, &abci.RequestQuery{Path: "/app/genesis"})
		if err != nil || q.Code != 0 {
			t.Fatalf("query: %v %s", err, q.Log)
		}
		id := teerex.GenesisID(chainID, tc.initial, tc.hash)
		if !bytes.Equal(q.Value, id[:]) || bytes.Equal(q.Value, want[:]) {
			t.Fatalf("initial height %d: genesis ID %X, want %X (not %X)", tc.initial, q.Value, id, want)
		}
	}
}

// Each block's hash is recorded with it; a module sees the hashes of the
// blocks before the current one, never the current one's, in CheckTx as in
// FinalizeBlock. A block without a hash is refused.
func TestBlockHashes(t *testing.T) {
	a, p := newProbeApp(t, dbm.NewMemDB())
	vals, _ := moduletest.Validators("block hash test", 1)
	ctx := context.Background()
	if _, err := a.InitChain(ctx, &abci.RequestInitChain{ChainId: chainID, InitialHeight: 1, AppStateBytes: devState(t), Validators: vals, Time: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: 1}); err == nil {
		t.Fatal("block without a hash finalized")
	}
	for h := int64(1); h <= 3; h++ {
		finalizeAndCommit(t, a, h)
	}
	look := []int64{0, 1, 2, 3, 4, 5}
	if res, err := a.CheckTx(ctx, &abci.RequestCheckTx{Tx: probeTx(t, 0, look...)}); err != nil || res.Code != 0 {
		t.Fatalf("check tx: %v %+v", err, res)
	}
	finalizeAndCommit(t, a, 4, probeTx(t, 0, look...))
	if len(p.seen) != 2 {
		t.Fatalf("probe ran %d times, want 2", len(p.seen))
	}
	for _, v := range p.seen {
		if v.height != 4 {
			t.Fatalf("probe at height %d, want 4", v.height)
		}
		for _, h := range look {
			got, ok := v.hashes[h]
			switch {
			case h >= 1 && h <= 3 && !bytes.Equal(got, moduletest.BlockHash(h)):
				t.Errorf("block %d: hash %X, want %X", h, got, moduletest.BlockHash(h))
			case (h < 1 || h > 3) && ok:
				t.Errorf("block %d: hash %X known at height 4", h, got)
			}
		}
	}
}

// The state keeps the hashes of the last runtime.BlockHashWindow blocks:
// the block that leaves the window is deleted by the one that enters it.
func TestBlockHashWindowPrunes(t *testing.T) {
	const w = runtime.BlockHashWindow
	db := dbm.NewMemDB()
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	// A chain at height w that recorded (at least) blocks 1 and 2.
	changes := []store.Change{
		{Key: runtime.GenesisKey(), Value: bytes.Repeat([]byte{7}, 32)},
		{Key: runtime.BlockHashKey(1), Value: moduletest.BlockHash(1)},
		{Key: runtime.BlockHashKey(2), Value: moduletest.BlockHash(2)},
		{Key: runtime.BlockHashKey(w), Value: moduletest.BlockHash(w)},
	}
	pend, err := st.Prepare(w, changes)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(pend); err != nil {
		t.Fatal(err)
	}
	a, err := chain.New(chain.Options{ChainID: chainID, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	finalizeAndCommit(t, a, w+1)
	for _, tc := range []struct {
		h    int64
		want []byte
	}{
		{1, nil}, // left the window
		{2, moduletest.BlockHash(2)},
		{w, moduletest.BlockHash(w)},
		{w + 1, moduletest.BlockHash(w + 1)},
	} {
		got, err := st.Get(runtime.BlockHashKey(tc.h))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("block %d: stored %X, want %X", tc.h, got, tc.want)
		}
	}
}

// A state past genesis without a genesis ID (written by an older version)
// is refused rather than run with a zero ID.
func TestNewRefusesStateWithoutGenesisID(t *testing.T) {
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	pend, err := st.Prepare(1, []store.Change{{Key: []byte("accounts/x"), Value: []byte{1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(pend); err != nil {
		t.Fatal(err)
	}
	if _, err := chain.New(chain.Options{ChainID: chainID, Store: st}); err == nil || !strings.Contains(err.Error(), "genesis ID") {
		t.Fatalf("New on a state without genesis ID: %v", err)
	}
}
