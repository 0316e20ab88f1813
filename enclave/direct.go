package enclave

import (
	"crypto/sha256"
	"errors"
	"runtime"
	"sync"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
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
	if !e.serving(e.lc.Height()) {
		// Without replication, calls applied here would be missing from
		// the state of the release that serves the shard now.
		return nil, protocol.Errorf(protocol.CodeForbidden, "this release does not serve the shard at height %d: MRENCLAVE %x does",
			e.lc.Height(), e.config.at(e.lc.Height()))
	}
	return e.applyDirect(r.Calls, r.Timestamp, e.signerAddress())
}

// applyDirect executes calls as one direct shard block by author at the
// host time hostTime, and commits.
func (e *Enclave) applyDirect(calls [][]byte, hostTime int64, author tx.Address) (*protocol.SubmitCallsReply, error) {
	env := e.env(e.lc.Height())
	batch := e.state.Begin()
	if e.serving(e.lc.Height()) {
		if err := e.migrate(batch); err != nil {
			return nil, e.fail(err)
		}
	}
	rep := &protocol.SubmitCallsReply{Results: make([]protocol.CallResult, len(calls))}
	var unshields []sidechain.Unshield
	pts, errs := e.decryptCalls(calls)
	for i, ct := range calls {
		res := &rep.Results[i]
		res.Status = protocol.CallInvalid
		if len(ct) > protocol.MaxCallCiphertext {
			res.Reason = protocol.ReasonTooLarge
			continue
		}
		pt, err := pts[i], errs[i]
		if err != nil {
			res.Reason = protocol.ReasonUndecryptable
			continue
		}
		out, err := e.rt.Apply(env, batch, pt)
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
		rep.Leaves = append(rep.Leaves, sidechain.CallLeaf(sha256.Sum256(ct), leaf))
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
	if resp.Value, err = e.rt.Get(e.env(e.lc.Height()), e.state.Begin(), req.Getter, e.chainTime(), req.ReplyKey); err != nil {
		resp.Value, resp.Error = nil, err.Error()
	}
	ct, err := shielding.SealGetterResponse(req.ReplyKey, r.Request, resp)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInternal, "%v", err)
	}
	return &protocol.PrivateGetterReply{Response: ct}, nil
}

// decryptCalls decrypts a batch's calls on every core: HPKE decapsulation
// is the costly part of a call and independent of the others, unlike
// applying them, which goes in order. Oversized ones are left out.
func (e *Enclave) decryptCalls(calls [][]byte) ([][]byte, []error) {
	pts, errs := make([][]byte, len(calls)), make([]error, len(calls))
	next := make(chan int, len(calls))
	for i := range calls {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(calls)) {
		wg.Go(func() {
			for i := range next {
				if len(calls[i]) <= protocol.MaxCallCiphertext {
					pts[i], errs[i] = e.keys.Decrypt(shielding.InfoTrustedCall, calls[i])
				}
			}
		})
	}
	wg.Wait()
	return pts, errs
}
