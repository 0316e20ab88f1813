package trusted

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/integritee-go/integritee/worker/rpc/api"
)

// confirmPoll is how often a Watch whose worker went away after the call
// executed asks the chain whether the call's block is confirmed.
const confirmPoll = time.Second

// Status is one status of a watched call. Result is set (and verified)
// for executed and confirmed, Reason for invalid.
type Status struct {
	Status string
	Reason string
	Result *Result
}

// Final reports whether no status follows.
func (s *Status) Final() bool {
	return s.Status == api.StatusInvalid || s.Status == api.StatusConfirmed
}

// Watch is a call submitted with author_submitAndWatchTrustedCall. It is
// not safe for concurrent use.
//
// The API has no way to watch a call by its hash, so a Watch whose
// connection drops carries on in one of two ways. Before the call's
// execution is known, its outcome is unknown: it resubmits the same
// ciphertext, with a new subscription, to the next worker (the nonce
// keeps the call from running twice) and goes on with that worker's
// statuses, settling a repeat as Submit does. Once the call is executed,
// its block is known and verified, and confirmation is the chain's word:
// Next waits for the chain to confirm the block (polling it), without a
// worker. If no worker takes the resubmission, Next ends with an
// *OutcomeError that says so.
type Watch struct {
	c    *Client
	ct   []byte
	hash [32]byte
	o    callOptions

	w    *worker
	conn *websocket.Conn
	sub  string

	submitted bool    // "submitted" was returned: a resubmission's is not repeated
	executed  *Result // the verified execution, once known
	lost      string  // the worker that took the call and lost its answer
	final     bool    // a final status or error was returned
}

// Watch submits an encrypted call over a WebSocket and returns its status
// stream: submitted, then executed or invalid, then confirmed. SignedBy
// lets it settle a call lost in a failover (see the type).
func (c *Client) Watch(ctx context.Context, ct []byte, opts ...CallOption) (*Watch, error) {
	w := &Watch{c: c, ct: ct, hash: sha256.Sum256(ct), o: newCallOptions(opts)}
	if err := w.open(ctx); err != nil {
		if w.lost != "" {
			return nil, &OutcomeError{Hash: w.hash, Worker: w.lost, Nonce: w.o.nonce, Err: err}
		}
		return nil, fmt.Errorf("trusted: watch: %w", err)
	}
	return w, nil
}

// open submits the call with a subscription, failing over among the
// workers.
func (w *Watch) open(ctx context.Context) error {
	return w.c.do(ctx, api.MethodSubmitAndWatchTrustedCall, func(ctx context.Context, wk *worker) error {
		conn, sub, err := w.c.subscribe(ctx, wk, w.ct)
		if err != nil {
			if w.lost == "" && outcomeLost(err) {
				w.lost = wk.url
			}
			return err
		}
		w.w, w.conn, w.sub = wk, conn, sub
		return nil
	})
}

// subscribe submits ct to worker wk over a new WebSocket and returns the
// connection and the subscription ID.
func (c *Client) subscribe(ctx context.Context, wk *worker, ct []byte) (*websocket.Conn, string, error) {
	const method = api.MethodSubmitAndWatchTrustedCall
	conn, _, err := websocket.Dial(ctx, wk.wsURL, nil)
	if err != nil {
		// Nothing is sent before the connection is up.
		return nil, "", &transportError{method: method, err: fmt.Errorf("websocket %s: %w", wk.wsURL, err)}
	}
	conn.SetReadLimit(8 << 20)
	req, err := json.Marshal(rpcRequest{JSONRPC: api.Version, ID: 1, Method: method,
		Params: api.CallParams{Shard: hex.EncodeToString(c.shard[:]), Call: hex.EncodeToString(ct)}})
	if err != nil {
		conn.CloseNow()
		return nil, "", err
	}
	if err := conn.Write(ctx, websocket.MessageText, req); err != nil {
		conn.CloseNow()
		return nil, "", &transportError{method: method, err: err, sent: true}
	}
	r, err := readMessage(ctx, conn)
	var sub string
	if err == nil && r.Error != nil {
		err = r.Error
	}
	if err == nil {
		err = json.Unmarshal(r.Result, &sub)
	}
	if err != nil {
		conn.CloseNow()
		return nil, "", err
	}
	return conn, sub, nil
}

// readMessage reads one message; a connection error is a *transportError
// (sent: the call went out before).
func readMessage(ctx context.Context, conn *websocket.Conn) (rpcResponse, error) {
	var r rpcResponse
	_, b, err := conn.Read(ctx)
	if err != nil {
		return r, &transportError{method: api.MethodSubmitAndWatchTrustedCall, err: err, sent: true}
	}
	return r, json.Unmarshal(b, &r)
}

// Next returns the next status; executed and confirmed results are
// verified as Submit's, a confirmation also against the chain.
func (w *Watch) Next(ctx context.Context) (*Status, error) {
	st, err := w.next(ctx)
	if err != nil || st.Final() {
		// Nothing follows; in particular a dropped connection must not
		// resubmit the call.
		w.final = true
	}
	return st, err
}

func (w *Watch) next(ctx context.Context) (*Status, error) {
	for {
		if w.final || w.conn == nil {
			return nil, errors.New("trusted: watch: ended")
		}
		r, err := readMessage(ctx, w.conn)
		var te *transportError
		if errors.As(err, &te) && ctx.Err() == nil {
			if st, err := w.failover(ctx, err); st != nil || err != nil {
				return st, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("trusted: watch: %w", err)
		}
		if r.Method != api.NotificationTrustedCallStatus || r.Params.Subscription != w.sub {
			continue
		}
		cr := &r.Params.Result
		st := &Status{Status: cr.Status, Reason: cr.Reason}
		switch cr.Status {
		case api.StatusSubmitted:
			if w.submitted {
				continue
			}
			w.submitted = true
		case api.StatusInvalid:
			if w.lost != "" {
				_, err := w.c.settle(ctx, w.hash, w.lost, w.o, nil, &InvalidCallError{Hash: cr.Hash, Reason: cr.Reason})
				return nil, err
			}
		case api.StatusExecuted, api.StatusConfirmed:
			if st.Result, err = w.c.result(w.w, w.ct, cr); err != nil {
				return nil, err
			}
			if cr.Status == api.StatusExecuted && w.lost != "" && repeated(st.Result, nil) {
				_, err := w.c.settle(ctx, w.hash, w.lost, w.o, st.Result, nil)
				return nil, err
			}
		}
		if cr.Status == api.StatusConfirmed {
			// The worker's word is not enough: the chain's record decides.
			if err := w.c.Confirmed(ctx, st.Result); err != nil {
				return nil, err
			}
		}
		if st.Result != nil {
			w.executed = st.Result
		}
		return st, nil
	}
}

// failover carries the watch on after its connection dropped (see the
// type): it returns the next status, a final error, or neither when the
// stream goes on at another worker.
func (w *Watch) failover(ctx context.Context, cause error) (*Status, error) {
	gone := w.w.url
	w.conn.CloseNow()
	w.conn = nil
	w.c.giveUp(w.w)
	if w.executed != nil {
		return w.awaitConfirmed(ctx, gone)
	}
	if w.lost == "" {
		w.lost = gone
	}
	if err := w.open(ctx); err != nil {
		return nil, &OutcomeError{Hash: w.hash, Worker: w.lost, Nonce: w.o.nonce,
			Err: fmt.Errorf("watch: worker %s went away (%v) and no other worker took the call: %w", gone, cause, err)}
	}
	return nil, nil
}

// awaitConfirmed waits for the chain to confirm the executed call's block.
func (w *Watch) awaitConfirmed(ctx context.Context, gone string) (*Status, error) {
	r := w.executed
	for {
		ok, err := w.c.confirmed(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("trusted: watch: worker %s went away after the call executed in shard block %d: %w", gone, r.Block.Number, err)
		}
		if ok {
			return &Status{Status: api.StatusConfirmed, Result: r}, nil
		}
		t := time.NewTimer(confirmPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("trusted: watch: worker %s went away after the call executed; the chain has not confirmed shard block %d yet (Client.Confirmed tells later): %w", gone, r.Block.Number, ctx.Err())
		case <-t.C:
		}
	}
}

// Close ends the watch.
func (w *Watch) Close() error {
	if w.conn == nil {
		return nil
	}
	err := w.conn.Close(websocket.StatusNormalClosure, "")
	w.conn = nil
	return err
}
