package teerex

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/tx"
)

var (
	keyPolicy          = []byte(Name + "/policy")
	keyAllowlist       = []byte(Name + "/allowlist")
	keyAll             = []byte(Name + "/all")
	keyEnclavePrefix   = []byte(Name + "/e/")
	keyMRENCLAVEPrefix = []byte(Name + "/m/")
)

// PolicyKey is the state key of the attestation policy.
func PolicyKey() []byte { return slices.Clone(keyPolicy) }

// AllowlistKey is the state key of the MRENCLAVE allowlist (MRENCLAVEs).
func AllowlistKey() []byte { return slices.Clone(keyAllowlist) }

// EnclavesKey is the state key of the list of all registered signers
// (Signers), expired ones included.
func EnclavesKey() []byte { return slices.Clone(keyAll) }

// EnclaveKey is the state key of the registration of signer.
func EnclaveKey(signer tx.Address) []byte { return slices.Concat(keyEnclavePrefix, signer[:]) }

// EnclavesOfKey is the state key of the signers registered with
// measurement m (Signers): the enclaves that may serve the shard m.
func EnclavesOfKey(m Hash) []byte { return slices.Concat(keyMRENCLAVEPrefix, m[:]) }

// Keeper reads and writes the module's state. It holds no state itself, so
// the zero Keeper is ready to use; other modules reach it through their own
// small interfaces (e.g. the bridge's Registry).
type Keeper struct{}

// Policy returns the attestation policy.
func (Keeper) Policy(r store.Reader) (Policy, error) {
	var p Policy
	ok, err := runtime.Get(r, keyPolicy, &p)
	if err == nil && !ok {
		err = errors.New("teerex: attestation policy missing from state")
	}
	return p, err
}

// SetPolicy stores p; callers validate it first.
func (Keeper) SetPolicy(kv store.KV, p Policy) error { return runtime.Put(kv, keyPolicy, p) }

// Allowlist returns the allowlisted measurements.
func (Keeper) Allowlist(r store.Reader) (MRENCLAVEs, error) {
	var l MRENCLAVEs
	_, err := runtime.Get(r, keyAllowlist, &l)
	return l, err
}

func (k Keeper) setAllowlist(kv store.KV, l MRENCLAVEs) error {
	if len(l) == 0 {
		kv.Delete(keyAllowlist)
		return nil
	}
	return runtime.Put(kv, keyAllowlist, l)
}

// Allowed reports whether measurement m may register under policy p.
func (k Keeper) Allowed(r store.Reader, p *Policy, m Hash) (bool, error) {
	if p.AllowAnyMRENCLAVE {
		return true, nil
	}
	l, err := k.Allowlist(r)
	if err != nil {
		return false, err
	}
	_, found := slices.BinarySearchFunc(l, m, compare)
	return found, nil
}

// Enclave returns the registration of signer, expired or not; an absent
// one gives an error wrapping ErrNotRegistered.
func (Keeper) Enclave(r store.Reader, signer tx.Address) (Enclave, error) {
	var e Enclave
	ok, err := runtime.Get(r, EnclaveKey(signer), &e)
	if err == nil && !ok {
		err = fmt.Errorf("%w: %s", ErrNotRegistered, signer)
	}
	return e, err
}

// Active returns the registration of signer if it may act at time now:
// registered, attested no longer than the renewal period ago, and still
// acceptable to the current policy (its measurement allowed, not a debug
// enclave unless debug is allowed), so that disallowing a measurement
// deactivates its enclaves at once. Otherwise the error wraps
// ErrNotRegistered, ErrExpired, ErrMRENCLAVENotAllowed or ErrDebugEnclave.
func (k Keeper) Active(r store.Reader, signer tx.Address, now time.Time) (Enclave, error) {
	e, err := k.Enclave(r, signer)
	if err != nil {
		return e, err
	}
	p, err := k.Policy(r)
	if err != nil {
		return e, err
	}
	if exp := e.ExpiresAt(p.RenewalPeriod()); now.After(exp) {
		return e, fmt.Errorf("%w: %s attested %s, expired %s", ErrExpired, signer,
			e.Attested().Format(time.RFC3339), exp.Format(time.RFC3339))
	}
	if e.Debug && !p.AllowDebug {
		return e, fmt.Errorf("%w: %s", ErrDebugEnclave, signer)
	}
	ok, err := k.Allowed(r, &p, e.MRENCLAVE)
	if err != nil {
		return e, err
	}
	if !ok {
		return e, fmt.Errorf("%w: %s of %s", ErrMRENCLAVENotAllowed, e.MRENCLAVE, signer)
	}
	return e, nil
}

// Enclaves returns the signers of all registrations, expired included.
func (Keeper) Enclaves(r store.Reader) (Signers, error) {
	var s Signers
	_, err := runtime.Get(r, keyAll, &s)
	return s, err
}

// EnclavesOf returns the signers registered with measurement m.
func (Keeper) EnclavesOf(r store.Reader, m Hash) (Signers, error) {
	var s Signers
	_, err := runtime.Get(r, EnclavesOfKey(m), &s)
	return s, err
}

// Verify verifies evidence under the stored policy's roots and collateral
// at time at and returns what it establishes, without applying the
// policy's acceptance rules or the signer binding. Registration runs it
// first; it is exported so that tools can tell why evidence fails.
func (k Keeper) Verify(r store.Reader, ev *Evidence, at time.Time) (*attestation.Result, error) {
	p, err := k.Policy(r)
	if err != nil {
		return nil, err
	}
	return verifyEvidence(&p, ev, at)
}

// register verifies msg for the sender of ctx and stores (or renews) the
// registration. The order is: evidence (roots, signatures, collateral at
// block time), binding to the sender and shielding key, binding to this
// chain's genesis, then the policy's acceptance rules; the first failure is
// returned and nothing is written.
func (k Keeper) register(ctx *runtime.Context, msg *RegisterEnclave) error {
	p, err := k.Policy(ctx.Store)
	if err != nil {
		return err
	}
	res, err := verifyEvidence(&p, &msg.Attestation, ctx.Time)
	if err != nil {
		return err
	}
	want := ReportData(ctx.Sender, msg.ShieldingKey, ctx.Genesis)
	if !bytes.Equal(res.ReportData[:32], want[:32]) {
		return fmt.Errorf("%w: report data %x, want sha256(sender %s || shielding key) %x",
			ErrSenderNotAttested, res.ReportData[:32], ctx.Sender, want[:32])
	}
	if !bytes.Equal(res.ReportData[32:], want[32:]) {
		return fmt.Errorf("%w: report data commits to genesis %x, this chain's is %x",
			ErrWrongChain, res.ReportData[32:], want[32:])
	}
	ap := p.attestationPolicy()
	if err := ap.Check(res, ctx.Time); err != nil {
		return classify(err)
	}
	m := Hash(res.MRENCLAVE)
	ok, err := k.Allowed(ctx.Store, &p, m)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s is not allowlisted", ErrMRENCLAVENotAllowed, m)
	}

	old, err := k.Enclave(ctx.Store, ctx.Sender)
	renewal := err == nil
	if err != nil && !errors.Is(err, ErrNotRegistered) {
		return err
	}
	e := Enclave{
		Signer:           ctx.Sender,
		Kind:             res.Kind,
		MRENCLAVE:        m,
		MRSIGNER:         Hash(res.MRSIGNER),
		ISVProdID:        res.ISVProdID,
		ISVSVN:           res.ISVSVN,
		TCBStatus:        res.TCBStatus,
		AdvisoryIDs:      res.AdvisoryIDs,
		Debug:            res.Debug(),
		ShieldingKeyHash: sha256.Sum256(msg.ShieldingKey),
		WorkerURL:        msg.WorkerURL,
		AttestedAt:       ctx.Time.UnixNano(),
		RegisteredHeight: ctx.Height,
		AttestedHeight:   ctx.Height,
	}
	if res.Kind == attestation.KindIAS {
		e.EvidenceTime = res.Timestamp.UnixNano()
	}
	if len(e.AdvisoryIDs) == 0 {
		e.AdvisoryIDs = nil
	}
	if renewal {
		e.RegisteredHeight = old.RegisteredHeight
		if old.MRENCLAVE != e.MRENCLAVE {
			if err := k.index(ctx.Store, EnclavesOfKey(old.MRENCLAVE), e.Signer, false); err != nil {
				return err
			}
		}
	}
	if err := runtime.Put(ctx.Store, EnclaveKey(e.Signer), e); err != nil {
		return err
	}
	if err := k.index(ctx.Store, keyAll, e.Signer, true); err != nil {
		return err
	}
	if err := k.index(ctx.Store, EnclavesOfKey(e.MRENCLAVE), e.Signer, true); err != nil {
		return err
	}
	typ := EventRegistered
	if renewal {
		typ = EventRenewed
	}
	ctx.Emit(typ, "signer", e.Signer.String(), "mrenclave", e.MRENCLAVE.String(), "kind", string(e.Kind),
		"tcb_status", string(e.TCBStatus), "worker_url", e.WorkerURL)
	return nil
}

// unregister removes the registration of signer.
func (k Keeper) unregister(ctx *runtime.Context, signer tx.Address) error {
	e, err := k.Enclave(ctx.Store, signer)
	if err != nil {
		return err
	}
	ctx.Store.Delete(EnclaveKey(signer))
	if err := k.index(ctx.Store, keyAll, signer, false); err != nil {
		return err
	}
	if err := k.index(ctx.Store, EnclavesOfKey(e.MRENCLAVE), signer, false); err != nil {
		return err
	}
	ctx.Emit(EventUnregistered, "signer", signer.String(), "mrenclave", e.MRENCLAVE.String())
	return nil
}

// index adds signer to (or removes it from) the sorted list at key; an
// empty list is deleted.
func (Keeper) index(kv store.KV, key []byte, signer tx.Address, add bool) error {
	var s Signers
	if _, err := runtime.Get(kv, key, &s); err != nil {
		return err
	}
	i, found := slices.BinarySearchFunc(s, signer, compare)
	switch {
	case add && !found:
		s = slices.Insert(s, i, signer)
	case !add && found:
		s = slices.Delete(s, i, i+1)
	default:
		return nil
	}
	if len(s) == 0 {
		kv.Delete(key)
		return nil
	}
	return runtime.Put(kv, key, s)
}

func compare[T ~[32]byte](a, b T) int { return bytes.Compare(a[:], b[:]) }
