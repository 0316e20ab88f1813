// Package teerex is the enclave registry module: it admits enclaves to the
// chain only after verifying their attestation (SGX DCAP quotes or IAS
// reports) at block time under an on-chain policy, binds each registration
// to the account that signs the enclave's transactions and to its shielding
// key, and expires registrations that are not renewed.
//
// State (values deterministic CBOR):
//
//	teerex/policy                        Policy (roots, signed collateral, rules)
//	teerex/allowlist                     MRENCLAVEs, sorted
//	teerex/e/<signer>                    Enclave
//	teerex/all/n                         number of registrations (uint64)
//	teerex/all/i/<8-byte slot>           signer in that slot (tx.Address)
//	teerex/all/s/<signer>                slot of the signer (uint64)
//	teerex/m/<mrenclave>/{n,i/..,s/..}   the same for one measurement
//	teerex/x/<8-byte time><signer>       signer, by attestation time (pruning)
//
// The lists of registrations keep one key per entry, never a value that
// grows with them, and number their entries densely (removing one moves
// the last into its slot) so that a client can prove a complete listing
// key by key: the state's Merkle tree hashes its keys and proves no
// ranges.
//
// Queries: /teerex/enclave/<hex signer>; /teerex/enclaves (the number of
// registrations) and /teerex/enclaves/<slot> (the signer in a slot, slots
// 0 to number-1, in no particular order); /teerex/enclaves/<hex
// mrenclave> and /teerex/enclaves/<hex mrenclave>/<slot>, the same for
// the registrations of one measurement (the enclaves of the shard it
// serves by default); /teerex/policy; /teerex/allowlist. Each answers one
// small value with its proof; listings are read slot by slot at one height
// (client.Enclaves).
//
// Registration. The evidence is verified first (trusted roots, signatures,
// for DCAP the collateral of the quote's FMSPC, for IAS the report's age,
// all at block time), then its report data must be ReportData(sender,
// shielding key, genesis ID): its first half SHA-256(sender || shielding
// key), else ErrSenderNotAttested, its second half the chain's genesis ID
// (GenesisID, runtime.Context.Genesis), else ErrWrongChain, so that only
// an enclave following this chain registers. Then the policy decides:
// debug, TCB status and the MRENCLAVE allowlist. Registering again renews. A
// registration whose attested_at lies more than the renewal period before
// the block time is expired: Keeper.Active refuses it, so it can neither
// confirm blocks nor unshield funds in the bridge. ExpiredRetention after
// it expired, the end of a block removes it (EventPruned; at most
// MaxPrunedPerBlock per block, oldest first), so that registrations nobody
// renews do not accumulate.
package teerex

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Name is the module name: call namespace, key prefix and query path.
const Name = "teerex"

// Call methods.
const (
	MethodRegisterEnclave      = "register_enclave"
	MethodUnregisterEnclave    = "unregister_enclave"
	MethodAllowMRENCLAVE       = "allow_mrenclave"
	MethodDisallowMRENCLAVE    = "disallow_mrenclave"
	MethodSetAttestationPolicy = "set_attestation_policy"
	MethodSetCollateral        = "set_collateral"
)

// Event types; every state change emits one.
const (
	EventRegistered   = "teerex.enclave_registered"   // signer, mrenclave, kind, tcb_status, worker_url
	EventRenewed      = "teerex.enclave_renewed"      // same attributes
	EventUnregistered = "teerex.enclave_unregistered" // signer, mrenclave
	EventAllowed      = "teerex.mrenclave_allowed"    // mrenclave
	EventDisallowed   = "teerex.mrenclave_disallowed" // mrenclave
	EventPolicySet    = "teerex.policy_set"           // tcb_infos, allow_debug, allow_any_mrenclave, renewal_period_secs
	EventCollateral   = "teerex.collateral_set"       // tcb_infos, qe_identity, pck_crls, root_crl
)

// Bounds of call arguments.
const (
	MaxShieldingKeyBytes = 4 << 10
	MaxWorkerURLBytes    = 512
)

// RegisterEnclave is the argument of register_enclave: the sender is the
// enclave's signer key.
type RegisterEnclave struct {
	Attestation  Evidence `cbor:"attestation"`
	ShieldingKey []byte   `cbor:"shielding_key"`
	WorkerURL    string   `cbor:"worker_url"`
}

// UnregisterEnclave is the argument of unregister_enclave: the sender's
// registration is removed.
type UnregisterEnclave struct{}

// AllowMRENCLAVE is the argument of allow_mrenclave (sudo).
type AllowMRENCLAVE struct {
	MRENCLAVE types.Hash `cbor:"mrenclave"`
}

// DisallowMRENCLAVE is the argument of disallow_mrenclave (sudo). Enclaves
// of the measurement stay registered but are no longer Active.
type DisallowMRENCLAVE struct {
	MRENCLAVE types.Hash `cbor:"mrenclave"`
}

// SetAttestationPolicy is the argument of set_attestation_policy (sudo): it
// replaces the whole policy.
type SetAttestationPolicy struct {
	Policy Policy `cbor:"policy"`
}

// SetCollateral is the argument of set_collateral (sudo): it adds or
// replaces pieces of the policy's collateral, so that monthly refreshes
// and many FMSPCs need not resend the whole policy. TCB infos replace those
// of the same FMSPC, PCK CRLs those of the same issuer.
type SetCollateral struct {
	TCBInfos   []SignedDoc `cbor:"tcb_infos,omitempty"`
	QEIdentity *SignedDoc  `cbor:"qe_identity,omitempty"`
	PCKCRLs    []CRLDoc    `cbor:"pck_crls,omitempty"`
	RootCRL    *CRLDoc     `cbor:"root_crl,omitempty"`
}

// RegisterEnclaveCall builds the call of a registration.
func RegisterEnclaveCall(ev Evidence, shieldingKey []byte, workerURL string) (tx.Call, error) {
	return tx.NewCall(Name, MethodRegisterEnclave, RegisterEnclave{Attestation: ev, ShieldingKey: shieldingKey, WorkerURL: workerURL})
}

// Sudo tells whether an account is the chain's sudo key (accounts.Keeper).
type Sudo interface {
	IsSudo(r store.Reader, a tx.Address) (bool, error)
}

// Module is the teerex module.
type Module struct {
	Keeper Keeper
	sudo   Sudo
}

var (
	_ runtime.Module     = (*Module)(nil)
	_ runtime.Genesis    = (*Module)(nil)
	_ runtime.EndBlocker = (*Module)(nil)
	_ runtime.Prechecker = (*Module)(nil)
)

// New returns the module; sudo authorises the governance calls.
func New(sudo Sudo) *Module { return &Module{sudo: sudo} }

// Name implements runtime.Module.
func (*Module) Name() string { return Name }

// DecodeCall implements runtime.Module. It checks structure and bounds
// only; certificates and quotes are parsed when the call executes.
func (*Module) DecodeCall(call tx.Call) (runtime.Msg, error) {
	malformed := func(err error) (runtime.Msg, error) {
		return nil, fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
	}
	switch call.Method {
	case MethodRegisterEnclave:
		var m RegisterEnclave
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		if err := m.validate(); err != nil {
			return malformed(err)
		}
		return m, nil
	case MethodUnregisterEnclave:
		var m UnregisterEnclave
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		return m, nil
	case MethodAllowMRENCLAVE:
		var m AllowMRENCLAVE
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		return m, nil
	case MethodDisallowMRENCLAVE:
		var m DisallowMRENCLAVE
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		return m, nil
	case MethodSetAttestationPolicy:
		var m SetAttestationPolicy
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		return m, nil
	case MethodSetCollateral:
		var m SetCollateral
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		if len(m.TCBInfos) == 0 && m.QEIdentity == nil && len(m.PCKCRLs) == 0 && m.RootCRL == nil {
			return malformed(errors.New("set_collateral without collateral"))
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: %s.%s", types.ErrUnknownCall, Name, call.Method)
}

func (m *RegisterEnclave) validate() error {
	if err := m.Attestation.validate(); err != nil {
		return err
	}
	if len(m.ShieldingKey) > MaxShieldingKeyBytes {
		return fmt.Errorf("shielding key of %d bytes, limit %d", len(m.ShieldingKey), MaxShieldingKeyBytes)
	}
	if len(m.WorkerURL) > MaxWorkerURLBytes {
		return fmt.Errorf("worker url of %d bytes, limit %d", len(m.WorkerURL), MaxWorkerURLBytes)
	}
	if m.WorkerURL != "" {
		u, err := url.Parse(m.WorkerURL)
		if err != nil {
			return fmt.Errorf("worker url: %w", err)
		}
		if !slices.Contains([]string{"ws", "wss", "http", "https"}, u.Scheme) || u.Host == "" {
			return fmt.Errorf("worker url %q: want ws, wss, http or https with a host", m.WorkerURL)
		}
	}
	return nil
}

// Execute implements runtime.Module.
func (m *Module) Execute(ctx *runtime.Context, msg runtime.Msg) error {
	switch msg := msg.(type) {
	case RegisterEnclave:
		return m.Keeper.register(ctx, &msg)
	case UnregisterEnclave:
		return m.Keeper.unregister(ctx, ctx.Sender)
	case AllowMRENCLAVE:
		if err := m.requireSudo(ctx); err != nil {
			return err
		}
		return m.setAllowed(ctx, msg.MRENCLAVE, true)
	case DisallowMRENCLAVE:
		if err := m.requireSudo(ctx); err != nil {
			return err
		}
		return m.setAllowed(ctx, msg.MRENCLAVE, false)
	case SetAttestationPolicy:
		if err := m.requireSudo(ctx); err != nil {
			return err
		}
		return m.setPolicy(ctx, msg.Policy)
	case SetCollateral:
		if err := m.requireSudo(ctx); err != nil {
			return err
		}
		return m.setCollateral(ctx, &msg)
	}
	return fmt.Errorf("%w: teerex cannot execute %T", types.ErrUnknownCall, msg)
}

func (m *Module) requireSudo(ctx *runtime.Context) error {
	if m.sudo == nil {
		return fmt.Errorf("%w: no sudo configured", ErrNotSudo)
	}
	ok, err := m.sudo.IsSudo(ctx.Store, ctx.Sender)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotSudo, ctx.Sender)
	}
	return nil
}

// setAllowed adds m to or removes it from the allowlist; doing what is
// already done succeeds without a state change or event.
func (m *Module) setAllowed(ctx *runtime.Context, h types.Hash, allow bool) error {
	l, err := m.Keeper.Allowlist(ctx.Store)
	if err != nil {
		return err
	}
	i, found := slices.BinarySearchFunc(l, h, compare)
	switch {
	case allow && !found:
		l = slices.Insert(l, i, h)
	case !allow && found:
		l = slices.Delete(l, i, i+1)
	default:
		return nil
	}
	if err := m.Keeper.setAllowlist(ctx.Store, l); err != nil {
		return err
	}
	typ := EventAllowed
	if !allow {
		typ = EventDisallowed
	}
	ctx.Emit(typ, "mrenclave", h.String())
	return nil
}

func (m *Module) setPolicy(ctx *runtime.Context, p Policy) error {
	if err := p.Validate(ctx.Dev, ctx.Time); err != nil {
		return err
	}
	if err := m.Keeper.SetPolicy(ctx.Store, p); err != nil {
		return err
	}
	ctx.Emit(EventPolicySet, "tcb_infos", fmt.Sprint(len(p.TCBInfos)), "allow_debug", fmt.Sprint(p.AllowDebug),
		"allow_any_mrenclave", fmt.Sprint(p.AllowAnyMRENCLAVE), "renewal_period_secs", fmt.Sprint(p.RenewalPeriodSecs))
	return nil
}

func (m *Module) setCollateral(ctx *runtime.Context, c *SetCollateral) error {
	p, err := m.Keeper.Policy(ctx.Store)
	if err != nil {
		return err
	}
	for i, d := range c.TCBInfos {
		if err := p.SetTCBInfo(d); err != nil {
			return fmt.Errorf("%w: TCB info %d: %w", ErrInvalidPolicy, i, err)
		}
	}
	if c.QEIdentity != nil {
		p.QEIdentity = c.QEIdentity
	}
	for i, d := range c.PCKCRLs {
		l, err := parseCRL(d)
		if err != nil {
			return fmt.Errorf("%w: PCK CRL %d: %w", ErrInvalidPolicy, i, err)
		}
		p.PCKCRLs = slices.DeleteFunc(slices.Clone(p.PCKCRLs), func(o CRLDoc) bool {
			ol, err := parseCRL(o)
			return err == nil && string(ol.List.RawIssuer) == string(l.List.RawIssuer)
		})
		p.PCKCRLs = append(p.PCKCRLs, d)
	}
	if c.RootCRL != nil {
		p.RootCRL = c.RootCRL
	}
	if err := p.Validate(ctx.Dev, ctx.Time); err != nil {
		return err
	}
	if err := m.Keeper.SetPolicy(ctx.Store, p); err != nil {
		return err
	}
	ctx.Emit(EventCollateral, "tcb_infos", fmt.Sprint(len(c.TCBInfos)), "qe_identity", fmt.Sprint(c.QEIdentity != nil),
		"pck_crls", fmt.Sprint(len(c.PCKCRLs)), "root_crl", fmt.Sprint(c.RootCRL != nil))
	return nil
}

// Precheck implements runtime.Prechecker: CheckTx defers registrations to
// the block after their cheap checks (see Keeper.precheck); other calls
// are cheap and run in CheckTx as usual.
func (m *Module) Precheck(ctx *runtime.Context, msg runtime.Msg) (bool, error) {
	r, ok := msg.(RegisterEnclave)
	if !ok {
		return false, nil
	}
	return true, m.Keeper.precheck(ctx, &r)
}

// EndBlock implements runtime.EndBlocker: it prunes long-expired
// registrations.
func (m *Module) EndBlock(ctx *runtime.Context) error { return m.Keeper.prune(ctx) }

// QueryKey implements runtime.Module.
func (*Module) QueryKey(path []string) ([]byte, error) {
	slot := func(s string) (uint64, error) {
		i, err := strconv.ParseUint(s, 10, 64)
		if err != nil || strconv.FormatUint(i, 10) != s {
			return 0, fmt.Errorf("query path: slot %q: want a decimal number without leading zeros", s)
		}
		return i, nil
	}
	switch {
	case len(path) == 1 && path[0] == "policy":
		return PolicyKey(), nil
	case len(path) == 1 && path[0] == "allowlist":
		return AllowlistKey(), nil
	case len(path) == 1 && path[0] == "enclaves":
		return EnclavesCountKey(), nil
	case len(path) == 2 && path[0] == "enclaves" && len(path[1]) != 2*len(types.Hash{}):
		i, err := slot(path[1])
		if err != nil {
			return nil, err
		}
		return EnclavesSlotKey(i), nil
	case (len(path) == 2 || len(path) == 3) && path[0] == "enclaves":
		h, err := types.ParseHash(path[1])
		if err != nil {
			return nil, fmt.Errorf("query path: mrenclave: %w", err)
		}
		if len(path) == 2 {
			return EnclavesOfCountKey(h), nil
		}
		i, err := slot(path[2])
		if err != nil {
			return nil, err
		}
		return EnclavesOfSlotKey(h, i), nil
	case len(path) == 2 && path[0] == "enclave":
		a, err := tx.ParseAddress(path[1])
		if err != nil {
			return nil, fmt.Errorf("query path: %w", err)
		}
		return EnclaveKey(a), nil
	}
	return nil, errors.New("query path: want /teerex/enclave/<hex signer>, /teerex/enclaves[/<hex mrenclave>][/<slot>], /teerex/policy or /teerex/allowlist")
}

// GenesisState is the module's entry in genesis app_state.
type GenesisState struct {
	Policy    Policy       `json:"policy"`
	Allowlist []types.Hash `json:"allowlist,omitempty"`
}

// DevGenesis is the genesis of a development chain created at genesisTime
// (see DevPolicy). Write it into genesis.json once; do not regenerate it
// per node.
func DevGenesis(genesisTime time.Time) (GenesisState, error) {
	p, err := DevPolicy(genesisTime)
	return GenesisState{Policy: p}, err
}

// ProductionGenesis is the genesis of a production chain with the given
// allowlisted measurements (see ProductionPolicy).
func ProductionGenesis(allow ...types.Hash) GenesisState {
	return GenesisState{Policy: ProductionPolicy(), Allowlist: allow}
}

// InitGenesis implements runtime.Genesis. Without an entry (raw == nil) a
// chain gets ProductionGenesis, a dev chain DevPolicy's rules and roots but
// no collateral: dev collateral cannot be made here, since each validator
// would sign different bytes.
func (m *Module) InitGenesis(ctx *runtime.Context, raw []byte) error {
	var g GenesisState
	if raw == nil {
		g = ProductionGenesis()
		if ctx.Dev {
			p, err := DevPolicy(ctx.Time)
			if err != nil {
				return fmt.Errorf("teerex genesis: %w", err)
			}
			p.TCBInfos, p.QEIdentity, p.PCKCRLs, p.RootCRL = nil, nil, nil, nil
			g.Policy = p
		}
	} else if err := json.Unmarshal(raw, &g); err != nil {
		return fmt.Errorf("teerex genesis: %w", err)
	}
	if err := g.Policy.Validate(ctx.Dev, ctx.Time); err != nil {
		return fmt.Errorf("teerex genesis: %w", err)
	}
	if err := m.Keeper.SetPolicy(ctx.Store, g.Policy); err != nil {
		return err
	}
	l := slices.Clone(g.Allowlist)
	slices.SortFunc(l, compare)
	if len(slices.Compact(l)) != len(g.Allowlist) {
		return errors.New("teerex genesis: allowlist has duplicates")
	}
	return m.Keeper.setAllowlist(ctx.Store, l)
}
