package trusted

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// Submission is a call's answer from a worker, not yet verified: what
// SubmitUnverified returns and VerifySubmission checks.
type Submission struct {
	w *worker
	// answer is the worker's result as it came, decoded only by
	// VerifySubmission: a load generator's timed phase does not spend
	// its time on the header and proof it verifies later.
	answer json.RawMessage
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
	var r json.RawMessage
	body := appendCallRequest(nil, c.ids.Add(1), c.shard[:], ct)
	err = c.postBody(ctx, w.url, api.MethodSubmitTrustedCall, body, &r)
	var re *api.Error
	if errors.As(err, &re) && re.Code == api.CodeInvalidCall {
		return nil, &InvalidCallError{Reason: re.Message}
	}
	if err != nil {
		return nil, err
	}
	return &Submission{w: w, answer: r}, nil
}

// VerifySubmission verifies s, the answer to ct, as Submit verifies a
// result: the block signed by the enclave of the worker that answered,
// verified when the client switched to it, and the call proved in it.
func (c *Client) VerifySubmission(ct []byte, s *Submission) (*Result, error) {
	var r api.CallResult
	if len(s.answer) > 0 { // none is an empty result, which fails below
		if err := json.Unmarshal(s.answer, &r); err != nil {
			return nil, fmt.Errorf("trusted: call result: %w", err)
		}
	}
	return c.result(s.w, ct, &r)
}

// PreparedGetter is a getter signed, with its reply key, and encrypted
// ahead of its use: for a load generator, like SubmitUnverified. It
// expires Options.GetterLifetime after PrepareGetter.
type PreparedGetter struct {
	rk  *shielding.ReplyKey
	req []byte
}

// PrepareGetter signs getter g (an execute_getter one) with key and
// encrypts it to the enclave.
func (c *Client) PrepareGetter(key ed25519.PrivateKey, g stf.Getter) (*PreparedGetter, error) {
	raw, err := stf.EncodeGetter(g)
	if err != nil {
		return nil, err
	}
	rk, err := shielding.NewReplyKey()
	if err != nil {
		return nil, err
	}
	signed, err := stf.SignGetter(key, raw, c.now().Add(c.getterLifetime), rk.Public(), c.target())
	if err != nil {
		return nil, err
	}
	req, err := shielding.NewGetterRequest(c.key, rk, signed)
	if err != nil {
		return nil, err
	}
	return &PreparedGetter{rk: rk, req: req}, nil
}

// SendGetter sends p once to the worker in use and returns its encrypted
// answer, to be opened with p.Open (no failover).
func (c *Client) SendGetter(ctx context.Context, p *PreparedGetter) ([]byte, error) {
	w, _, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	var res api.GetterResult
	if err := c.post(ctx, w.url, api.MethodExecuteGetter, api.GetterParams{Shard: hex.EncodeToString(c.shard[:]), Request: hex.EncodeToString(p.req)}, &res); err != nil {
		return nil, err
	}
	ct, err := hex.DecodeString(res.Response)
	if err != nil {
		return nil, fmt.Errorf("trusted: getter response: %w", err)
	}
	return ct, nil
}

// Open decrypts the enclave's answer ct to p: the getter's value, or its
// refusal as Getter returns it.
func (p *PreparedGetter) Open(ct []byte) ([]byte, error) {
	resp, err := p.rk.Open(p.req, ct)
	if err != nil {
		return nil, err
	}
	if resp.Error != "" {
		return nil, getterError(resp.Error)
	}
	return resp.Value, nil
}

// DecodeUint decodes a getter's integer value (a balance, a nonce).
func DecodeUint(b []byte) (uint64, error) { return decodeUint(b) }
