package trusted

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/coder/websocket"

	"github.com/integritee-go/integritee/worker/rpc/api"
)

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

// Watch is a call submitted with author_submitAndWatchTrustedCall.
type Watch struct {
	c    *Client
	conn *websocket.Conn
	ct   []byte
	sub  string
}

// Watch submits an encrypted call over a WebSocket and returns its status
// stream: submitted, then executed or invalid, then confirmed.
func (c *Client) Watch(ctx context.Context, ct []byte) (*Watch, error) {
	conn, _, err := websocket.Dial(ctx, c.wsURL, nil)
	if err != nil {
		return nil, fmt.Errorf("trusted: websocket %s: %w", c.wsURL, err)
	}
	conn.SetReadLimit(8 << 20)
	w := &Watch{c: c, conn: conn, ct: ct}
	req, err := json.Marshal(rpcRequest{JSONRPC: api.Version, ID: 1, Method: api.MethodSubmitAndWatchTrustedCall,
		Params: api.CallParams{Shard: hex.EncodeToString(c.shard[:]), Call: hex.EncodeToString(ct)}})
	if err == nil {
		err = conn.Write(ctx, websocket.MessageText, req)
	}
	var r rpcResponse
	if err == nil {
		r, err = w.read(ctx)
	}
	if err == nil && r.Error != nil {
		err = r.Error
	}
	if err == nil {
		err = json.Unmarshal(r.Result, &w.sub)
	}
	if err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("trusted: watch: %w", err)
	}
	return w, nil
}

func (w *Watch) read(ctx context.Context) (rpcResponse, error) {
	var r rpcResponse
	_, b, err := w.conn.Read(ctx)
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

// Next returns the next status; executed and confirmed results are
// verified as Submit's.
func (w *Watch) Next(ctx context.Context) (*Status, error) {
	for {
		r, err := w.read(ctx)
		if err != nil {
			return nil, fmt.Errorf("trusted: watch: %w", err)
		}
		if r.Method != api.NotificationTrustedCallStatus || r.Params.Subscription != w.sub {
			continue
		}
		cr := &r.Params.Result
		st := &Status{Status: cr.Status, Reason: cr.Reason}
		switch cr.Status {
		case api.StatusExecuted, api.StatusConfirmed:
			if st.Result, err = w.c.result(w.ct, cr); err != nil {
				return nil, err
			}
		}
		if cr.Status == api.StatusConfirmed {
			// The worker's word is not enough: the chain's record decides.
			if err := w.c.Confirmed(ctx, st.Result); err != nil {
				return nil, err
			}
		}
		return st, nil
	}
}

// Close ends the watch.
func (w *Watch) Close() error { return w.conn.Close(websocket.StatusNormalClosure, "") }
