package trusted

import (
	"context"
	"encoding/hex"
	"errors"

	"github.com/integritee-go/integritee/worker/rpc/api"
)

// Submission is a call's answer from a worker, not yet verified: what
// SubmitUnverified returns and VerifySubmission checks.
type Submission struct {
	w      *worker
	answer api.CallResult
}

// SubmitUnverified sends ct once to the worker in use and returns its
// answer without verifying it; VerifySubmission verifies it later, as
// Submit would have. It is for a load generator, which must not spend its
// timed phase checking the results it measures; anything else uses
// Submit. A refused call gives an *InvalidCallError, other errors are the
// worker's or the transport's, as they are (no failover, no settling of a
// lost answer).
func (c *Client) SubmitUnverified(ctx context.Context, ct []byte) (*Submission, error) {
	w, _, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	var r api.CallResult
	err = c.post(ctx, w.url, api.MethodSubmitTrustedCall, api.CallParams{Shard: hex.EncodeToString(c.shard[:]), Call: hex.EncodeToString(ct)}, &r)
	var re *api.Error
	if errors.As(err, &re) && re.Code == api.CodeInvalidCall {
		return nil, &InvalidCallError{Reason: re.Message}
	}
	if err != nil {
		return nil, err
	}
	return &Submission{w: w, answer: r}, nil
}

// Executed reports what the worker claims, unverified: whether the call
// executed with success, and its shard block's number.
func (s *Submission) Executed() (success bool, block uint64) {
	if s.answer.Result != nil {
		success = s.answer.Result.Success
	}
	if s.answer.Block != nil {
		block = s.answer.Block.Header.Number
	}
	return success, block
}

// VerifySubmission verifies s, the answer to ct, as Submit verifies a
// result: the block signed by the enclave of the worker that answered,
// verified when the client switched to it, and the call proved in it.
func (c *Client) VerifySubmission(ct []byte, s *Submission) (*Result, error) {
	return c.result(s.w, ct, &s.answer)
}
