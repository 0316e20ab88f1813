// Package rpctest provides a real enclave behind a minimal host for tests
// of the direct-invocation API and its clients: the trusted core (package
// enclave, sim TEE) runs in-process over net.Pipe, and Enclave implements
// rpc.Backend the way the worker host must (serialised requests, the
// reply persisted before outcomes are returned). It links trusted code into
// the test binary and is for tests only.
package rpctest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto"
	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmtversion "github.com/cometbft/cometbft/proto/tendermint/version"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/state"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/tee/sim"
	"github.com/integritee-go/integritee/worker/rpc"
)

// ChainID is the chain the test enclave follows.
const ChainID = "rpctest"

// SudoKey returns the dev sudo key of the test enclave's STF: it may
// set_balance.
func SudoKey() ed25519.PrivateKey { return Key("rpctest sudo") }

// Key derives a test key from a name.
func Key(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// Address returns the account of k.
func Address(k ed25519.PrivateKey) tx.Address { return tx.AddressOf(k.Public().(ed25519.PublicKey)) }

// Enclave is a started enclave with its host-side persistence in memory.
type Enclave struct {
	t       testing.TB
	backend *sim.Backend
	shard   [32]byte
	chain   []*cmttypes.SignedHeader
	vals    *cmttypes.ValidatorSet

	mu      sync.Mutex // serialises requests with persistence, as the host must
	client  *protocol.Client
	stop    func()
	traffic bytes.Buffer
	tmu     sync.Mutex

	id         rpc.Identity
	sealed     *protocol.SealedKeys
	checkpoint []byte
	entries    map[[32]byte][]byte
	height     int64
	blocks     []sidechain.SignedHeader
	outgoing   []protocol.Outgoing
	root       [32]byte
	// Calls counts SubmitCalls round trips and their sizes.
	calls []int
}

var _ rpc.Backend = (*Enclave)(nil)

// NewEnclave starts an enclave for the shard named name (its sim
// measurement is the shard), processes one chain block and returns it.
func NewEnclave(t testing.TB, name string) *Enclave {
	t.Helper()
	shard := sha256.Sum256([]byte(name))
	b, err := sim.New(sim.Config{Measurement: &shard})
	if err != nil {
		t.Fatal(err)
	}
	c := testChain()
	e := &Enclave{t: t, backend: b, shard: shard, entries: map[[32]byte][]byte{}, chain: c.headers, vals: c.vals}
	t.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.stop != nil {
			e.stop()
		}
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	e.boot()
	rep, err := protocol.CallAs[*protocol.ProcessBlockReply](context.Background(), e.client, e.processBlock(1))
	if err != nil {
		t.Fatal(err)
	}
	e.persist(rep.Changes, rep.Checkpoint, rep.Outgoing)
	e.height, e.root = rep.Height, rep.StateRoot
	return e
}

// chain is the test chain every test enclave follows: two empty blocks
// signed by one validator, the same for all (it depends on nothing else).
type chain struct {
	headers []*cmttypes.SignedHeader
	vals    *cmttypes.ValidatorSet
}

// BlockTime is the time of block 1, the chain block a new test enclave
// has verified: the chain time its getters' expiries are judged by.
var BlockTime = time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)

var testChain = sync.OnceValue(func() chain {
	k := cmted25519.GenPrivKeyFromSecret([]byte("rpctest validator"))
	c := chain{vals: cmttypes.NewValidatorSet([]*cmttypes.Validator{cmttypes.NewValidator(k.PubKey(), 10)})}
	for h := int64(1); h <= 2; h++ {
		hdr := &cmttypes.Header{
			Version: cmtversion.Consensus{Block: version.BlockProtocol}, ChainID: ChainID, Height: h,
			Time: BlockTime.Add(time.Duration(h-1) * time.Second), DataHash: cmttypes.Txs{}.Hash(),
			ValidatorsHash: c.vals.Hash(), NextValidatorsHash: c.vals.Hash(), ConsensusHash: sum("consensus"),
			AppHash: sum(fmt.Sprint("app ", h)), LastResultsHash: cmttypes.NewResults(nil).Hash(),
			EvidenceHash: cmttypes.EvidenceList{}.Hash(), ProposerAddress: c.vals.Validators[0].Address,
		}
		if h > 1 {
			prev := c.headers[h-2]
			hdr.LastBlockID, hdr.LastCommitHash = prev.Commit.BlockID, prev.Commit.Hash()
		}
		c.headers = append(c.headers, &cmttypes.SignedHeader{Header: hdr, Commit: commit(hdr, k)})
	}
	return c
})

// Header returns the test chain's header at height h (1 or 2).
func Header(h int64) *cmttypes.Header { return testChain().headers[h-1].Header }

// Genesis returns the ID of the test chain (teerex.GenesisID).
func Genesis() [32]byte { return teerex.GenesisID(ChainID, 1, testChain().vals.Hash()) }

// Target returns what calls and getters for the test enclave with
// identity id are signed for.
func Target(id rpc.Identity) stf.Target {
	return stf.Target{Genesis: Genesis(), MRENCLAVE: id.MRENCLAVE, Shard: id.Shard}
}

func sum(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func commit(hdr *cmttypes.Header, k crypto.PrivKey) *cmttypes.Commit {
	bh := hdr.Hash()
	psh := sha256.Sum256(bh)
	id := cmttypes.BlockID{Hash: bh, PartSetHeader: cmttypes.PartSetHeader{Total: 1, Hash: psh[:]}}
	ts := hdr.Time.Add(500 * time.Millisecond)
	v := &cmttypes.Vote{Type: cmtproto.PrecommitType, Height: hdr.Height, BlockID: id, Timestamp: ts, ValidatorAddress: k.PubKey().Address()}
	sig, err := k.Sign(cmttypes.VoteSignBytes(ChainID, v.ToProto()))
	if err != nil {
		panic(err) // test support: ed25519 signing does not fail
	}
	return &cmttypes.Commit{Height: hdr.Height, BlockID: id, Signatures: []cmttypes.CommitSig{{
		BlockIDFlag: cmttypes.BlockIDFlagCommit, ValidatorAddress: k.PubKey().Address(), Timestamp: ts, Signature: sig,
	}}}
}

func (e *Enclave) header(h int64) protocol.Header {
	sh, err := protocol.EncodeSignedHeader(e.chain[h-1])
	if err != nil {
		e.t.Fatal(err)
	}
	vs, err := protocol.EncodeValidatorSet(e.vals)
	if err != nil {
		e.t.Fatal(err)
	}
	return protocol.Header{SignedHeader: sh, Validators: vs}
}

func (e *Enclave) processBlock(h int64) *protocol.ProcessBlock {
	return &protocol.ProcessBlock{Block: e.header(h), Next: e.header(h + 1)}
}

type recorder struct {
	net.Conn
	e *Enclave
}

func (r recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.e.tmu.Lock()
	r.e.traffic.Write(p[:n])
	r.e.tmu.Unlock()
	return n, err
}

func (r recorder) Write(p []byte) (int, error) {
	r.e.tmu.Lock()
	r.e.traffic.Write(p)
	r.e.tmu.Unlock()
	return r.Conn.Write(p)
}

// boot starts a fresh enclave from what was persisted. Called with mu.
func (e *Enclave) boot() {
	if e.stop != nil {
		e.stop()
	}
	enc, err := enclave.New(enclave.Config{Backend: e.backend, Dev: true, DevSudo: Address(SudoKey())})
	if err != nil {
		e.t.Fatal(err)
	}
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		protocol.Serve(ctx, b, enc)
	}()
	e.client = protocol.NewClient(recorder{Conn: a, e: e}, 0)
	e.stop = func() {
		cancel()
		a.Close()
		<-done
		e.stop = nil
	}
	vals, err := protocol.EncodeValidatorSet(e.vals)
	if err != nil {
		e.t.Fatal(err)
	}
	rep, err := protocol.CallAs[*protocol.InitReply](ctx, e.client, &protocol.Init{
		Shard: e.shard, ChainID: ChainID, GenesisValidators: vals, InitialHeight: 1,
		SealedKeys: e.sealed, Checkpoint: e.checkpoint,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if rep.Created {
		k := rep.SealedKeys
		e.sealed = &k
	}
	e.id = rpc.Identity{ShieldingKey: rep.ShieldingPublic, Signer: rep.SignerPublic, MRENCLAVE: rep.MRENCLAVE, Shard: e.shard}
	if rep.AwaitingEntries {
		var es []protocol.Entry
		for k, v := range e.entries {
			es = append(es, protocol.Entry{Key: k, Value: v})
		}
		if _, err := e.client.Call(ctx, protocol.PackEntries(es)); err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.client.Call(ctx, &protocol.Resume{}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// Restart replaces the enclave process by a fresh one restored from the
// persisted state, as after a crash.
func (e *Enclave) Restart() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.boot()
}

func (e *Enclave) persist(changes []protocol.Entry, checkpoint []byte, out []protocol.Outgoing) {
	for _, c := range changes {
		if len(c.Value) == 0 {
			delete(e.entries, c.Key)
		} else {
			e.entries[c.Key] = c.Value
		}
	}
	e.checkpoint = checkpoint
	e.outgoing = append(e.outgoing, out...)
}

// ShieldingKey implements rpc.Backend.
func (e *Enclave) ShieldingKey(context.Context) (*rpc.Identity, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id := e.id
	return &id, nil
}

// SubmitCalls implements rpc.Backend: one round trip, then the block is
// persisted before the outcomes are returned.
func (e *Enclave) SubmitCalls(ctx context.Context, calls [][]byte) ([]rpc.Outcome, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, len(calls))
	rep, err := protocol.CallAs[*protocol.SubmitCallsReply](ctx, e.client, &protocol.SubmitCalls{Calls: calls, Timestamp: time.Now().UnixMilli()})
	if err != nil {
		return nil, err
	}
	if rep.Block != nil {
		e.persist(rep.Changes, rep.Checkpoint, rep.Outgoing)
		e.blocks = append(e.blocks, *rep.Block)
		e.root = rep.StateRoot
	}
	return rpc.Outcomes(rep)
}

// ExecuteGetter implements rpc.Backend.
func (e *Enclave) ExecuteGetter(ctx context.Context, request []byte) ([]byte, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rep, err := protocol.CallAs[*protocol.PrivateGetterReply](ctx, e.client, &protocol.PrivateGetter{Request: request})
	if err != nil {
		return nil, false, err
	}
	return rep.Response, false, nil
}

// Health implements rpc.Backend.
func (e *Enclave) Health(context.Context) (*rpc.Health, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := &rpc.Health{Height: e.height, StateRoot: e.root}
	if n := len(e.blocks); n > 0 {
		h.ShardBlock = e.blocks[n-1].Header.Number
	}
	return h, nil
}

// Identity returns the enclave's identity.
func (e *Enclave) Identity() rpc.Identity {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.id
}

// Blocks returns the persisted shard blocks.
func (e *Enclave) Blocks() []sidechain.SignedHeader {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]sidechain.SignedHeader(nil), e.blocks...)
}

// Outgoing returns the persisted outgoing calls.
func (e *Enclave) Outgoing() []protocol.Outgoing {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]protocol.Outgoing(nil), e.outgoing...)
}

// PersistedRoot recomputes the state hash from the persisted entries.
func (e *Enclave) PersistedRoot() [32]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	var es []state.Entry
	for k, v := range e.entries {
		es = append(es, state.Entry{Key: k, Value: v})
	}
	return state.RootOf(es)
}

// RoundTrips returns the number of calls in each SubmitCalls round trip.
func (e *Enclave) RoundTrips() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.calls...)
}

// TrafficContains reports whether b crossed the host's end of the pipe.
func (e *Enclave) TrafficContains(b []byte) bool {
	e.tmu.Lock()
	defer e.tmu.Unlock()
	return bytes.Contains(e.traffic.Bytes(), b)
}

// Serve starts srv on 127.0.0.1 and returns its http:// and ws:// URLs;
// the test's cleanup stops it.
func Serve(t testing.TB, srv *rpc.Server) (httpURL, wsURL string) {
	t.Helper()
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return ts.URL, "ws" + ts.URL[len("http"):]
}
