package chain_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/tee/sim"
)

// The populated state the fuzz target runs against: a dev chain with the
// node's runtime where Dave and Eve are registered enclaves of shard
// fuzzShard, Bob shielded funds, Dave confirmed a chain block and a shard
// block that unshields to Ferdie, and Ferdie was paid.
const fuzzChainID = "fuzz-chain"

var (
	fuzzT0     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fuzzShard  = types.Hash(sha256.Sum256([]byte("fuzz enclave release")))
	fuzzNames  = []string{"Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"}
	fuzzUnpaid = sidechain.Unshield{Beneficiary: accounts.DevAddress("Ferdie"), Amount: 7, CallHash: types.Hash{2}}
)

type fuzzState struct {
	entries [][2][]byte // the database, key and value
	height  int64
	time    time.Time
	genesis types.Hash
	nonces  map[tx.Address]uint64
}

var (
	fuzzOnce     sync.Once
	fuzzSnapshot *fuzzState
	fuzzErr      error
)

// populated builds the state once per process.
func populated(tb testing.TB) *fuzzState {
	tb.Helper()
	fuzzOnce.Do(func() { fuzzSnapshot, fuzzErr = buildFuzzState() })
	if fuzzErr != nil {
		tb.Fatal(fuzzErr)
	}
	return fuzzSnapshot
}

func fuzzApp(db dbm.DB) (*chain.App, error) {
	st, err := store.Open(db)
	if err != nil {
		return nil, err
	}
	return chain.New(chain.Options{ChainID: fuzzChainID, Store: st, Modules: node.Modules()})
}

func buildFuzzState() (*fuzzState, error) {
	db := dbm.NewMemDB()
	app, err := fuzzApp(db)
	if err != nil {
		return nil, err
	}
	ag, err := json.Marshal(accounts.DevGenesis())
	if err != nil {
		return nil, err
	}
	tg, err := devnet.TeerexGenesis(fuzzT0)
	if err != nil {
		return nil, err
	}
	tgj, err := json.Marshal(tg)
	if err != nil {
		return nil, err
	}
	appState, err := json.Marshal(chain.AppState{Dev: true, Modules: map[string]json.RawMessage{accounts.Name: ag, teerex.Name: tgj}})
	if err != nil {
		return nil, err
	}
	vals, valsHash := moduletest.Validators("fuzz", 1)
	ctx := context.Background()
	if _, err := app.InitChain(ctx, &abci.RequestInitChain{ChainId: fuzzChainID, Time: fuzzT0, InitialHeight: 1, AppStateBytes: appState, Validators: vals}); err != nil {
		return nil, err
	}
	s := &fuzzState{genesis: teerex.GenesisID(fuzzChainID, 1, valsHash), nonces: map[tx.Address]uint64{}}
	call := func(name, module, method string, args any) []byte {
		c, err := tx.NewCall(module, method, args)
		if err != nil {
			panic(err)
		}
		return s.sign(name, c)
	}
	register := func(name string) []byte {
		args, err := fuzzRegistration(name, s.genesis)
		if err != nil {
			panic(err)
		}
		return call(name, teerex.Name, teerex.MethodRegisterEnclave, args)
	}
	root, proofs := sidechain.UnshieldsRoot([]sidechain.Unshield{
		{Beneficiary: accounts.DevAddress("Ferdie"), Amount: 100, CallHash: types.Hash{1}}, fuzzUnpaid})
	confirm, err := sidechain.ConfirmCall(sidechain.Header{Shard: fuzzShard, Number: 1, ChainHeight: 1, UnshieldsRoot: root})
	if err != nil {
		return nil, err
	}
	unshield, err := sidechain.UnshieldCall(fuzzShard, 1, sidechain.Unshield{Beneficiary: accounts.DevAddress("Ferdie"), Amount: 100, CallHash: types.Hash{1}}, proofs[0])
	if err != nil {
		return nil, err
	}
	for _, txs := range [][][]byte{
		{register("Dave"), register("Eve"),
			call("Bob", bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: fuzzShard, Amount: 1000, EncryptedRecipient: []byte("r")})},
		{call("Dave", bridge.Name, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: fuzzShard, Height: 1, BlockHash: types.Hash(moduletest.BlockHash(1))}),
			s.sign("Dave", confirm), s.sign("Eve", confirm)}, // both vote: block 1 is confirmed
		{s.sign("Dave", unshield)},
	} {
		s.height++
		s.time = fuzzT0.Add(time.Duration(s.height) * time.Second)
		res, err := app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: s.height, Hash: moduletest.BlockHash(s.height), Time: s.time, Txs: txs})
		if err != nil {
			return nil, err
		}
		for i, r := range res.TxResults {
			if r.Code != 0 {
				return nil, fmt.Errorf("populating block %d tx %d: %s/%d %s", s.height, i, r.Codespace, r.Code, r.Log)
			}
		}
		if _, err := app.Commit(ctx, &abci.RequestCommit{}); err != nil {
			return nil, err
		}
	}
	it, err := db.Iterator(nil, nil)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for ; it.Valid(); it.Next() {
		s.entries = append(s.entries, [2][]byte{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
	}
	return s, it.Error()
}

// fuzzRegistration is a genuine registration of dev account name as an
// enclave of fuzzShard on the chain of genesis ID g.
func fuzzRegistration(name string, g types.Hash) (teerex.RegisterEnclave, error) {
	m := [32]byte(fuzzShard)
	b, err := sim.New(sim.Config{Measurement: &m})
	if err != nil {
		return teerex.RegisterEnclave{}, err
	}
	key := []byte("shielding key of " + name)
	q, err := b.Quote(teerex.ReportData(accounts.DevAddress(name), key, g))
	if err != nil {
		return teerex.RegisterEnclave{}, err
	}
	return teerex.RegisterEnclave{Attestation: teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}, ShieldingKey: key, WorkerURL: "wss://w:1"}, nil
}

// sign signs call from dev account name with its next nonce and a fee
// above the minimum.
func (s *fuzzState) sign(name string, call tx.Call) []byte {
	a := accounts.DevAddress(name)
	body := tx.Body{ChainID: fuzzChainID, Sender: a, Nonce: s.nonces[a], Fee: accounts.Unit / 100, Call: call}
	s.nonces[a]++
	stx, err := tx.Sign(body, accounts.DevKey(name))
	if err != nil {
		panic(err)
	}
	raw, err := stx.Encode()
	if err != nil {
		panic(err)
	}
	return raw
}

// replica is a fresh application on a copy of the populated state, as a
// restarted validator has it.
func (s *fuzzState) replica(t *testing.T) *chain.App {
	t.Helper()
	db := dbm.NewMemDB()
	for _, e := range s.entries {
		if err := db.Set(e[0], e[1]); err != nil {
			t.Fatal(err)
		}
	}
	app, err := fuzzApp(db)
	if err != nil {
		t.Fatal(err)
	}
	app.RestoreLastBlockTime(s.time)
	return app
}

// signedFuzzCall is the call a fuzz input asks for, signed by one of the
// dev accounts with its next nonce: the way into the modules' execution,
// which random wire bytes would hardly reach past the signature.
func (s *fuzzState) signedFuzzCall(signer byte, module, method string, args []byte) []byte {
	name := fuzzNames[int(signer)%len(fuzzNames)]
	a := accounts.DevAddress(name)
	body := tx.Body{ChainID: fuzzChainID, Sender: a, Nonce: s.nonces[a], Fee: accounts.Unit / 100,
		Call: tx.Call{Module: module, Method: method, Args: args}}
	stx, err := tx.Sign(body, accounts.DevKey(name))
	if err != nil {
		// Args that are no CBOR item cannot be signed: send them as they
		// are, for the decoder.
		return args
	}
	raw, err := stx.Encode()
	if err != nil {
		return args
	}
	return raw
}

// outcome is what a replica made of a fuzz input: comparable across
// replicas.
type outcome struct {
	check   []uint32
	results []uint32
	appHash []byte
}

func (s *fuzzState) run(t *testing.T, txs [][]byte) outcome {
	t.Helper()
	app := s.replica(t)
	ctx := context.Background()
	var o outcome
	for _, raw := range txs {
		res, err := app.CheckTx(ctx, &abci.RequestCheckTx{Tx: raw})
		if err != nil {
			t.Fatalf("CheckTx returned an error: %v", err)
		}
		if res.Codespace == types.CodespaceApp && (res.Code == types.ErrInternal.Code || res.Code == types.ErrPanic.Code) {
			t.Fatalf("CheckTx: %s/%d %s", res.Codespace, res.Code, res.Log)
		}
		o.check = append(o.check, res.Code)
	}
	h := s.height + 1
	res, err := app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: h, Hash: moduletest.BlockHash(h), Time: s.time.Add(time.Second), Txs: txs})
	if err != nil {
		t.Fatalf("FinalizeBlock returned an error: %v", err)
	}
	for i, r := range res.TxResults {
		if r.Codespace == types.CodespaceApp && r.Code == types.ErrPanic.Code {
			t.Fatalf("tx %d panicked: %s", i, r.Log)
		}
		o.results = append(o.results, r.Code)
	}
	if _, err := app.Commit(ctx, &abci.RequestCommit{}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	o.appHash = res.AppHash
	return o
}

// FuzzTx sends whole transactions to a node's application on a populated
// state: wire bytes as they come, and a call the input names, signed by a
// dev account (Dave and Eve are enclaves, Alice is sudo). CheckTx and
// FinalizeBlock must never return an error or panic, no transaction may
// make module code panic (ErrPanic) or fail internally, and two
// validators must reach the same results and app hash.
func FuzzTx(f *testing.F) {
	s := populated(f)
	f.Fuzz(func(t *testing.T, wire []byte, signer byte, module, method string, args []byte) {
		txs := [][]byte{wire, s.signedFuzzCall(signer, module, method, args)}
		a, b := s.run(t, txs), s.run(t, txs)
		if fmt.Sprint(a.check, a.results) != fmt.Sprint(b.check, b.results) || !bytes.Equal(a.appHash, b.appHash) {
			t.Fatalf("replicas disagree: %v %v %X, %v %v %X", a.check, a.results, a.appHash, b.check, b.results, b.appHash)
		}
	})
}

// TestWriteFuzzTxSeeds writes FuzzTx's seed corpus to testdata/fuzz/FuzzTx
// when INTEGRITEE_WRITE_FUZZ_SEEDS is set: one call of every kind, valid
// on the populated state or nearly so, and some malformed transactions.
func TestWriteFuzzTxSeeds(t *testing.T) {
	if os.Getenv("INTEGRITEE_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set INTEGRITEE_WRITE_FUZZ_SEEDS=1 to rewrite the seeds")
	}
	s := populated(t)
	args := func(v any) []byte {
		b, err := tx.NewCall("", "", v)
		if err != nil {
			t.Fatal(err)
		}
		return b.Args
	}
	reg, err := fuzzRegistration("Charlie", s.genesis)
	if err != nil {
		t.Fatal(err)
	}
	root, proofs := sidechain.UnshieldsRoot([]sidechain.Unshield{
		{Beneficiary: accounts.DevAddress("Ferdie"), Amount: 100, CallHash: types.Hash{1}}, fuzzUnpaid})
	unpaid, err := sidechain.UnshieldCall(fuzzShard, 1, fuzzUnpaid, proofs[1])
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := sidechain.ConfirmCall(sidechain.Header{Shard: fuzzShard, Number: 1, ChainHeight: 1, UnshieldsRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	var prev sidechain.ConfirmSidechainBlock
	if err := hdr.DecodeArgs(&prev); err != nil {
		t.Fatal(err)
	}
	parent, err := prev.Header.Hash()
	if err != nil {
		t.Fatal(err)
	}
	transfer, err := accounts.TransferCall(accounts.DevAddress("Bob"), 5)
	if err != nil {
		t.Fatal(err)
	}
	other := s.sign("Bob", transfer)
	s.nonces[accounts.DevAddress("Bob")]-- // signed for the seed only
	type seed struct {
		name           string
		wire           []byte
		signer         string
		module, method string
		args           []byte
	}
	seeds := []seed{
		{"transfer", other, "Charlie", accounts.Name, accounts.MethodTransfer, args(accounts.Transfer{To: accounts.DevAddress("Bob"), Amount: 3})},
		{"set-balance", nil, "Alice", accounts.Name, accounts.MethodSetBalance, args(accounts.SetBalance{Who: accounts.DevAddress("Bob"), Amount: 1})},
		{"register", []byte{0xa0}, "Charlie", teerex.Name, teerex.MethodRegisterEnclave, args(reg)},
		{"register-replayed", nil, "Bob", teerex.Name, teerex.MethodRegisterEnclave, args(reg)},
		{"unregister", nil, "Eve", teerex.Name, teerex.MethodUnregisterEnclave, args(teerex.UnregisterEnclave{})},
		{"keep-alive", nil, "Dave", teerex.Name, teerex.MethodKeepAlive, args(teerex.KeepAlive{})},
		{"remove-enclave", nil, "Alice", teerex.Name, teerex.MethodRemoveEnclave, args(teerex.RemoveEnclave{Signer: accounts.DevAddress("Eve")})},
		{"allow", nil, "Alice", teerex.Name, teerex.MethodAllowMRENCLAVE, args(teerex.AllowMRENCLAVE{MRENCLAVE: types.Hash{3}})},
		{"disallow", nil, "Alice", teerex.Name, teerex.MethodDisallowMRENCLAVE, args(teerex.DisallowMRENCLAVE{MRENCLAVE: fuzzShard})},
		{"invoke", nil, "Bob", bridge.Name, bridge.MethodInvoke, args(bridge.Invoke{Shard: fuzzShard, Ciphertext: []byte("ct")})},
		{"shield", nil, "Bob", bridge.Name, bridge.MethodShieldFunds, args(bridge.ShieldFunds{Shard: fuzzShard, Amount: 5, EncryptedRecipient: []byte("r")})},
		{"confirm-block", nil, "Eve", bridge.Name, bridge.MethodConfirmProcessedBlock,
			args(bridge.ConfirmProcessedBlock{Shard: fuzzShard, Height: 2, BlockHash: types.Hash(moduletest.BlockHash(2))})},
		{"unshield", nil, "Eve", bridge.Name, bridge.MethodUnshieldFunds, []byte(unpaid.Args)},
		{"update-config", nil, "Dave", bridge.Name, bridge.MethodUpdateShardConfig,
			args(bridge.UpdateShardConfig{Shard: fuzzShard, MRENCLAVE: types.Hash{4}, EnactmentHeight: 9})},
		{"confirm-sidechain", nil, "Dave", sidechain.Name, sidechain.MethodConfirmSidechainBlock,
			args(sidechain.ConfirmSidechainBlock{Header: sidechain.Header{Shard: fuzzShard, Number: 2, ParentHash: parent, ChainHeight: 3}})},
		{"garbage", []byte("not a transaction"), "Bob", "nosuch", "method", []byte{0xff}},
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzTx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sd := range seeds {
		signer := -1
		for i, n := range fuzzNames {
			if n == sd.signer {
				signer = i
			}
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbyte(%q)\nstring(%q)\nstring(%q)\n[]byte(%q)\n",
			sd.wire, byte(signer), sd.module, sd.method, sd.args)
		if err := os.WriteFile(filepath.Join(dir, sd.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The seeds do what their names say on the populated state: the valid
// calls succeed, so that the fuzzer starts from deep inside the modules.
func TestFuzzTxSeedsReachTheModules(t *testing.T) {
	s := populated(t)
	succeed := map[string]bool{"transfer": true, "set-balance": true, "register": true, "unregister": true, "allow": true,
		"disallow": true, "invoke": true, "shield": true, "confirm-block": true, "unshield": true, "update-config": true,
		"confirm-sidechain": true, "keep-alive": true, "remove-enclave": true, "register-replayed": false, "garbage": false}
	dir := filepath.Join("testdata", "fuzz", "FuzzTx")
	for name, want := range succeed {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		vals := corpusValues(t, raw)
		if len(vals) != 5 {
			t.Fatalf("%s: %d values", name, len(vals))
		}
		o := s.run(t, [][]byte{s.signedFuzzCall(vals[1][0], vals[2], vals[3], []byte(vals[4]))})
		if (o.results[0] == 0) != want {
			t.Errorf("seed %s: result code %d, want success %v", name, o.results[0], want)
		}
	}
}

// corpusValues reads the quoted values of a corpus file of FuzzTx's types.
func corpusValues(t *testing.T, raw []byte) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if lines[0] != "go test fuzz v1" {
		t.Fatalf("corpus file starts with %q", lines[0])
	}
	var out []string
	for _, l := range lines[1:] {
		open, end := strings.Index(l, "("), strings.LastIndex(l, ")")
		if open < 0 || end < open {
			t.Fatalf("corpus line %q", l)
		}
		v, err := strconv.Unquote(l[open+1 : end])
		if err != nil {
			t.Fatalf("corpus line %q: %v", l, err)
		}
		if strings.HasPrefix(l, "byte(") {
			r := []rune(v)
			v = string([]byte{byte(r[0])})
		}
		out = append(out, v)
	}
	return out
}
