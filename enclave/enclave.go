package enclave

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/seal"
	"github.com/integritee-go/integritee/enclave/state"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/internal/ed25519x"
	"github.com/integritee-go/integritee/tee"
)

// Config configures an Enclave.
type Config struct {
	Backend tee.Backend
	// NewSTF returns the application's STF for a shard; nil means the
	// confidential balances STF (stf.Balances with Dev and DevSudo).
	NewSTF func(init *protocol.Init) stf.STF
	// Dev is the development mode of the enclave's build: the dev-only
	// trusted call set_balance (by DevSudo), plaintext state access
	// (GetState, plaintext getter results) and debug peers. The program
	// sets it from how it was built (cmd/integritee-enclave's `dev` build
	// tag), so it is part of the measurement; no host message sets it.
	Dev     bool
	DevSudo tx.Address
	// TrustingPeriod bounds the time between consecutive headers (0 means
	// lightclient.DefaultTrustingPeriod).
	TrustingPeriod time.Duration
	Logger         *slog.Logger
	// Peers configures the attestation of peer enclaves for key
	// provisioning (provision.go); nil disables provisioning.
	Peers *PeerAttestation
	// Release orders this build among a shard's releases (upgrade.go):
	// keys and state go only to the same measurement or to an authorized
	// later release, never back. Compiled in, so part of the measurement;
	// 0 means 1.
	Release uint64
	// StateVersion is the state format this build writes (0 means
	// DefaultStateVersion); it also names the signature rule
	// (SignatureRule).
	// Migrations bring an older state to it at the height from which this
	// build serves the shard.
	StateVersion uint32
	Migrations   []Migration
	// ReplicaKeepEntries and ReplicaKeepBytes set the log the shard's
	// replica keeps behind the stored state when it compacts (0 means
	// replica.DefaultKeepEntries and DefaultKeepBytes). Compiled in.
	ReplicaKeepEntries, ReplicaKeepBytes int
}

type phase int

const (
	phaseNew          phase = iota // waiting for Init
	phaseLoading                   // waiting for LoadEntries / Resume
	phaseReady                     // processing blocks
	phaseFailed                    // internal failure: restart required
	phaseProvisioning              // waiting for the provider's keys (provision.go)
)

// Enclave is the trusted core. Its Handle method serves the protocol; it is
// meant for one host connection and handles one request at a time.
type Enclave struct {
	cfg   Config
	log   *slog.Logger
	phase phase

	shard   [32]byte
	chainID string
	// genesis is the ID of the chain the enclave follows
	// (teerex.GenesisID): its report data commits to it and its keys and
	// checkpoints are sealed under it, so the host cannot point it at
	// another chain.
	genesis [32]byte
	// scope is what sealed blobs are bound to (SealScope).
	scope     [32]byte
	mrenclave [32]byte
	// heartbeat is the confirmation heartbeat in milliseconds of block
	// time (0: every block) and confirmed the state hash of the last
	// confirmation (commit.go).
	heartbeat int64
	confirmed [32]byte

	keys  *keys.Keys
	state *state.State
	lc    *lightclient.Client
	rt    *stf.Runtime
	// pending are the calls since the last confirmation.
	pending [][32]byte
	// want is the checkpoint being restored (phaseLoading).
	want *checkpoint
	// side is the shard's last block (sidechain.go); recent are the blocks
	// this enclave produced and has not yet seen confirmed.
	side   *sidechainHead
	recent []sidechainHead
	// prov is the provisioning state (provision.go).
	prov provisioning
	// repl is the replication state (replicate.go); joined marks a state
	// provisioned from a peer.
	repl   replication
	joined bool
	// decryptions counts the direct calls this enclave decrypted
	// (prepareCalls); tests check that followers decrypt none.
	decryptions atomic.Uint64
	// decapsulations counts the HPKE decapsulations among them (a
	// channel's data ciphertexts need none).
	decapsulations atomic.Uint64
	// channels are the shielded channels seen opened (channels.go).
	channels channels
	// config is the shard's configuration as verified blocks set it;
	// retired, if not 0, is the height from which another measurement
	// serves the shard (upgrade.go).
	config  shardConfig
	retired int64
	// current marks a state known to be in this build's format.
	current bool
	// signers caches the expanded keys of direct calls' signers, each
	// for the shielded channel its call came on (prepareChunk): a
	// client's next call on its channel does not decode its key again.
	signers *ed25519x.Keys
}

// signerCache is the most signers' expanded keys an enclave keeps, about
// 1.5 KiB each (48 MiB at most): a channel's signer's key stays while
// fewer than 16,384 other pairs of channel and signer call between two of
// its calls (ed25519x.Keys). The host can push every key out with calls
// of its own; that slows the clients' checks and changes no verdict.
const signerCache = 1 << 15

var _ protocol.Handler = (*Enclave)(nil)

// New returns an enclave waiting for Init.
func New(cfg Config) (*Enclave, error) {
	if cfg.Backend == nil {
		return nil, errors.New("enclave: no TEE backend")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Enclave{cfg: cfg, log: log, mrenclave: cfg.Backend.Measurement(), signers: ed25519x.NewKeys(signerCache)}, nil
}

// Handle implements protocol.Handler.
func (e *Enclave) Handle(_ context.Context, req protocol.Request) (protocol.Reply, error) {
	if e.phase == phaseFailed {
		return nil, protocol.Errorf(protocol.CodeInternal, "restart required after an internal failure")
	}
	switch r := req.(type) {
	case *protocol.Init:
		return e.init(r)
	case *protocol.StateInfo:
		return e.stateInfo(), nil
	case *protocol.ProvisionInit:
		return e.provisionInit(r)
	case *protocol.ProvisionStep:
		return e.provisionStep(r)
	}
	if e.phase == phaseNew || e.phase == phaseProvisioning {
		return nil, protocol.Errorf(protocol.CodeNotInitialized, "send init first")
	}
	switch r := req.(type) {
	case *protocol.LoadEntries:
		return e.loadEntries(r)
	case *protocol.Resume:
		return e.resume()
	case *protocol.Attest:
		return e.attest()
	case *protocol.SignRegistration:
		return e.signRegistration(r)
	case *protocol.SignOutgoing:
		return e.signOutgoing(r)
	}
	if e.phase != phaseReady {
		return nil, protocol.Errorf(protocol.CodeNotInitialized, "state not loaded: send the entries and resume")
	}
	if e.retired != 0 {
		switch req.(type) {
		case *protocol.ProcessBlock, *protocol.SubmitCalls, *protocol.ExecuteGetter, *protocol.PrivateGetter, *protocol.GetState:
			return nil, e.retiredError()
		}
	}
	switch r := req.(type) {
	case *protocol.ProcessBlock:
		return e.processBlock(r)
	case *protocol.ExecuteGetter:
		return e.executeGetter(r)
	case *protocol.GetState:
		return e.getState(r)
	case *protocol.SubmitCalls:
		return e.submitCalls(r)
	case *protocol.PrivateGetter:
		return e.privateGetter(r)
	case *protocol.ProvisionServe:
		return e.provisionServe(r)
	case *protocol.ReplicaStart:
		return e.replicaStart(r)
	case *protocol.ReplicaStep:
		return e.replicaStep(r)
	}
	return nil, protocol.Errorf(protocol.CodeInvalidInput, "unhandled request %s", req.Type())
}

// ErrRolledBack means the chain confirmed a shard block that this
// enclave's state does not hold: the host restarted it from an old copy of
// its state, or it diverged. It stops for good (CodeState, restart
// refused the same way): only provisioning from a peer brings it back.
var ErrRolledBack = errors.New("enclave: state behind the shard's confirmed chain")

// fail stops the enclave after an internal error that left it in a state
// the host has not persisted.
func (e *Enclave) fail(err error) error {
	e.phase = phaseFailed
	e.log.Error("enclave stopped", "err", err)
	return protocol.Errorf(protocol.CodeInternal, "restart required: %v", err)
}

func (e *Enclave) init(r *protocol.Init) (protocol.Reply, error) {
	if e.phase != phaseNew {
		return nil, protocol.Errorf(protocol.CodeAlreadyInitialized, "init was already sent")
	}
	if r.ChainID == "" {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "empty chain ID")
	}
	sealed := keys.Sealed{}
	if r.SealedKeys != nil {
		sealed = keys.Sealed{Signer: r.SealedKeys.Signer, Shielding: r.SealedKeys.Shielding, State: r.SealedKeys.State}
	}
	var (
		k       *keys.Keys
		err     error
		created bool
	)
	gvals, genesis, err := genesisOf(r)
	if err != nil {
		return nil, err
	}
	scope := SealScope(r.Shard, genesis)
	if sealed.Empty() {
		if len(r.Checkpoint) > 0 {
			return nil, protocol.Errorf(protocol.CodeSealing, "a checkpoint without sealed keys")
		}
		if k, err = keys.Generate(); err != nil {
			return nil, fmt.Errorf("generate keys: %w", err)
		}
		if sealed, err = k.Seal(e.cfg.Backend, scope); err != nil {
			return nil, fmt.Errorf("seal keys: %w", err)
		}
		created = true
	} else if k, err = keys.Unseal(e.cfg.Backend, scope, sealed); err != nil {
		// Also what a host gets that restarts sealed keys on another
		// genesis (another chain, or its own validators).
		return nil, protocol.Errorf(protocol.CodeSealing, "%v (or sealed for another shard or chain)", err)
	}
	st, err := state.New(k.StateKey())
	if err != nil {
		return nil, err
	}

	lcCfg := lightclient.Config{ChainID: r.ChainID, InitialHeight: r.InitialHeight, TrustingPeriod: e.cfg.TrustingPeriod}
	var (
		lc   *lightclient.Client
		want *checkpoint
	)
	if len(r.Checkpoint) > 0 {
		if want, err = openCheckpoint(e.cfg.Backend, scope, r.Checkpoint); err != nil {
			return nil, protocol.Errorf(protocol.CodeSealing, "%v", err)
		}
		if want.ChainID != r.ChainID || want.Signer != tx.AddressOf(k.SignerPublic()) {
			return nil, protocol.Errorf(protocol.CodeSealing, "checkpoint of chain %q or another enclave's keys", want.ChainID)
		}
		hdr, err := protocol.DecodeSignedHeader(want.Header, r.ChainID)
		if err != nil {
			return nil, protocol.Errorf(protocol.CodeState, "checkpoint header: %v", err)
		}
		if lc, err = lightclient.New(lcCfg, hdr); err != nil {
			return nil, protocol.Errorf(protocol.CodeState, "%v", err)
		}
	} else {
		lcCfg.Genesis = gvals
		if lc, err = lightclient.New(lcCfg, nil); err != nil {
			return nil, protocol.Errorf(protocol.CodeInvalidInput, "%v", err)
		}
	}

	var app stf.STF = &stf.Balances{Dev: e.cfg.Dev, Sudo: e.cfg.DevSudo}
	if e.cfg.NewSTF != nil {
		app = e.cfg.NewSTF(r)
	}
	e.shard, e.chainID, e.genesis, e.scope = r.Shard, r.ChainID, genesis, scope
	e.heartbeat = int64(min(r.ConfirmHeartbeat, maxHeartbeat))
	e.keys, e.state, e.lc, e.rt = k, st, lc, &stf.Runtime{STF: app}
	e.phase = phaseReady
	e.config = defaultConfig(r.Shard)
	if want != nil && want.Config != nil {
		e.config = *want.Config
	}
	if want != nil {
		e.want, e.phase = want, phaseLoading
		e.pending, e.confirmed = want.Pending, want.Confirmed
		e.side, e.recent = want.Sidechain, want.Recent
		e.repl.applied, e.repl.stored, e.repl.join, e.joined = want.Applied, want.Applied, want.Position, want.Joined
		e.repl.head = want.Records
		// The sealed checkpoint says how many entries come: size the state
		// once (bounded: it is a hint, not a limit).
		st.Reserve(int(min(want.Entries, maxReserve)))
		if want.Entries == 0 {
			// Nothing to load: resume right away if the root agrees.
			if _, err := e.resume(); err != nil {
				return nil, err
			}
		}
	}
	rep := &protocol.InitReply{
		MRENCLAVE:       e.mrenclave,
		SignerPublic:    k.SignerPublic(),
		ShieldingPublic: k.ShieldingPublic(),
		SealedKeys:      protocol.SealedKeys{Signer: sealed.Signer, Shielding: sealed.Shielding, State: sealed.State},
		Created:         created,
		Height:          lc.Height(),
		StateRoot:       st.Root(),
		AwaitingEntries: e.phase == phaseLoading,
	}
	if want != nil {
		rep.StateRoot = want.Root
	}
	e.log.Info("initialised", "shard", fmt.Sprintf("%x", r.Shard), "height", rep.Height, "created", created)
	return rep, nil
}

// maxReserve bounds the entries the state is sized for up front.
const maxReserve = 1 << 24

func (e *Enclave) loadEntries(r *protocol.LoadEntries) (protocol.Reply, error) {
	if e.phase != phaseLoading {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "not loading state")
	}
	packed, err := r.Unpack()
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "%v", err)
	}
	entries := make([]state.Entry, len(packed))
	for i, x := range packed {
		entries[i] = state.Entry{Key: x.Key, Value: x.Value}
	}
	if err := e.state.Load(entries); err != nil {
		// Part of the chunk may be loaded: start over.
		e.phase = phaseFailed
		return nil, protocol.Errorf(protocol.CodeState, "%v (restart required)", err)
	}
	return &protocol.LoadEntriesReply{Loaded: uint64(e.state.Len())}, nil
}

func (e *Enclave) resume() (protocol.Reply, error) {
	if e.phase != phaseLoading {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "not loading state")
	}
	if got := e.state.Root(); got != e.want.Root || uint64(e.state.Len()) != e.want.Entries {
		e.phase = phaseFailed
		return nil, protocol.Errorf(protocol.CodeState, "loaded %d entries with root %x, checkpoint has %d with root %x (restart required)",
			e.state.Len(), got, e.want.Entries, e.want.Root)
	}
	e.phase, e.want = phaseReady, nil
	return &protocol.ResumeReply{Height: e.lc.Height(), StateRoot: e.state.Root(), Entries: uint64(e.state.Len())}, nil
}

func (e *Enclave) stateInfo() *protocol.StateInfoReply {
	rep := &protocol.StateInfoReply{MRENCLAVE: e.mrenclave}
	if e.phase == phaseReady {
		rep.Height, rep.StateRoot, rep.Entries = e.lc.Height(), e.state.Root(), uint64(e.state.Len())
	}
	return rep
}

func (e *Enclave) env(height int64, b *state.Batch) (stf.Env, error) {
	rule, err := signatureRule(b)
	if err != nil {
		return stf.Env{}, err
	}
	return stf.Env{Genesis: e.genesis, Shard: e.shard, MRENCLAVE: e.target(height).MRENCLAVE, Height: height, Rule: rule}, nil
}

// getterEnv is what getters are answered on: the committed state, at the
// light client's height, under that state's signature rule.
func (e *Enclave) getterEnv() (stf.Env, *state.Batch, error) {
	b := e.state.Begin()
	env, err := e.env(e.lc.Height(), b)
	if err != nil {
		return stf.Env{}, nil, protocol.Errorf(protocol.CodeInternal, "%v", err)
	}
	return env, b, nil
}

// target is what calls applied at height must be signed for: the
// measurement serving the shard at the height. A new release applies its
// predecessor's calls the same way until the enactment height, and only
// its own from then on.
func (e *Enclave) target(height int64) stf.Target {
	return stf.Target{Genesis: e.genesis, Shard: e.shard, MRENCLAVE: e.config.at(height)}
}

// chainTime is the time of the latest block the light client verified,
// zero before the first: the only clock the enclave trusts (getter
// expiries are judged by it).
func (e *Enclave) chainTime() time.Time {
	if t := e.lc.Trusted(); t != nil {
		return t.Time
	}
	return time.Time{}
}

func (e *Enclave) executeGetter(r *protocol.ExecuteGetter) (protocol.Reply, error) {
	if !e.cfg.Dev {
		return nil, protocol.Errorf(protocol.CodeForbidden, "plaintext getter results go to the host: dev mode only")
	}
	// No reply key: only a getter signed for a plaintext answer is
	// answered here.
	env, b, err := e.getterEnv()
	if err != nil {
		return nil, err
	}
	v, err := e.rt.Get(env, b, r.Getter, e.chainTime(), nil)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "%v", err)
	}
	return &protocol.GetterReply{Value: v}, nil
}

func (e *Enclave) getState(r *protocol.GetState) (protocol.Reply, error) {
	if !e.cfg.Dev {
		return nil, protocol.Errorf(protocol.CodeForbidden, "get_state is a debug request: dev mode only")
	}
	v, ok := e.state.Get(r.Key)
	return &protocol.GetStateReply{Value: v, Found: ok}, nil
}

// seal is a helper for the checkpoint label.
func (e *Enclave) sealCheckpoint(c *checkpoint) ([]byte, error) {
	c.Sidechain, c.Recent = e.side, e.recent
	c.Applied, c.Joined = e.repl.applied, e.joined
	if n := e.repl.node; n == nil {
		// Nothing replicated was applied since the restored checkpoint.
		c.Records, c.Position = e.repl.head, e.repl.join
	} else {
		h := n.Head()
		c.Records = &h
		// Where a state provisioned from this one starts its log. Without
		// it, such a replica starts with an empty log, as before.
		if c.Applied > 0 {
			if p, err := n.PositionAt(c.Applied); err != nil {
				e.log.Warn("checkpoint without its log position", "err", err)
			} else {
				c.Position = &p
			}
		}
	}
	// The host stores the checkpoint with the output that carries it, and
	// with the records of that output: a compaction up to here is safe.
	e.repl.stored = c.Applied
	cfg := e.config
	c.Config = &cfg
	b, err := protocol.Marshal(c)
	if err != nil {
		return nil, err
	}
	return seal.Seal(e.cfg.Backend, labelCheckpoint, e.scope, b)
}

// genesisOf decodes Init's genesis validators and returns them with the
// genesis ID of the chain the enclave is to follow.
func genesisOf(r *protocol.Init) (*cmttypes.ValidatorSet, [32]byte, error) {
	vals, err := protocol.DecodeValidatorSet(r.GenesisValidators)
	if err != nil {
		return nil, [32]byte{}, protocol.Errorf(protocol.CodeInvalidInput, "genesis validators: %v", err)
	}
	return vals, [32]byte(teerex.GenesisID(r.ChainID, r.InitialHeight, vals.Hash())), nil
}

// scopeDomain separates seal scopes from other hashes.
const scopeDomain = "integritee/enclave/v1/seal-scope"

// SealScope is what the enclave's keys and checkpoints are sealed to: the
// shard on one chain. A host that restarts the sealed keys with another
// genesis (its own validators) gets nothing that opens, so it cannot make
// a registered signer follow a fake chain.
func SealScope(shard, genesis [32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(scopeDomain))
	h.Write(shard[:])
	h.Write(genesis[:])
	return [32]byte(h.Sum(nil))
}
