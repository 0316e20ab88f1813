package enclave

import (
	"crypto/sha256"
	"errors"
	"runtime"
	"sync"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/internal/ed25519x"
)

// invalidReason classifies a rejection by the runtime.
func invalidReason(err error) string {
	switch {
	case errors.Is(err, stf.ErrBadSignature):
		return protocol.ReasonBadSignature
	case errors.Is(err, stf.ErrStaleNonce):
		return protocol.ReasonStaleNonce
	case errors.Is(err, stf.ErrFutureNonce):
		return protocol.ReasonFutureNonce
	}
	return protocol.ReasonMalformed
}

// publicFailures are the STF errors whose text may reach the host: fixed
// strings without amounts. Any other failure is reported as
// protocol.ReasonFailed, since an application's error text may hold
// secrets (the balances STF's own insufficient-funds error carries the
// balance).
var publicFailures = []error{
	stf.ErrUnknownCall, stf.ErrNotOwner, stf.ErrInsufficientFunds, stf.ErrOverflow, stf.ErrZeroAmount, stf.ErrDevOnly,
}

func failedReason(err error) string {
	for _, f := range publicFailures {
		if errors.Is(err, f) {
			return f.Error()
		}
	}
	return protocol.ReasonFailed
}

// submitCalls executes a batch of direct calls as one shard block (see
// protocol.SubmitCalls for the host's duties).
func (e *Enclave) submitCalls(r *protocol.SubmitCalls) (protocol.Reply, error) {
	if len(r.Calls) == 0 || len(r.Calls) > protocol.MaxSubmitCalls {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "%d calls, want 1..%d", len(r.Calls), protocol.MaxSubmitCalls)
	}
	if e.lc.Trusted() == nil {
		// A checkpoint needs the light client's header.
		return nil, protocol.Errorf(protocol.CodeNotInitialized, "no chain block processed yet")
	}
	if e.repl.node != nil {
		return e.proposeDirect(r)
	}
	if err := e.outsideLog(); err != nil {
		return nil, err
	}
	if !e.serving(e.lc.Height()) {
		// Without replication, calls applied here would be missing from
		// the state of the release that serves the shard now.
		return nil, protocol.Errorf(protocol.CodeForbidden, "this release does not serve the shard at height %d: MRENCLAVE %x does",
			e.lc.Height(), e.config.at(e.lc.Height()))
	}
	return e.applyDirect(e.prepareCalls(r.Calls), r.Timestamp, e.signerAddress())
}

// preparedCall is a direct call as its shard's log carries it: decrypted
// and authenticated once, by the enclave that received it, or the reason
// it is invalid, which does not depend on the state either. Applying it
// needs neither the shielding key nor a signature check, only the checks
// that depend on the state (nonce, the STF's own), in log order.
type preparedCall struct {
	// CiphertextHash is sha256 of the call's ciphertext, which its leaf
	// commits to (sidechain.CallLeaf), as clients expect.
	CiphertextHash [32]byte `cbor:"ct"`
	// Reason, if set, is why the call is invalid (a protocol.Reason*).
	Reason string        `cbor:"reason,omitempty"`
	Call   *stf.Verified `cbor:"call,omitempty"`
	// MRENCLAVE is the measurement the call is signed for. During an
	// upgrade the serving measurement changes at the enactment height,
	// which the call may be applied after: it applies only if MRENCLAVE
	// serves at the height it is applied at, as if verified then.
	MRENCLAVE [32]byte `cbor:"m,omitempty"`
}

// prepareCalls decrypts and authenticates a batch's calls on every core:
// HPKE decapsulation and the signature check are the costly part of a call
// and independent of the other calls and of the state, unlike applying
// them, which goes in order.
func (e *Enclave) prepareCalls(calls [][]byte) []preparedCall {
	out := make([]preparedCall, len(calls))
	targets, rule := e.callTargets(), e.callRule()
	if rule != ed25519x.Cofactored {
		// A batch checks the cofactored equation only.
		for i, ct := range calls {
			out[i] = e.prepareCall(targets, rule, ct)
		}
		return out
	}
	// Contiguous chunks of at most sigBatch calls, taken by one worker
	// per core: each chunk's signatures are checked as one batch.
	workers := min(runtime.GOMAXPROCS(0), len(calls))
	size := min(sigBatch, (len(calls)+workers-1)/workers)
	next := make(chan int, (len(calls)+size-1)/size)
	for lo := 0; lo < len(calls); lo += size {
		next <- lo
	}
	close(next)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for lo := range next {
				hi := min(lo+size, len(calls))
				e.prepareChunk(targets, calls[lo:hi], out[lo:hi])
			}
		})
	}
	wg.Wait()
	// A channel opened in this batch is known now: its data ciphertexts
	// the parallel pass reached first are opened again.
	for i := range out {
		if out[i].Reason == protocol.ReasonUnknownChannel {
			out[i] = e.prepareCall(targets, rule, calls[i])
		}
	}
	return out
}

// callTargets are what a direct call may be signed for: the measurement
// serving now first, then any other the verified configuration names (a
// client may already sign for the next release, or still for the current
// one, across its enactment).
func (e *Enclave) callTargets() []stf.Target {
	targets := []stf.Target{e.target(e.lc.Height())}
	for _, m := range []*bridge.Config{&e.config.Current, e.config.Next} {
		if m != nil && [32]byte(m.MRENCLAVE) != targets[0].MRENCLAVE {
			t := targets[0]
			t.MRENCLAVE = [32]byte(m.MRENCLAVE)
			targets = append(targets, t)
		}
	}
	return targets
}

// callRule is the rule a direct call prepared now is checked under: the
// rule of the state it will be applied to, which is this build's state
// version once it serves the shard (applyDirect migrates first). The
// verdict travels in the shard's log, so the replicas agree on it whatever
// the rule; this keeps it the one the indirect calls of the same state
// get. A state whose version does not read gets the stricter rule: the
// apply that follows fails on the same read.
func (e *Enclave) callRule() ed25519x.Rule {
	if e.serving(e.lc.Height()) {
		return SignatureRule(e.stateVersion())
	}
	r, err := signatureRule(e.state.Begin())
	if err != nil {
		return ed25519x.Cofactorless
	}
	return r
}

// sigBatch is the most calls whose signatures are checked as one batch.
// Past a few dozen a batch saves little more per signature
// (ed25519x.BenchmarkBatch), and a call with a bad signature makes its
// whole batch be checked one by one, which a small batch bounds.
const sigBatch = 64

// prepareChunk prepares calls into out (of the same length), their
// signatures for the serving measurement (targets[0]) checked as one
// batch. A signature the batch refuses is checked for the other targets
// one by one, as prepareCall does.
func (e *Enclave) prepareChunk(targets []stf.Target, calls [][]byte, out []preparedCall) {
	pts := make([][]byte, len(calls))
	unchecked := make([]stf.Unchecked, len(calls))
	batched := make([]int, 0, len(calls))
	batch := ed25519x.NewBatch(len(calls), e.signers)
	for i, ct := range calls {
		p := &out[i]
		pt, ch, ok := e.open(ct, p)
		if !ok {
			continue
		}
		u, err := stf.Decode(targets[0], pt)
		if err != nil {
			p.Reason, p.MRENCLAVE = invalidReason(err), targets[0].MRENCLAVE
			continue
		}
		pts[i], unchecked[i] = pt, u
		// A signer's expanded key is cached for the channel its call
		// came on, and found only by that channel's calls: a cache
		// shared by all calls would let the host time its own calls to
		// learn who signed recently (ed25519x.Keys).
		u.AddTo(batch, ch)
		batched = append(batched, i)
	}
	for k, ok := range batch.Verify() {
		i := batched[k]
		if ok {
			v := unchecked[i].Verified()
			out[i].Call, out[i].MRENCLAVE = &v, targets[0].MRENCLAVE
			continue
		}
		e.verifyCall(targets[1:], ed25519x.Cofactored, pts[i], &out[i])
	}
}

// prepareCall prepares one call, its signature checked alone under rule.
func (e *Enclave) prepareCall(targets []stf.Target, rule ed25519x.Rule, ct []byte) preparedCall {
	var p preparedCall
	if pt, _, ok := e.open(ct, &p); ok {
		e.verifyCall(targets, rule, pt, &p)
	}
	return p
}

// open records the ciphertext ct's hash in p and returns its plaintext
// and, for a call on a shielded channel, the channel as the scope its
// signer's key may be cached in; or false with the reason in p.
func (e *Enclave) open(ct []byte, p *preparedCall) ([]byte, *ed25519x.Scope, bool) {
	p.CiphertextHash = sha256.Sum256(ct)
	if len(ct) > protocol.MaxCallCiphertext {
		p.Reason = protocol.ReasonTooLarge
		return nil, nil, false
	}
	pt, channel, reason := e.openCall(ct)
	if reason != "" {
		p.Reason = reason
		return nil, nil, false
	}
	return pt, (*ed25519x.Scope)(channel), true
}

// verifyCall checks the call plaintext pt under rule r for each target in
// turn and records in p the first it is signed for, or why it is invalid.
func (e *Enclave) verifyCall(targets []stf.Target, r ed25519x.Rule, pt []byte, p *preparedCall) {
	err := error(stf.ErrBadSignature)
	var v stf.Verified
	for _, t := range targets {
		if v, err = stf.Verify(t, r, pt); !errors.Is(err, stf.ErrBadSignature) {
			p.MRENCLAVE = t.MRENCLAVE
			break
		}
	}
	if err != nil {
		p.Reason = invalidReason(err)
		return
	}
	p.Call = &v
}

// applyDirect executes prepared calls as one direct shard block by author
// at the host time hostTime, and commits.
func (e *Enclave) applyDirect(calls []preparedCall, hostTime int64, author tx.Address) (*protocol.SubmitCallsReply, error) {
	batch := e.state.Begin()
	if e.serving(e.lc.Height()) {
		if err := e.migrate(batch); err != nil {
			return nil, e.fail(err)
		}
	}
	env, err := e.env(e.lc.Height(), batch)
	if err != nil {
		return nil, e.fail(err)
	}
	rep := &protocol.SubmitCallsReply{Results: make([]protocol.CallResult, len(calls))}
	var unshields []sidechain.Unshield
	for i, c := range calls {
		res := &rep.Results[i]
		res.Status = protocol.CallInvalid
		if c.Call == nil {
			res.Reason = c.Reason
			if res.Reason == "" {
				res.Reason = protocol.ReasonMalformed
			}
			continue
		}
		if c.MRENCLAVE != env.MRENCLAVE {
			// Signed for a measurement that does not serve the shard at
			// this height (see preparedCall.MRENCLAVE).
			res.Reason = protocol.ReasonBadSignature
			continue
		}
		out, err := e.rt.ApplyVerified(env, batch, *c.Call)
		if err != nil {
			// A state failure: nothing was committed, the batch is dropped.
			return nil, protocol.Errorf(protocol.CodeInternal, "apply call: %v", err)
		}
		leaf := sidechain.LeafExecuted
		switch out.Status {
		case stf.Rejected:
			res.Reason = invalidReason(out.Err)
			continue
		case stf.Failed:
			res.Status, res.Reason, leaf = protocol.CallFailed, failedReason(out.Err), sidechain.LeafFailed
		default:
			res.Status = protocol.CallExecuted
			unshields = append(unshields, unshieldsOf(&out)...)
		}
		res.Index = uint32(len(rep.Leaves))
		rep.Leaves = append(rep.Leaves, sidechain.CallLeaf(c.CiphertextHash, leaf))
	}
	if len(rep.Leaves) == 0 {
		rep.StateRoot = e.state.Root()
		return rep, nil
	}
	c, err := e.commit(transition{batch: batch, unshields: unshields, leaves: rep.Leaves, hostTime: hostTime, author: author})
	if err != nil {
		return nil, err
	}
	rep.Block, rep.StateRoot, rep.Outgoing = c.block, c.root, c.outgoing
	rep.Checkpoint, rep.Changes = c.checkpoint, c.changes
	e.log.Debug("shard block", "number", c.block.Header.Number, "calls", len(rep.Leaves), "changes", len(rep.Changes))
	return rep, nil
}

// privateGetter answers a getter encrypted to the client's reply key.
func (e *Enclave) privateGetter(r *protocol.PrivateGetter) (protocol.Reply, error) {
	pt, err := e.keys.Decrypt(shielding.InfoGetter, r.Request)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "getter request does not decrypt under the shielding key")
	}
	req, err := shielding.DecodeGetterRequest(pt)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "%v", err)
	}
	var resp shielding.GetterResponse
	// Refusals (expired, signed for another reply key, not the owner...)
	// reach the client inside the encrypted answer.
	env, b, err := e.getterEnv()
	if err != nil {
		return nil, err
	}
	if resp.Value, err = e.rt.Get(env, b, req.Getter, e.chainTime(), req.ReplyKey); err != nil {
		resp.Value, resp.Error = nil, err.Error()
	}
	ct, err := shielding.SealGetterResponse(req.ReplyKey, r.Request, resp)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInternal, "%v", err)
	}
	return &protocol.PrivateGetterReply{Response: ct}, nil
}
