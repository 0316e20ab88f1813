package rpc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// method starts a request; see Server.start.
type method func(s *Server, ctx context.Context, req *request, sess *session, inBatch bool) pending

var methods map[string]method

func init() {
	// Assigned in init: rpc_methods refers to the table.
	methods = map[string]method{
		api.MethodGetShieldingKey:           (*Server).getShieldingKey,
		api.MethodSubmitTrustedCall:         (*Server).submitTrustedCall,
		api.MethodSubmitAndWatchTrustedCall: (*Server).submitAndWatch,
		api.MethodUnwatchTrustedCall:        (*Server).unwatch,
		api.MethodExecuteGetter:             (*Server).executeGetter,
		api.MethodGetNonce:                  (*Server).executeGetter,
		api.MethodHealth:                    (*Server).health,
		api.MethodVersion:                   (*Server).version,
		api.MethodMethods:                   (*Server).rpcMethods,
	}
}

// Methods lists the served methods, sorted.
func Methods() []string {
	out := make([]string, 0, len(methods))
	for m := range methods {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// params decodes the request's params object strictly into v.
func params(req *request, v any) *api.Error {
	raw := bytes.TrimSpace(req.Params)
	if len(raw) == 0 || string(raw) == "null" {
		raw = []byte("{}")
	}
	if raw[0] != '{' {
		return errorf(api.CodeInvalidParams, "params must be an object")
	}
	if fastParams(raw, v) {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return errorf(api.CodeInvalidParams, "params: %v", err)
	}
	return nil
}

func decodeHex(name, s string) ([]byte, *api.Error) {
	if s == "" {
		return nil, errorf(api.CodeInvalidParams, "params: %s missing", name)
	}
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		return nil, errorf(api.CodeInvalidParams, "params: %s: %v", name, err)
	}
	return b, nil
}

// ident returns the enclave identity, cached once known: it does not
// change while the worker runs (the host treats a change as fatal).
func (s *Server) ident(ctx context.Context) (*Identity, *api.Error) {
	s.mu.Lock()
	id := s.identity
	s.mu.Unlock()
	if id != nil {
		return id, nil
	}
	id, err := s.b.ShieldingKey(ctx)
	if err != nil {
		return nil, backendError(err)
	}
	if id == nil || len(id.ShieldingKey) == 0 {
		return nil, errorf(api.CodeNotReady, "worker not ready: no enclave identity yet")
	}
	s.mu.Lock()
	s.identity = id
	s.mu.Unlock()
	return id, nil
}

// checkShard checks the shard param against the served shard.
func (s *Server) checkShard(ctx context.Context, shard string) *api.Error {
	b, e := decodeHex("shard", shard)
	if e != nil {
		return e
	}
	return s.isShard(ctx, b)
}

// isShard refuses a shard other than the one the worker serves.
func (s *Server) isShard(ctx context.Context, b []byte) *api.Error {
	id, e := s.ident(ctx)
	if e != nil {
		return e
	}
	if len(b) != 32 || [32]byte(b) != id.Shard {
		return errorf(api.CodeWrongShard, "this worker serves shard %x", id.Shard)
	}
	return nil
}

func (s *Server) getShieldingKey(ctx context.Context, req *request, _ *session, _ bool) pending {
	id, e := s.ident(ctx)
	if e != nil {
		return s.reply(req, nil, e)
	}
	return s.reply(req, api.ShieldingKeyResult{
		ShieldingKey: hex.EncodeToString(id.ShieldingKey), Signer: hex.EncodeToString(id.Signer),
		MRENCLAVE: hex.EncodeToString(id.MRENCLAVE[:]), Shard: hex.EncodeToString(id.Shard[:]),
	}, nil)
}

// parseCall checks a submission's params and returns the ciphertext.
func (s *Server) parseCall(ctx context.Context, req *request) ([]byte, *api.Error) {
	if shard, ct, ok := fastCall(bytes.TrimSpace(req.Params)); ok {
		if e := s.isShard(ctx, shard[:]); e != nil {
			return nil, e
		}
		return ct, nil
	}
	var p api.CallParams
	if e := params(req, &p); e != nil {
		return nil, e
	}
	if e := s.checkShard(ctx, p.Shard); e != nil {
		return nil, e
	}
	ct, e := decodeHex("call", p.Call)
	if e != nil {
		return nil, e
	}
	if len(ct) > protocol.MaxCallCiphertext {
		return nil, errorf(api.CodeInvalidParams, "call of %d bytes, at most %d", len(ct), protocol.MaxCallCiphertext)
	}
	return ct, nil
}

// invalidCall is the error of a refused call.
func invalidCall(r *api.CallResult) *api.Error {
	return &api.Error{Code: api.CodeInvalidCall, Message: "invalid trusted call: " + r.Reason, Data: r}
}

func (s *Server) submitTrustedCall(ctx context.Context, req *request, _ *session, _ bool) pending {
	ct, e := s.parseCall(ctx, req)
	if e != nil {
		return s.reply(req, nil, e)
	}
	j, e := s.enqueue(ct)
	if e != nil {
		return s.reply(req, nil, e)
	}
	return func() *response {
		out, e := s.await(ctx, j)
		if e != nil {
			return respond(req, nil, e)
		}
		hash := sha256.Sum256(ct)
		if out.Status == protocol.CallInvalid {
			r, err := callResult(hash, &out)
			if err != nil {
				return respond(req, nil, errorf(api.CodeInternal, "%v", err))
			}
			return respond(req, nil, invalidCall(r))
		}
		a, err := newExecutedAnswer(hash, &out)
		if err != nil {
			return respond(req, nil, errorf(api.CodeInternal, "%v", err))
		}
		return respond(req, a, nil)
	}
}

func (s *Server) submitAndWatch(ctx context.Context, req *request, sess *session, inBatch bool) pending {
	switch {
	case sess == nil:
		return s.reply(req, nil, errorf(api.CodeInvalidRequest, "subscriptions need a WebSocket connection"))
	case inBatch:
		return s.reply(req, nil, errorf(api.CodeInvalidRequest, "subscribe outside a batch"))
	case req.notification():
		return s.reply(req, nil, nil)
	}
	ct, e := s.parseCall(ctx, req)
	if e != nil {
		return s.reply(req, nil, e)
	}
	sub, e := sess.subscribe()
	if e != nil {
		return s.reply(req, nil, e)
	}
	j, e := s.enqueue(ct)
	if e != nil {
		sess.unsubscribe(sub.id)
		return s.reply(req, nil, e)
	}
	hash := sha256.Sum256(ct)
	hashHex := hex.EncodeToString(hash[:])
	return func() *response {
		// The subscription ID first, then the statuses, in order.
		if sess.send(respond(req, sub.id, nil)) != nil {
			return nil
		}
		sess.notify(sub, &api.CallResult{Hash: hashHex, Status: api.StatusSubmitted}, false)
		out, e := s.await(sess.ctx, j)
		if e != nil {
			sess.notify(sub, &api.CallResult{Hash: hashHex, Status: api.StatusInvalid, Reason: "not executed: " + e.Message}, true)
			return nil
		}
		r, err := callResult(hash, &out)
		if err != nil {
			sess.notify(sub, &api.CallResult{Hash: hashHex, Status: api.StatusInvalid, Reason: "not executed: " + err.Error()}, true)
			return nil
		}
		if r.Status == api.StatusInvalid {
			sess.notify(sub, r, true)
			return nil
		}
		sub.result = r
		sess.notify(sub, r, false)
		s.waitConfirm(sub, r.Block.Header.Number)
		return nil
	}
}

// waitConfirm registers sub for the confirmation of block number, or
// confirms it at once if that already happened.
func (s *Server) waitConfirm(sub *subscription, number uint64) {
	s.mu.Lock()
	if number > s.confirmed {
		s.waiting[number] = append(s.waiting[number], sub)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	sub.sess.goConfirm(sub)
}

func (s *Server) unwatch(_ context.Context, req *request, sess *session, _ bool) pending {
	if sess == nil {
		return s.reply(req, nil, errorf(api.CodeInvalidRequest, "subscriptions need a WebSocket connection"))
	}
	var p api.UnwatchParams
	if e := params(req, &p); e != nil {
		return s.reply(req, nil, e)
	}
	return s.reply(req, sess.unsubscribe(p.Subscription), nil)
}

func (s *Server) executeGetter(ctx context.Context, req *request, _ *session, _ bool) pending {
	var p api.GetterParams
	if e := params(req, &p); e != nil {
		return s.reply(req, nil, e)
	}
	if e := s.checkShard(ctx, p.Shard); e != nil {
		return s.reply(req, nil, e)
	}
	ct, e := decodeHex("request", p.Request)
	if e != nil {
		return s.reply(req, nil, e)
	}
	if req.notification() {
		// Nobody would read the answer: spare the enclave.
		return s.reply(req, nil, nil)
	}
	j, e := s.enqueueGetter(ctx, ct)
	if e != nil {
		return s.reply(req, nil, e)
	}
	return func() *response {
		r := s.awaitGetter(ctx, j)
		if err := r.err; err != nil {
			if errors.Is(err, protocol.ErrInvalidInput) {
				return respond(req, nil, errorf(api.CodeInvalidGetter, "invalid getter request: %v", err))
			}
			return respond(req, nil, backendError(err))
		}
		return respond(req, api.GetterResult{Response: hex.EncodeToString(r.resp), Stale: r.stale}, nil)
	}
}

func (s *Server) health(ctx context.Context, req *request, _ *session, _ bool) pending {
	return func() *response {
		h, err := s.b.Health(ctx)
		if err != nil {
			return respond(req, nil, backendError(err))
		}
		s.mu.Lock()
		c := s.confirmed
		s.mu.Unlock()
		return respond(req, api.HealthResult{Height: h.Height, StateRoot: hex.EncodeToString(h.StateRoot[:]), ShardBlock: h.ShardBlock, Confirmed: c,
			Leader: h.Leader, Voters: h.Voters, Enclaves: h.Enclaves, Warnings: h.Warnings, Limits: s.limits()}, nil)
	}
}

// limits are the server's limits for system_health.
func (s *Server) limits() *api.Limits {
	o := &s.opts
	return &api.Limits{RateLimit: o.RateLimit, RateBurst: o.RateBurst, MaxBatch: o.MaxBatchRequests, MaxConns: o.MaxConns,
		MaxConnsPerIP: o.MaxConnsPerIP, MaxInFlight: o.MaxInFlight, CallQueue: o.QueueSize, CallsPerRound: o.MaxCallsPerRound,
		Getters: o.MaxGetters, GetterQueue: o.GetterQueueSize, MaxRequestBytes: o.MaxRequestBytes,
		BatchLingerMs: float64(o.BatchLinger) / float64(time.Millisecond)}
}

func (s *Server) version(_ context.Context, req *request, _ *session, _ bool) pending {
	return s.reply(req, api.VersionResult{Version: s.opts.Version}, nil)
}

func (s *Server) rpcMethods(_ context.Context, req *request, _ *session, _ bool) pending {
	return s.reply(req, api.MethodsResult{Methods: Methods()}, nil)
}
