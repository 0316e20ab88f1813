// Package runtime is the contract between the integritee-node application
// and its modules (accounts, teerex, bridge, sidechain): each module decodes
// its calls, executes them on a state branch through keeper-style accessors,
// emits events and declares its own error codes.
package runtime

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/tx"
)

// Msg is a decoded call of a module.
type Msg any

// Module is one part of the runtime.
type Module interface {
	// Name is the module's call namespace, state key prefix and query path
	// segment, e.g. "accounts".
	Name() string
	// DecodeCall decodes a call without touching state. Unknown methods
	// must give an error wrapping ErrUnknownCall, bad arguments one wrapping
	// ErrMalformedCall.
	DecodeCall(call tx.Call) (Msg, error)
	// Execute applies msg. On error the application drops every write the
	// call made (the fee stays charged). Errors should be module *Errors.
	Execute(ctx *Context, msg Msg) error
	// QueryKey maps the path segments after /<name>/ to the state key whose
	// value (with proof) answers the query.
	QueryKey(path []string) ([]byte, error)
}

// Genesis is implemented by modules that have genesis state; raw is the
// module's entry in the app_state of genesis.json (may be nil).
type Genesis interface {
	InitGenesis(ctx *Context, raw []byte) error
}

// Prechecker is implemented by modules with calls too expensive to run in
// CheckTx, which admits transactions to the mempool before they pay
// anything (e.g. a registration's attestation verification). For such a
// call Precheck runs only cheap checks, each one that Execute would make
// too, and reports deferred: CheckTx then admits the transaction without
// executing the call, which runs in a block only, where a failure still
// pays its fee. For other calls it reports false and CheckTx executes them.
type Prechecker interface {
	Precheck(ctx *Context, msg Msg) (deferred bool, err error)
}

// EndBlocker is implemented by modules with work to do at the end of every
// block, after its transactions (e.g. teerex removes long-expired
// registrations, a bounded number per block). Its writes and events are
// the block's. It must be deterministic and bounded; an error means the
// state cannot be read or written and halts the node.
type EndBlocker interface {
	EndBlock(ctx *Context) error
}

// Context is what a call sees: its state branch, block info and signer.
type Context struct {
	Store   store.KV
	ChainID string
	Height  int64
	Time    time.Time
	// Sender is the signer of the transaction being executed (zero in
	// genesis).
	Sender tx.Address
	// Dev is true on a development chain (dev genesis).
	Dev bool
	// Genesis is the chain's genesis ID (teerex.GenesisID of its chain ID,
	// initial height and genesis validator set), recorded at InitChain:
	// what an enclave following this chain commits to in its report data.
	Genesis [32]byte
	Logger  *slog.Logger
	// Observer receives measurements for the node's metrics; nil
	// observes nothing. What it gets never feeds back into the state.
	Observer Observer

	events []abci.Event
	data   []byte
}

// Observer receives measurements of the execution that are no part of the
// state (the node's metrics).
type Observer interface {
	// AttestationVerified reports one verification of attestation
	// evidence of kind: how long it took and its error (nil: verified).
	AttestationVerified(kind string, took time.Duration, err error)
}

// ObserveAttestation reports an attestation verification to the
// Observer, if any.
func (c *Context) ObserveAttestation(kind string, took time.Duration, err error) {
	if c.Observer != nil {
		c.Observer.AttestationVerified(kind, took, err)
	}
}

// SetData sets the call's result data, which goes into the transaction's
// ExecTxResult.Data. Unlike events, the data is covered by the next
// header's LastResultsHash, so a light client (an enclave) can rely on it:
// e.g. the sidechain module marks the vote that confirmed a shard block.
func (c *Context) SetData(b []byte) { c.data = b }

// Data returns what SetData set.
func (c *Context) Data() []byte { return c.data }

// Emit records an event; every state change emits one. Attributes are
// indexed so that clients can search transactions by them.
func (c *Context) Emit(typ string, attrs ...string) {
	ev := abci.Event{Type: typ}
	for i := 0; i+1 < len(attrs); i += 2 {
		ev.Attributes = append(ev.Attributes, abci.EventAttribute{Key: attrs[i], Value: attrs[i+1], Index: true})
	}
	c.events = append(c.events, ev)
}

// Events returns the events emitted so far.
func (c *Context) Events() []abci.Event { return c.events }

// WithStore returns a copy of c on another store with no events, for a
// nested branch; append its events back with AddEvents on success.
func (c *Context) WithStore(kv store.KV) *Context {
	cp := *c
	cp.Store = kv
	cp.events, cp.data = nil, nil
	return &cp
}

// AddEvents appends events (of a successful nested branch).
func (c *Context) AddEvents(evs []abci.Event) { c.events = append(c.events, evs...) }

// State keys of the application itself (prefix "app/", a name no module
// may take), which modules read through the Context.
var (
	keyGenesis         = []byte("app/genesis")
	keyBlockHashPrefix = []byte("app/block/")
)

// GenesisKey is the state key of the chain's genesis ID (32 bytes), written
// at InitChain; it is queried at /app/genesis.
func GenesisKey() []byte { return slices.Clone(keyGenesis) }

// BlockHashWindow is the number of most recent blocks whose hashes the
// state keeps: enough for any confirmation that is not hopelessly late,
// few enough that the state does not grow with the chain.
const BlockHashWindow = 100_000

// BlockHashKey is the state key of the hash of the chain's block at height
// (32 bytes), written with that block and deleted BlockHashWindow blocks
// later.
func BlockHashKey(height int64) []byte {
	return binary.BigEndian.AppendUint64(slices.Clone(keyBlockHashPrefix), uint64(height))
}

// BlockHash returns the hash of this chain's block at height h, which the
// header of block h+1 names as its last block ID. It is known (ok) for the
// last BlockHashWindow blocks before the current one: the current block's
// own hash is not, since CheckTx and PrepareProposal run before it exists,
// and older blocks have left the window.
func (c *Context) BlockHash(h int64) (hash []byte, ok bool, err error) {
	if h >= c.Height || h < c.Height-BlockHashWindow || h < 1 {
		return nil, false, nil
	}
	b, err := c.Store.Get(BlockHashKey(h))
	if err != nil {
		return nil, false, fmt.Errorf("block hash %d: %w", h, err)
	}
	return b, b != nil, nil
}
