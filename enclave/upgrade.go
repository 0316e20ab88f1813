package enclave

import (
	"encoding/binary"
	"errors"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtmath "github.com/cometbft/cometbft/libs/math"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/state"
	"github.com/integritee-go/integritee/internal/ed25519x"
)

// Upgrades (docs/upgrades.md). The chain moves a shard to another
// measurement with update_shard_config from an enactment height H. An
// enclave follows the shard's configuration in the blocks its own light
// client verified (never from its host), hands the shard's keys and state
// only to an enclave of a measurement that configuration names and of a
// later release (provision.go), stops serving at H if it is the old
// release, and, if it is the new one, migrates the state to its format at
// H and serves from there.

// Upgrade errors.
var (
	// ErrRetired means the shard moved to another release: this enclave
	// serves no more calls, blocks or getters; it only hands its keys and
	// state to the new release.
	ErrRetired = errors.New("enclave: the shard moved to another release")
	// ErrDowngrade means a handover to a release that is not later than
	// the provider's (or from one that is not earlier than the
	// requester's).
	ErrDowngrade = errors.New("provisioning: handover to an older release refused")
	// ErrNotAuthorized means the peer's measurement is not the one the
	// shard's configuration names, as this enclave verified it.
	ErrNotAuthorized = errors.New("provisioning: measurement not authorized for the shard")
)

// Migration turns the state of version From into version From+1, inside
// the batch of the first block the new release serves.
type Migration struct {
	From  uint32
	Apply func(b *state.Batch) error
}

// State versions the enclave itself defines. An STF's format changes are
// later versions, with their Config.Migrations.
const (
	// StateVersionCofactored is the first state version whose calls and
	// getters are checked under the cofactored signature rule. A state of
	// version 1 or 2 is checked under the cofactorless rule the releases
	// that wrote them used (version 2 was the format of their upgrade
	// demo): until the enactment height a new release applies the
	// shard's indirect calls beside the old one, and the rules differ on
	// signatures any key's holder can make, so one rule per state keeps
	// the two releases' states equal. The steps up to it change no data,
	// only, at the last, the rule; the enclave makes them itself where
	// its build configures no migration.
	StateVersionCofactored uint32 = 3
	// DefaultStateVersion is the state version of a build whose Config
	// does not name one.
	DefaultStateVersion = StateVersionCofactored
)

// SignatureRule is the rule the signatures of calls and getters applied to
// a state of version v are checked under.
func SignatureRule(v uint32) ed25519x.Rule {
	if v < StateVersionCofactored {
		return ed25519x.Cofactorless
	}
	return ed25519x.Cofactored
}

// StateVersionKey is the state key of the state format version (4 bytes,
// big endian); a state without it is version 1.
var StateVersionKey = []byte("integritee/state-version")

// stateVersionOf reads the state format version of b.
func stateVersionOf(b *state.Batch) (uint32, error) {
	v, ok, err := b.Get(StateVersionKey)
	if err != nil || !ok {
		return 1, err
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("state version of %d bytes", len(v))
	}
	return binary.BigEndian.Uint32(v), nil
}

// shardConfig is the shard's configuration as the verified blocks this
// enclave applied set it; it travels in the checkpoint.
type shardConfig struct {
	Current bridge.Config  `cbor:"current"`
	Next    *bridge.Config `cbor:"next,omitempty"`
}

// at is the measurement serving the shard at height h
// (bridge.Shard.MRENCLAVEAt).
func (c *shardConfig) at(h int64) [32]byte {
	if c.Next != nil && uint64(max(h, 0)) >= c.Next.Since {
		return [32]byte(c.Next.MRENCLAVE)
	}
	return [32]byte(c.Current.MRENCLAVE)
}

// authorized reports whether the configuration names m as the shard's
// current or next measurement.
func (c *shardConfig) authorized(m [32]byte) bool {
	return [32]byte(c.Current.MRENCLAVE) == m || (c.Next != nil && [32]byte(c.Next.MRENCLAVE) == m)
}

// defaultConfig is the configuration of a shard the chain never
// reconfigured: served by the measurement equal to its ID.
func defaultConfig(shard [32]byte) shardConfig {
	return shardConfig{Current: bridge.DefaultShard(types.Hash(shard)).Config}
}

func (e *Enclave) release() uint64 { return max(e.cfg.Release, 1) }

func (e *Enclave) stateVersion() uint32 {
	if e.cfg.StateVersion == 0 {
		return DefaultStateVersion
	}
	return e.cfg.StateVersion
}

// signatureRule is the rule of the state in b (after any migration in b).
func signatureRule(b *state.Batch) (ed25519x.Rule, error) {
	v, err := stateVersionOf(b)
	if err != nil {
		return 0, fmt.Errorf("state version: %w", err)
	}
	return SignatureRule(v), nil
}

// followConfig applies the shard's successful update_shard_config calls of
// verified block b to the configuration, as the bridge module does: a
// pending change takes effect from its height, a later update replaces a
// pending one.
func (e *Enclave) followConfig(b *lightclient.Block) {
	h := uint64(b.Header.Height)
	if n := e.config.Next; n != nil && h >= n.Since {
		e.config.Current, e.config.Next = *n, nil
	}
	for i, raw := range b.Txs {
		if b.Results[i].Code != abci.CodeTypeOK {
			continue
		}
		stx, err := tx.Decode(raw)
		if err != nil || stx.Body.Call.Module != bridge.Name || stx.Body.Call.Method != bridge.MethodUpdateShardConfig {
			continue
		}
		var m bridge.UpdateShardConfig
		if stx.Body.Call.DecodeArgs(&m) != nil || m.Shard != types.Hash(e.shard) {
			continue
		}
		e.config.Next = &bridge.Config{MRENCLAVE: m.MRENCLAVE, Since: m.EnactmentHeight}
		e.log.Info("shard configuration updated", "mrenclave", m.MRENCLAVE, "enactment_height", m.EnactmentHeight, "self", e.config.authorized(e.mrenclave))
		if n := e.config.Next; h >= n.Since {
			e.config.Current, e.config.Next = *n, nil
		}
	}
}

// next reports whether the shard's configuration names this enclave's
// measurement as the next to serve it.
func (e *Enclave) next() bool {
	return e.config.Next != nil && [32]byte(e.config.Next.MRENCLAVE) == e.mrenclave
}

// serving reports whether this enclave's measurement serves the shard at
// height h.
func (e *Enclave) serving(h int64) bool { return e.config.at(h) == e.mrenclave }

// retire stops this enclave for good from block h on, which another
// measurement serves.
func (e *Enclave) retire(h int64) {
	if e.retired == 0 {
		e.retired = h
		e.log.Warn("retired: the shard moved to another release", "height", h, "mrenclave", fmt.Sprintf("%x", e.config.at(h)))
	}
}

// retiredError is what a retired enclave answers: which measurement serves
// the shard from which height, so the host can point clients to its
// workers (the chain's registry lists them).
func (e *Enclave) retiredError() error {
	return protocol.Errorf(protocol.CodeRetired, "%v: from chain height %d the shard is served by MRENCLAVE %x; send calls to the workers of that measurement",
		ErrRetired, e.retired, e.config.at(e.retired))
}

// migrate brings the state in b to this release's format, one migration
// at a time.
func (e *Enclave) migrate(b *state.Batch) error {
	if e.current {
		return nil
	}
	v, err := stateVersionOf(b)
	if err != nil {
		return err
	}
	want := e.stateVersion()
	if v > want {
		return fmt.Errorf("state version %d is newer than this release's %d", v, want)
	}
	if v == want {
		// Read from the committed state (a migration in this batch is
		// not yet): checked once per start.
		e.current = true
		return nil
	}
	for v < want {
		var m *Migration
		for i := range e.cfg.Migrations {
			if e.cfg.Migrations[i].From == v {
				m = &e.cfg.Migrations[i]
			}
		}
		switch {
		case m != nil:
			if err := m.Apply(b); err != nil {
				return fmt.Errorf("migrate the state from version %d: %w", v, err)
			}
		case v < StateVersionCofactored:
			// No data changes; at the last step the signature rule does.
		default:
			return fmt.Errorf("no migration of the state from version %d", v)
		}
		v++
		if err := b.Set(StateVersionKey, binary.BigEndian.AppendUint32(nil, v)); err != nil {
			return err
		}
		e.log.Info("state migrated", "version", v)
	}
	return nil
}

// checkRequester is the provider's check of a requester of measurement m
// and release r, once the handshake showed m is this measurement or one
// the shard's configuration names: keys go to the same measurement, or to
// a later release, never back.
func checkRequester(self [32]byte, release uint64, m [32]byte, r uint64) error {
	if m == self {
		return nil
	}
	if r <= release {
		return fmt.Errorf("%w: requester MRENCLAVE %x is release %d, this enclave release %d", ErrDowngrade, m, r, release)
	}
	return nil
}

// checkProvider is the requester's check of a provider of measurement m:
// the same measurement (as before releases), or an earlier release that
// the shard's configuration, proved at the provider's checkpoint header,
// names as the serving measurement with this one as its successor. The
// header is the provider's word until then, so for a provider of another
// measurement it must carry the signatures of at least a third of the
// genesis validators' power (CometBFT's trust level for skipping
// verification): a provider of any measurement cannot make one up.
func (e *Enclave) checkProvider(in *protocol.Init, hdr *cmttypes.SignedHeader, st provedState, pl *provisionPayload, m [32]byte) error {
	r := max(pl.Release, 1)
	if m == e.mrenclave {
		if r != e.release() {
			return fmt.Errorf("%w: provider of this measurement says release %d, this is %d", ErrProvisionPayload, r, e.release())
		}
		return nil
	}
	if r >= e.release() {
		return fmt.Errorf("%w: provider MRENCLAVE %x is release %d, this enclave release %d", ErrDowngrade, m, r, e.release())
	}
	vals, _, err := genesisOf(in)
	if err != nil {
		return err
	}
	if err := vals.VerifyCommitLightTrusting(in.ChainID, hdr.Commit, cmtmath.Fraction{Numerator: 1, Denominator: 3}); err != nil {
		return fmt.Errorf("%w: checkpoint header %d of a provider of another measurement: %w", ErrNotAuthorized, hdr.Height, err)
	}
	var rec bridge.Shard
	ok, err := st.get(bridge.ShardKey(types.Hash(in.Shard)), &rec)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotAuthorized, err)
	}
	if !ok {
		rec = bridge.DefaultShard(types.Hash(in.Shard))
	}
	if rec.ID != types.Hash(in.Shard) || [32]byte(rec.Config.MRENCLAVE) != m || rec.Pending == nil || [32]byte(rec.Pending.MRENCLAVE) != e.mrenclave {
		return fmt.Errorf("%w: at height %d the shard is served by %s (pending %v); provider %x, this enclave %x",
			ErrNotAuthorized, hdr.Height-1, rec.Config.MRENCLAVE, rec.Pending, m, e.mrenclave)
	}
	return nil
}

// memberMeasurements are the measurements whose active enclaves make up
// the shard's group (reconcile): the one serving at the light client's
// height and, while an upgrade is pending, the next release's, whose
// enclaves join early so that they hold the same log and state at the
// enactment height. A retired enclave's own configuration stops at its
// last height, so it never removes the next release's members.
func (e *Enclave) memberMeasurements() []types.Hash {
	h := e.lc.Height()
	ms := []types.Hash{types.Hash(e.config.at(h))}
	if n := e.config.Next; n != nil && n.MRENCLAVE != ms[0] {
		ms = append(ms, n.MRENCLAVE)
	}
	return ms
}
