package keeper

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/dcap"
	"github.com/integritee-go/integritee/attestation/ias"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Keeper reads and writes the module's state. It holds no state itself, so
// the zero Keeper is ready to use; other modules reach it through their own
// small interfaces (e.g. the bridge's Registry).
type Keeper struct{}

// Policy returns the attestation policy.
func (Keeper) Policy(r store.Reader) (teerex.Policy, error) {
	var p teerex.Policy
	ok, err := runtime.Get(r, teerex.PolicyKey(), &p)
	if err == nil && !ok {
		err = errors.New("teerex: attestation policy missing from state")
	}
	return p, err
}

// SetPolicy stores p; callers validate it first.
func (Keeper) SetPolicy(kv store.KV, p teerex.Policy) error {
	return runtime.Put(kv, teerex.PolicyKey(), p)
}

// Allowlist returns the allowlisted measurements.
func (Keeper) Allowlist(r store.Reader) (teerex.MRENCLAVEs, error) {
	var l teerex.MRENCLAVEs
	_, err := runtime.Get(r, teerex.AllowlistKey(), &l)
	return l, err
}

func (k Keeper) setAllowlist(kv store.KV, l teerex.MRENCLAVEs) error {
	if len(l) == 0 {
		kv.Delete(teerex.AllowlistKey())
		return nil
	}
	return runtime.Put(kv, teerex.AllowlistKey(), l)
}

// Allowed reports whether measurement m may register under policy p.
func (k Keeper) Allowed(r store.Reader, p *teerex.Policy, m types.Hash) (bool, error) {
	if p.AllowAnyMRENCLAVE {
		return true, nil
	}
	l, err := k.Allowlist(r)
	return p.Allows(l, m), err
}

// Enclave returns the registration of signer, expired or not; an absent
// one gives an error wrapping ErrNotRegistered.
func (Keeper) Enclave(r store.Reader, signer tx.Address) (teerex.Enclave, error) {
	var e teerex.Enclave
	ok, err := runtime.Get(r, teerex.EnclaveKey(signer), &e)
	if err == nil && !ok {
		err = fmt.Errorf("%w: %s", teerex.ErrNotRegistered, signer)
	}
	return e, err
}

// Active returns the registration of signer if it may act at time now:
// registered, attested no longer than the renewal period ago, seen alive
// (registered or kept alive) within the liveness period if the policy has
// one, and still acceptable to the current policy (its measurement
// allowed, not a debug enclave unless debug is allowed), so that
// disallowing a measurement deactivates its enclaves at once. Otherwise
// the error wraps ErrNotRegistered, ErrExpired, ErrSilent,
// ErrMRENCLAVENotAllowed or ErrDebugEnclave.
func (k Keeper) Active(r store.Reader, signer tx.Address, now time.Time) (teerex.Enclave, error) {
	e, err := k.Enclave(r, signer)
	if err != nil {
		return e, err
	}
	p, err := k.Policy(r)
	if err != nil {
		return e, err
	}
	var l teerex.MRENCLAVEs
	if !p.AllowAnyMRENCLAVE {
		if l, err = k.Allowlist(r); err != nil {
			return e, err
		}
	}
	return e, e.CheckActive(&p, l, now)
}

// Count returns the number of registrations, expired ones included.
func (Keeper) Count(r store.Reader) (uint64, error) { return allEnclaves.length(r) }

// CountOf returns the number of registrations with measurement m.
func (Keeper) CountOf(r store.Reader, m types.Hash) (uint64, error) { return enclavesOf(m).length(r) }

// SignerAt returns the signer in slot i (below Count) of all
// registrations. Slots carry no meaning: removing a registration moves
// the last one into its slot.
func (Keeper) SignerAt(r store.Reader, i uint64) (tx.Address, error) { return allEnclaves.at(r, i) }

// SignerOfAt returns the signer in slot i (below CountOf) of the
// registrations with measurement m.
func (Keeper) SignerOfAt(r store.Reader, m types.Hash, i uint64) (tx.Address, error) {
	return enclavesOf(m).at(r, i)
}

// EachEnclave calls fn with the signer of every registration, in slot
// order, until fn returns false or an error.
func (Keeper) EachEnclave(r store.Reader, fn func(tx.Address) (bool, error)) error {
	return allEnclaves.each(r, fn)
}

// EachEnclaveOf calls fn with the signer of every registration with
// measurement m, in slot order, until fn returns false or an error.
func (Keeper) EachEnclaveOf(r store.Reader, m types.Hash, fn func(tx.Address) (bool, error)) error {
	return enclavesOf(m).each(r, fn)
}

// CountActiveOf counts the registrations with measurement m that are
// Active at now, up to limit: a caller that needs to know whether there is
// more than one asks for 2 and reads no further than it must.
func (k Keeper) CountActiveOf(r store.Reader, m types.Hash, now time.Time, limit int) (int, error) {
	n := 0
	err := k.EachEnclaveOf(r, m, func(s tx.Address) (bool, error) {
		if _, err := k.Active(r, s, now); err == nil {
			n++
		} else if !errors.As(err, new(*types.Error)) {
			return false, err
		}
		return n < limit, nil
	})
	return n, err
}

// ActiveOf returns the registrations with measurement m that are Active
// at now, in slot order: the sidechain's voters are drawn from them. It
// reads every registration of m, so its cost is bounded by the registry.
func (k Keeper) ActiveOf(r store.Reader, m types.Hash, now time.Time) ([]teerex.Enclave, error) {
	var out []teerex.Enclave
	err := k.EachEnclaveOf(r, m, func(s tx.Address) (bool, error) {
		e, err := k.Active(r, s, now)
		switch {
		case err == nil:
			out = append(out, e)
		case !errors.As(err, new(*types.Error)):
			return false, err
		}
		return true, nil
	})
	return out, err
}

// Verify verifies evidence under the stored policy's roots and collateral
// at time at and returns what it establishes, without applying the
// policy's acceptance rules or the signer binding. Registration runs it
// first; it is exported so that tools can tell why evidence fails.
func (k Keeper) Verify(r store.Reader, ev *teerex.Evidence, at time.Time) (*attestation.Result, error) {
	p, err := k.Policy(r)
	if err != nil {
		return nil, err
	}
	return p.Verify(ev, at)
}

// register verifies msg for the sender of ctx and stores (or renews) the
// registration. The order is: evidence (roots, signatures, collateral at
// block time), binding to the sender and shielding key, binding to this
// chain's genesis, then the policy's acceptance rules; the first failure is
// returned and nothing is written.
func (k Keeper) register(ctx *runtime.Context, msg *teerex.RegisterEnclave) error {
	p, err := k.Policy(ctx.Store)
	if err != nil {
		return err
	}
	// The wall clock times the verification for the node's metrics
	// only; the state depends on ctx.Time alone.
	start := time.Now()
	res, err := p.Verify(&msg.Attestation, ctx.Time)
	ctx.ObserveAttestation(string(msg.Attestation.Kind), time.Since(start), err)
	if err != nil {
		return err
	}
	want := teerex.ReportData(ctx.Sender, msg.ShieldingKey, ctx.Genesis)
	if !bytes.Equal(res.ReportData[:32], want[:32]) {
		return fmt.Errorf("%w: report data %x, want sha256(sender %s || shielding key) %x",
			teerex.ErrSenderNotAttested, res.ReportData[:32], ctx.Sender, want[:32])
	}
	if !bytes.Equal(res.ReportData[32:], want[32:]) {
		return fmt.Errorf("%w: report data commits to genesis %x, this chain's is %x",
			teerex.ErrWrongChain, res.ReportData[32:], want[32:])
	}
	if err := p.Accept(res, ctx.Time); err != nil {
		return err
	}
	m := types.Hash(res.MRENCLAVE)
	ok, err := k.Allowed(ctx.Store, &p, m)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s is not allowlisted", teerex.ErrMRENCLAVENotAllowed, m)
	}

	old, err := k.Enclave(ctx.Store, ctx.Sender)
	renewal := err == nil
	if err != nil && !errors.Is(err, teerex.ErrNotRegistered) {
		return err
	}
	e := teerex.Enclave{
		Signer:           ctx.Sender,
		Kind:             res.Kind,
		MRENCLAVE:        m,
		MRSIGNER:         types.Hash(res.MRSIGNER),
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
	var prev *teerex.Enclave
	if renewal {
		e.RegisteredHeight = old.RegisteredHeight
		prev = &old
	}
	if err := k.put(ctx.Store, e, prev); err != nil {
		return err
	}
	typ := teerex.EventRegistered
	if renewal {
		typ = teerex.EventRenewed
	}
	ctx.Emit(typ, "signer", e.Signer.String(), "mrenclave", e.MRENCLAVE.String(), "kind", string(e.Kind),
		"tcb_status", string(e.TCBStatus), "worker_url", e.WorkerURL)
	return nil
}

// precheck runs the checks of a registration that cost next to nothing,
// for CheckTx, which charges nothing: the evidence must parse, and what
// it claims (unverified) must pass the binding to the sender, shielding
// key and this chain and the allowlist. Each is a check that register
// makes too, on the same fields once verified, so precheck refuses only
// registrations bound to fail; a forgery that claims the right things
// passes, to fail verification in the block and pay its fee there.
func (k Keeper) precheck(ctx *runtime.Context, msg *teerex.RegisterEnclave) error {
	p, err := k.Policy(ctx.Store)
	if err != nil {
		return err
	}
	var body struct {
		mrenclave  [32]byte
		reportData [64]byte
	}
	switch msg.Attestation.Kind {
	case attestation.KindDCAP:
		q, err := dcap.ParseQuote(msg.Attestation.Quote)
		if err != nil {
			return teerex.Classify(err)
		}
		if q.Body == nil {
			return fmt.Errorf("%w: %w: only SGX enclave quotes", teerex.ErrUnsupportedEvidence, dcap.ErrUnsupportedTEE)
		}
		body.mrenclave, body.reportData = q.Body.MRENCLAVE, q.Body.ReportData
	default:
		r, err := ias.ParseReport(msg.Attestation.Report)
		if err != nil {
			return teerex.Classify(err)
		}
		body.mrenclave, body.reportData = r.Quote.Body.MRENCLAVE, r.Quote.Body.ReportData
	}
	want := teerex.ReportData(ctx.Sender, msg.ShieldingKey, ctx.Genesis)
	if !bytes.Equal(body.reportData[:32], want[:32]) {
		return fmt.Errorf("%w: report data claims %x, want sha256(sender %s || shielding key) %x",
			teerex.ErrSenderNotAttested, body.reportData[:32], ctx.Sender, want[:32])
	}
	if !bytes.Equal(body.reportData[32:], want[32:]) {
		return fmt.Errorf("%w: report data claims genesis %x, this chain's is %x",
			teerex.ErrWrongChain, body.reportData[32:], want[32:])
	}
	ok, err := k.Allowed(ctx.Store, &p, body.mrenclave)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s is not allowlisted", teerex.ErrMRENCLAVENotAllowed, types.Hash(body.mrenclave))
	}
	return nil
}

// unregister removes the registration of signer.
func (k Keeper) unregister(ctx *runtime.Context, signer tx.Address) error {
	e, err := k.remove(ctx.Store, signer)
	if err != nil {
		return err
	}
	ctx.Emit(teerex.EventUnregistered, "signer", signer.String(), "mrenclave", e.MRENCLAVE.String())
	return nil
}

// keepAlive records that the sender, a registered enclave, is alive at the
// block time. Only the renewal period bounds it: an enclave silent for
// longer than the liveness period revives itself by a keep_alive, while
// an expired one must register again (with a fresh attestation). The
// registration's attestation, heights and expiry index entry stay as
// they are.
func (k Keeper) keepAlive(ctx *runtime.Context) error {
	e, err := k.Enclave(ctx.Store, ctx.Sender)
	if err != nil {
		return err
	}
	p, err := k.Policy(ctx.Store)
	if err != nil {
		return err
	}
	if exp := e.ExpiresAt(p.RenewalPeriod()); ctx.Time.After(exp) {
		return fmt.Errorf("%w: %s attested %s, expired %s: register again", teerex.ErrExpired, e.Signer,
			e.Attested().Format(time.RFC3339), exp.Format(time.RFC3339))
	}
	prev := e
	e.AliveAt = ctx.Time.UnixNano()
	if err := k.put(ctx.Store, e, &prev); err != nil {
		return err
	}
	ctx.Emit(teerex.EventAlive, "signer", e.Signer.String())
	return nil
}

// removeBy removes the registration of signer on behalf of the sender
// (sudo), e.g. an enclave whose machine is lost, at once rather than
// after the liveness or renewal period.
func (k Keeper) removeBy(ctx *runtime.Context, signer tx.Address) error {
	e, err := k.remove(ctx.Store, signer)
	if err != nil {
		return err
	}
	ctx.Emit(teerex.EventRemoved, "signer", signer.String(), "mrenclave", e.MRENCLAVE.String(), "by", ctx.Sender.String())
	return nil
}

// put stores registration e and indexes it; prev is the registration it
// renews, if any.
func (Keeper) put(kv store.KV, e teerex.Enclave, prev *teerex.Enclave) error {
	if prev != nil {
		kv.Delete(expiryKey(prev.AttestedAt, prev.Signer))
		if prev.MRENCLAVE != e.MRENCLAVE {
			if err := enclavesOf(prev.MRENCLAVE).remove(kv, e.Signer); err != nil {
				return err
			}
		}
	}
	if err := runtime.Put(kv, teerex.EnclaveKey(e.Signer), e); err != nil {
		return err
	}
	if err := runtime.Put(kv, expiryKey(e.AttestedAt, e.Signer), e.Signer); err != nil {
		return err
	}
	if err := allEnclaves.add(kv, e.Signer); err != nil {
		return err
	}
	return enclavesOf(e.MRENCLAVE).add(kv, e.Signer)
}

// remove deletes the registration of signer and its index entries; an
// absent one gives an error wrapping ErrNotRegistered.
func (k Keeper) remove(kv store.KV, signer tx.Address) (teerex.Enclave, error) {
	e, err := k.Enclave(kv, signer)
	if err != nil {
		return e, err
	}
	kv.Delete(teerex.EnclaveKey(signer))
	kv.Delete(expiryKey(e.AttestedAt, signer))
	if err := allEnclaves.remove(kv, signer); err != nil {
		return e, err
	}
	if err := enclavesOf(e.MRENCLAVE).remove(kv, signer); err != nil {
		return e, err
	}
	return e, nil
}

func compare[T ~[32]byte](a, b T) int { return bytes.Compare(a[:], b[:]) }
