// Package keeper is the teerex module's state machine: its Keeper reads and
// writes the registry in the chain's state, and its Module executes the
// calls of package teerex (the wire types, rules and state keys that clients
// and enclaves use without linking the node).
package keeper

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Sudo tells whether an account is the chain's sudo key (accountskeeper.Keeper).
type Sudo interface {
	IsSudo(r store.Reader, a tx.Address) (bool, error)
}

// Module is the teerex module.
type Module struct {
	Keeper    Keeper
	sudo      Sudo
	devPolicy *teerex.Policy
}

var (
	_ runtime.Module     = (*Module)(nil)
	_ runtime.Genesis    = (*Module)(nil)
	_ runtime.EndBlocker = (*Module)(nil)
	_ runtime.Prechecker = (*Module)(nil)
)

// New returns the module; sudo authorises the governance calls. devPolicy,
// if not nil, is the policy of a dev chain whose genesis has no teerex
// entry (the node passes the dev PKI's roots and rules this way, so that
// the module itself knows no dev PKI).
func New(sudo Sudo, devPolicy *teerex.Policy) *Module {
	return &Module{sudo: sudo, devPolicy: devPolicy}
}

// Name implements runtime.Module.
func (*Module) Name() string { return teerex.Name }

// DecodeCall implements runtime.Module. It checks structure and bounds
// only; certificates and quotes are parsed when the call executes.
func (*Module) DecodeCall(call tx.Call) (runtime.Msg, error) {
	malformed := func(err error) (runtime.Msg, error) {
		return nil, fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
	}
	switch call.Method {
	case teerex.MethodRegisterEnclave:
		var m teerex.RegisterEnclave
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		if err := m.Validate(); err != nil {
			return malformed(err)
		}
		return m, nil
	case teerex.MethodUnregisterEnclave:
		var m teerex.UnregisterEnclave
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		return m, nil
	case teerex.MethodKeepAlive:
		var m teerex.KeepAlive
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		return m, nil
	case teerex.MethodRemoveEnclave:
		var m teerex.RemoveEnclave
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		return m, nil
	case teerex.MethodAllowMRENCLAVE:
		var m teerex.AllowMRENCLAVE
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		return m, nil
	case teerex.MethodDisallowMRENCLAVE:
		var m teerex.DisallowMRENCLAVE
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		return m, nil
	case teerex.MethodSetAttestationPolicy:
		var m teerex.SetAttestationPolicy
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		return m, nil
	case teerex.MethodSetCollateral:
		var m teerex.SetCollateral
		if err := call.DecodeArgs(&m); err != nil {
			return malformed(err)
		}
		if len(m.TCBInfos) == 0 && m.QEIdentity == nil && len(m.PCKCRLs) == 0 && m.RootCRL == nil {
			return malformed(errors.New("set_collateral without collateral"))
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: %s.%s", types.ErrUnknownCall, teerex.Name, call.Method)
}

// Execute implements runtime.Module.
func (m *Module) Execute(ctx *runtime.Context, msg runtime.Msg) error {
	switch msg := msg.(type) {
	case teerex.RegisterEnclave:
		return m.Keeper.register(ctx, &msg)
	case teerex.UnregisterEnclave:
		return m.Keeper.unregister(ctx, ctx.Sender)
	case teerex.KeepAlive:
		return m.Keeper.keepAlive(ctx)
	case teerex.RemoveEnclave:
		if err := m.requireSudo(ctx); err != nil {
			return err
		}
		return m.Keeper.removeBy(ctx, msg.Signer)
	case teerex.AllowMRENCLAVE:
		if err := m.requireSudo(ctx); err != nil {
			return err
		}
		return m.setAllowed(ctx, msg.MRENCLAVE, true)
	case teerex.DisallowMRENCLAVE:
		if err := m.requireSudo(ctx); err != nil {
			return err
		}
		return m.setAllowed(ctx, msg.MRENCLAVE, false)
	case teerex.SetAttestationPolicy:
		if err := m.requireSudo(ctx); err != nil {
			return err
		}
		return m.setPolicy(ctx, msg.Policy)
	case teerex.SetCollateral:
		if err := m.requireSudo(ctx); err != nil {
			return err
		}
		return m.setCollateral(ctx, &msg)
	}
	return fmt.Errorf("%w: teerex cannot execute %T", types.ErrUnknownCall, msg)
}

func (m *Module) requireSudo(ctx *runtime.Context) error {
	if m.sudo == nil {
		return fmt.Errorf("%w: no sudo configured", teerex.ErrNotSudo)
	}
	ok, err := m.sudo.IsSudo(ctx.Store, ctx.Sender)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", teerex.ErrNotSudo, ctx.Sender)
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
	typ := teerex.EventAllowed
	if !allow {
		typ = teerex.EventDisallowed
	}
	ctx.Emit(typ, "mrenclave", h.String())
	return nil
}

func (m *Module) setPolicy(ctx *runtime.Context, p teerex.Policy) error {
	if err := p.Validate(ctx.Dev, ctx.Time); err != nil {
		return err
	}
	if err := m.Keeper.SetPolicy(ctx.Store, p); err != nil {
		return err
	}
	ctx.Emit(teerex.EventPolicySet, "tcb_infos", fmt.Sprint(len(p.TCBInfos)), "allow_debug", fmt.Sprint(p.AllowDebug),
		"allow_any_mrenclave", fmt.Sprint(p.AllowAnyMRENCLAVE), "renewal_period_secs", fmt.Sprint(p.RenewalPeriodSecs),
		"liveness_secs", fmt.Sprint(p.LivenessSecs))
	return nil
}

func (m *Module) setCollateral(ctx *runtime.Context, c *teerex.SetCollateral) error {
	p, err := m.Keeper.Policy(ctx.Store)
	if err != nil {
		return err
	}
	for i, d := range c.TCBInfos {
		if err := p.SetTCBInfo(d); err != nil {
			return fmt.Errorf("%w: TCB info %d: %w", teerex.ErrInvalidPolicy, i, err)
		}
	}
	if c.QEIdentity != nil {
		p.QEIdentity = c.QEIdentity
	}
	for i, d := range c.PCKCRLs {
		l, err := d.Parse()
		if err != nil {
			return fmt.Errorf("%w: PCK CRL %d: %w", teerex.ErrInvalidPolicy, i, err)
		}
		p.PCKCRLs = slices.DeleteFunc(slices.Clone(p.PCKCRLs), func(o teerex.CRLDoc) bool {
			ol, err := o.Parse()
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
	ctx.Emit(teerex.EventCollateral, "tcb_infos", fmt.Sprint(len(c.TCBInfos)), "qe_identity", fmt.Sprint(c.QEIdentity != nil),
		"pck_crls", fmt.Sprint(len(c.PCKCRLs)), "root_crl", fmt.Sprint(c.RootCRL != nil))
	return nil
}

// Precheck implements runtime.Prechecker: CheckTx defers registrations to
// the block after their cheap checks (see Keeper.precheck); other calls
// are cheap and run in CheckTx as usual.
func (m *Module) Precheck(ctx *runtime.Context, msg runtime.Msg) (bool, error) {
	r, ok := msg.(teerex.RegisterEnclave)
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
		return teerex.PolicyKey(), nil
	case len(path) == 1 && path[0] == "allowlist":
		return teerex.AllowlistKey(), nil
	case len(path) == 1 && path[0] == "enclaves":
		return teerex.EnclavesCountKey(), nil
	case len(path) == 2 && path[0] == "enclaves" && len(path[1]) != 2*len(types.Hash{}):
		i, err := slot(path[1])
		if err != nil {
			return nil, err
		}
		return teerex.EnclavesSlotKey(i), nil
	case (len(path) == 2 || len(path) == 3) && path[0] == "enclaves":
		h, err := types.ParseHash(path[1])
		if err != nil {
			return nil, fmt.Errorf("query path: mrenclave: %w", err)
		}
		if len(path) == 2 {
			return teerex.EnclavesOfCountKey(h), nil
		}
		i, err := slot(path[2])
		if err != nil {
			return nil, err
		}
		return teerex.EnclavesOfSlotKey(h, i), nil
	case len(path) == 2 && path[0] == "enclave":
		a, err := tx.ParseAddress(path[1])
		if err != nil {
			return nil, fmt.Errorf("query path: %w", err)
		}
		return teerex.EnclaveKey(a), nil
	}
	return nil, errors.New("query path: want /teerex/enclave/<hex signer>, /teerex/enclaves[/<hex mrenclave>][/<slot>], /teerex/policy or /teerex/allowlist")
}
