package enclave_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto"
	cmttypes "github.com/cometbft/cometbft/types"

	app "github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/internal/testchain"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/state"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/internal/ed25519x/ed25519xtest"
	"github.com/integritee-go/integritee/tee/sim"
)

const chainID = "enclave-e2e"

// fee is what every test transaction of a dev account pays.
const fee = accounts.Unit / 100

func key(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func addr(k ed25519.PrivateKey) tx.Address { return tx.AddressOf(k.Public().(ed25519.PublicKey)) }

// devSudo is the set_balance sudo of the harness's dev builds.
var devSudo = key("shard sudo")

// chainSim is a chain: the real integritee application (accounts, teerex,
// bridge) executes the blocks, and testchain wraps them in headers and
// commits signed by real validator keys.
type chainSim struct {
	t      testing.TB
	app    *app.App
	tc     *testchain.Chain
	nonces map[tx.Address]uint64
	txs    [][]byte // every transaction ever included
}

func newChainSim(t testing.TB) *chainSim {
	t.Helper()
	return newChainSimSeed(t, "e2e validators")
}

// newChainSimSeed is a chain with the node's modules whose validator keys
// come from seed.
func newChainSimSeed(t testing.TB, seed string) *chainSim {
	t.Helper()
	return newChainSimAt(t, seed, time.Time{})
}

// newChainSimAt is newChainSimSeed with the chain's genesis at start (zero:
// about now).
func newChainSimAt(t testing.TB, seed string, start time.Time) *chainSim {
	t.Helper()
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Options{ChainID: chainID, Store: st, Modules: node.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	tc := testchain.New(chainID, 4, seed)
	if !start.IsZero() {
		tc.Start = start
	}
	ag, _ := json.Marshal(accounts.DevGenesis())
	tg, err := devnet.TeerexGenesis(tc.Start)
	if err != nil {
		t.Fatal(err)
	}
	tgj, _ := json.Marshal(tg)
	genesis, err := json.Marshal(app.AppState{Dev: true, Modules: map[string]json.RawMessage{accounts.Name: ag, teerex.Name: tgj}})
	if err != nil {
		t.Fatal(err)
	}
	ic, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, Time: tc.Start, InitialHeight: 1, AppStateBytes: genesis, Validators: cmttypes.TM2PB.ValidatorUpdates(tc.Vals)})
	if err != nil {
		t.Fatal(err)
	}
	tc.AppHashes = [][]byte{ic.AppHash}
	return &chainSim{t: t, app: a, tc: tc, nonces: map[tx.Address]uint64{}}
}

// tx signs a transaction of a dev-style key.
func (c *chainSim) tx(k ed25519.PrivateKey, module, method string, args any) []byte {
	c.t.Helper()
	call, err := tx.NewCall(module, method, args)
	if err != nil {
		c.t.Fatal(err)
	}
	a := addr(k)
	s, err := tx.Sign(tx.Body{ChainID: chainID, Sender: a, Nonce: c.nonces[a], Fee: fee, Call: call}, k)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nonces[a]++
	raw, err := s.Encode()
	if err != nil {
		c.t.Fatal(err)
	}
	return raw
}

// block executes txs in the next block and returns the results.
func (c *chainSim) block(txs ...[]byte) []*abci.ExecTxResult {
	c.t.Helper()
	h := c.tc.Height() + 1
	ctx := context.Background()
	// The header depends on the txs, not on their results (the next
	// header carries those), so the block's hash is known before it runs,
	// as in CometBFT.
	b := c.tc.Add(txs, nil)
	res, err := c.app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: h, Hash: b.Header.Hash(), Time: c.tc.Start.Add(timeOf(h)), Txs: txs})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.app.Commit(ctx, &abci.RequestCommit{}); err != nil {
		c.t.Fatal(err)
	}
	b.Results = res.TxResults
	c.tc.AppHashes = append(c.tc.AppHashes, res.AppHash)
	c.txs = append(c.txs, txs...)
	return res.TxResults
}

// genesisID is the genesis ID the chain recorded (committed with the first
// block).
func (c *chainSim) genesisID() types.Hash {
	c.t.Helper()
	q, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: "/app/genesis"})
	if err != nil || q.Code != 0 || len(q.Value) != len(types.Hash{}) {
		c.t.Fatalf("query genesis ID: %v %+v", err, q)
	}
	return types.Hash(q.Value)
}

func (c *chainSim) balance(a tx.Address) uint64 {
	c.t.Helper()
	q, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: "/accounts/" + a.String()})
	if err != nil || q.Code != 0 {
		c.t.Fatalf("query %s: %v %+v", a, err, q)
	}
	var acct accounts.Account
	if len(q.Value) == 0 {
		return 0
	}
	if err := codec.Unmarshal(q.Value, &acct); err != nil {
		c.t.Fatal(err)
	}
	return acct.Balance
}

func (c *chainSim) shard(id [32]byte) bridge.Shard {
	c.t.Helper()
	q, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: "/bridge/shard/" + types.Hash(id).String()})
	if err != nil || q.Code != 0 {
		c.t.Fatalf("query shard: %v %+v", err, q)
	}
	var s bridge.Shard
	if err := codec.Unmarshal(q.Value, &s); err != nil {
		c.t.Fatal(err)
	}
	return s
}

// recorder keeps every byte that crosses the host's end of the pipe.
type recorder struct {
	net.Conn
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (r recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.buf.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

func (r recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.buf.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

// host plays the worker host: it runs an enclave process (here a
// goroutine behind net.Pipe) and persists what the enclave hands out.
type host struct {
	t       testing.TB
	backend *sim.Backend
	shard   [32]byte
	c       *protocol.Client
	stop    func()
	// enc is the running enclave, for the counters tests read.
	enc *enclave.Enclave

	traffic *bytes.Buffer
	mu      sync.Mutex
	// signer is the enclave's chain account (once known).
	signer tx.Address
	// alterRegistry, if set, changes the registry proofs this host passes
	// as a provisioning provider (a malicious host).
	alterRegistry func([]protocol.ProvedValue) []protocol.ProvedValue
	// snapshots counts the checkpoints this host served as a provider.
	snapshots int
	// genesis is the ID of the chain of the last Init (initRequest).
	genesis [32]byte

	// dev starts the enclave as a dev build (set_balance by devSudo,
	// plaintext getters, debug peers). Off by default: the harness runs
	// the production rules unless a test is about a dev feature.
	dev bool
	// peers configures provisioning (nil: none); collateral is what the
	// host passes for peers' quotes (for a build that takes it from the
	// host).
	peers      *enclave.PeerAttestation
	collateral *teerex.Collateral
	// build, if set, changes the enclave's build configuration (its
	// release, state version, migrations, STF).
	build func(*enclave.Config)
	// serving, if set, is the measurement serving the shard, which
	// getters are signed for (nil: the shard's ID).
	serving *[32]byte

	// heartbeat is Init.ConfirmHeartbeat (0: confirm every block).
	heartbeat uint64

	// persisted
	sealed     *protocol.SealedKeys
	checkpoint []byte
	entries    map[[32]byte][]byte
	height     int64
	outgoing   []protocol.Outgoing
}

func newHost(t testing.TB, shard [32]byte) *host {
	t.Helper()
	b, err := sim.New(sim.Config{Measurement: &shard})
	if err != nil {
		t.Fatal(err)
	}
	h := &host{t: t, backend: b, shard: shard, traffic: &bytes.Buffer{}, entries: map[[32]byte][]byte{}}
	t.Cleanup(func() {
		if h.stop != nil {
			h.stop()
		}
	})
	return h
}

// start starts a fresh enclave.
func (h *host) start() {
	h.t.Helper()
	if h.stop != nil {
		h.stop()
	}
	cfg := enclave.Config{Backend: h.backend, Dev: h.dev, DevSudo: addr(devSudo), Peers: h.peers}
	if h.build != nil {
		h.build(&cfg)
	}
	e, err := enclave.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.enc = e
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		protocol.Serve(ctx, b, e)
	}()
	h.c = protocol.NewClient(recorder{Conn: a, mu: &h.mu, buf: h.traffic}, 0)
	h.stop = func() {
		cancel()
		a.Close()
		<-done
		h.stop = nil
	}
}

func (h *host) initRequest(c *chainSim) *protocol.Init {
	h.t.Helper()
	vals, err := protocol.EncodeValidatorSet(c.tc.Vals)
	if err != nil {
		h.t.Fatal(err)
	}
	h.genesis = c.genesis()
	return &protocol.Init{
		Shard: h.shard, ChainID: chainID, GenesisValidators: vals, InitialHeight: 1,
		SealedKeys: h.sealed, Checkpoint: h.checkpoint, ConfirmHeartbeat: h.heartbeat,
	}
}

// boot starts the enclave and restores it from what the host persisted.
func (h *host) boot(c *chainSim) *protocol.InitReply {
	h.t.Helper()
	h.start()
	rep, err := protocol.CallAs[*protocol.InitReply](context.Background(), h.c, h.initRequest(c))
	if err != nil {
		h.t.Fatal(err)
	}
	if rep.Created {
		sk := rep.SealedKeys
		h.sealed = &sk
	}
	if rep.AwaitingEntries {
		h.load(h.allEntries(), 3)
		if _, err := protocol.CallAs[*protocol.ResumeReply](context.Background(), h.c, &protocol.Resume{}); err != nil {
			h.t.Fatal(err)
		}
	}
	return rep
}

// privateGetter asks a getter the production way: encrypted to the shard's
// shielding key pub, answered encrypted to a fresh reply key, expiring a
// minute after c's latest block.
func privateGetter(t testing.TB, c *chainSim, h *host, pub []byte, signer ed25519.PrivateKey, g stf.Getter) (*shielding.GetterResponse, error) {
	t.Helper()
	raw, err := stf.EncodeGetter(g)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := shielding.NewReplyKey()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := stf.SignGetter(signer, raw, c.getterExpiry(), rk.Public(), h.target())
	if err != nil {
		t.Fatal(err)
	}
	req, err := shielding.NewGetterRequest(pub, rk, signed)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := protocol.CallAs[*protocol.PrivateGetterReply](context.Background(), h.c, &protocol.PrivateGetter{Request: req})
	if err != nil {
		return nil, err
	}
	return rk.Open(req, rep.Response)
}

// privateBalance reads k's confidential balance with privateGetter.
func privateBalance(t testing.TB, c *chainSim, h *host, pub []byte, k ed25519.PrivateKey) uint64 {
	t.Helper()
	a := addr(k)
	resp, err := privateGetter(t, c, h, pub, k, stf.Getter{FreeBalance: &a})
	if err != nil || resp.Error != "" {
		t.Fatalf("balance getter: %v %q", err, resp.Error)
	}
	var v uint64
	if err := codec.Unmarshal(resp.Value, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func (h *host) allEntries() []protocol.Entry {
	var out []protocol.Entry
	for k, v := range h.entries {
		out = append(out, protocol.Entry{Key: k, Value: v})
	}
	return out
}

func (h *host) load(entries []protocol.Entry, chunk int) error {
	for len(entries) > 0 {
		n := min(chunk, len(entries))
		if _, err := h.c.Call(context.Background(), protocol.PackEntries(entries[:n])); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}

func header(t testing.TB, b *testchain.Block) protocol.Header {
	t.Helper()
	sh, err := protocol.EncodeSignedHeader(b.Header)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := protocol.EncodeValidatorSet(b.Validators)
	if err != nil {
		t.Fatal(err)
	}
	return protocol.Header{SignedHeader: sh, Validators: vs}
}

// request builds the ProcessBlock of height hgt (hgt+1 must exist).
func request(t testing.TB, tc *testchain.Chain, hgt int64) *protocol.ProcessBlock {
	b := tc.Block(hgt)
	r := &protocol.ProcessBlock{Block: header(t, b), Next: header(t, tc.Block(hgt+1)), Txs: b.Txs}
	for _, x := range b.Results {
		r.Results = append(r.Results, protocol.TxResult{Code: x.Code, Data: x.Data, GasWanted: x.GasWanted, GasUsed: x.GasUsed})
	}
	return r
}

// process feeds block hgt and persists the outcome as one batch.
func (h *host) process(c *chainSim, hgt int64) (*protocol.ProcessBlockReply, error) {
	h.t.Helper()
	rep, err := protocol.CallAs[*protocol.ProcessBlockReply](context.Background(), h.c, request(h.t, c.tc, hgt))
	if err != nil {
		return nil, err
	}
	h.persist(rep)
	return rep, nil
}

func (h *host) persist(rep *protocol.ProcessBlockReply) {
	for _, e := range rep.Changes {
		if len(e.Value) == 0 {
			delete(h.entries, e.Key)
		} else {
			h.entries[e.Key] = e.Value
		}
	}
	h.checkpoint, h.height = rep.Checkpoint, rep.Height
	h.outgoing = append(h.outgoing, rep.Outgoing...)
}

// root recomputes the state hash from the persisted entries alone.
func (h *host) root() [32]byte {
	var es []state.Entry
	for k, v := range h.entries {
		es = append(es, state.Entry{Key: k, Value: v})
	}
	return state.RootOf(es)
}

// invoke encrypts a trusted call signed by k for the shard.
func invoke(t testing.TB, c *chainSim, payer ed25519.PrivateKey, shieldingPub []byte, shard [32]byte, signed []byte) []byte {
	t.Helper()
	ct, err := shielding.Encrypt(shieldingPub, shielding.InfoTrustedCall, signed)
	if err != nil {
		t.Fatal(err)
	}
	return c.tx(payer, bridge.Name, bridge.MethodInvoke, bridge.Invoke{Shard: types.Hash(shard), Ciphertext: ct})
}

// genesis is the chain's ID (teerex.GenesisID) as its enclaves compute it.
func (c *chainSim) genesis() [32]byte { return teerex.GenesisID(chainID, 1, c.tc.Vals.Hash()) }

// target is what calls and getters for an enclave of this chain are signed
// for.
func (c *chainSim) target(mrenclave, shard [32]byte) stf.Target {
	return stf.Target{Genesis: c.genesis(), MRENCLAVE: mrenclave, Shard: shard}
}

// target is what calls and getters for h's enclave (its sim measurement
// is the shard) are signed for.
func (h *host) target() stf.Target {
	m := h.shard
	if h.serving != nil {
		m = *h.serving
	}
	return stf.Target{Genesis: h.genesis, MRENCLAVE: m, Shard: h.shard}
}

func trustedCall(t testing.TB, k ed25519.PrivateKey, call stf.Call, nonce uint64, tgt stf.Target) []byte {
	t.Helper()
	raw, err := stf.EncodeCall(call)
	if err != nil {
		t.Fatal(err)
	}
	s, err := stf.SignCall(k, raw, nonce, tgt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// torsionCall is trustedCall with a signature whose R carries a point of
// small order (ed25519xtest.SignWithTorsion): valid under the cofactored
// rule only, which tells the rule an enclave applied.
func torsionCall(t testing.TB, k ed25519.PrivateKey, call stf.Call, nonce uint64, tgt stf.Target) []byte {
	t.Helper()
	raw, err := stf.EncodeCall(call)
	if err != nil {
		t.Fatal(err)
	}
	d, err := stf.CallSignBytes(raw, nonce, tgt)
	if err != nil {
		t.Fatal(err)
	}
	s, err := codec.Marshal(stf.SignedCall{
		Call: raw, Signer: tx.AddressOf(k.Public().(ed25519.PublicKey)), Nonce: nonce, Signature: ed25519xtest.SignWithTorsion(k, d),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// torsionGetter signs getter g for a plaintext answer (the dev-only
// ExecuteGetter) with a signature whose R carries a point of small order,
// as torsionCall does.
func torsionGetter(t testing.TB, k ed25519.PrivateKey, g stf.Getter, expires time.Time, tgt stf.Target) []byte {
	t.Helper()
	raw := mustGetter(t, g)
	d, err := stf.GetterSignBytes(raw, expires.UnixMilli(), stf.ReplyKeyHash(nil), tgt)
	if err != nil {
		t.Fatal(err)
	}
	s, err := codec.Marshal(stf.SignedGetter{
		Getter: raw, Signer: tx.AddressOf(k.Public().(ed25519.PublicKey)), Expires: expires.UnixMilli(), Signature: ed25519xtest.SignWithTorsion(k, d),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// getterExpiry is a getter expiry a minute after the chain's last block:
// valid for an enclave that verified any recent block.
func (c *chainSim) getterExpiry() time.Time {
	return c.tc.Block(c.tc.Height()).Header.Time.Add(time.Minute)
}

// timeOf is the block time offset testchain uses for height h.
func timeOf(h int64) time.Duration { return time.Duration(h) * time.Second }

func newImpostors() []crypto.PrivKey {
	return testchain.New(chainID, 4, "impostors").Keys
}
