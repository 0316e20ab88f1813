// Package rpc is the worker's JSON-RPC 2.0 server for direct invocation:
// clients send trusted calls and getters, encrypted for the enclave,
// straight to the worker, over WebSocket or plain HTTP POST on one
// listener. The methods, their params and results, the statuses of a
// watched call and the error codes are the wire types of package api,
// which clients import instead of this one; the server and the host
// behind it see ciphertexts only. A subscription's "confirmed" status is
// sent once the host reports (Server.Confirmed) that the shard block
// holding the call is confirmed on chain.
//
// Concurrent submissions, from any clients, are queued in arrival order
// and passed to the backend in batches: one enclave round trip and one
// shard block per batch. Getters are queued too and passed to the backend
// a few at a time (Options.MaxGetters), so that however many arrive, only
// that many wait for the enclave ahead of a chain block; a full queue
// answers api.CodeBusy. Requests are bounded in size (413 / -32600 over HTTP,
// -32600 over WebSocket up to twice the limit, beyond which only the
// offending connection is closed) and rate-limited per client IP, each
// request of a batch taking a token; a bad request gets an error and never
// affects other clients. Served through Serve or ServeWith, connections
// are capped in all and per client IP, requests must arrive within a read
// timeout, writes a client does not read time out, keep-alive connections
// close when idle, and WebSocket sessions are pinged and closed when idle
// (Options).
package rpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// errorf makes the error object a client gets.
func errorf(code int, format string, args ...any) *api.Error {
	return &api.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNotReady is what a Backend returns while it cannot serve (enclave
// starting, state loading); the server answers api.CodeNotReady.
var ErrNotReady = errors.New("rpc: worker not ready")

// Backend is the worker host as the server needs it.
type Backend interface {
	// ShieldingKey returns the enclave's public identity.
	ShieldingKey(ctx context.Context) (*Identity, error)
	// SubmitCalls executes encrypted trusted calls in one enclave round
	// trip (protocol.SubmitCalls) and returns one Outcome per call, in
	// order (Outcomes builds them from the reply). It must return only
	// after the reply's block is persisted (protocol.SubmitCalls' host
	// duties): the server tells clients "executed" as soon as it returns.
	// The host serialises it with block processing.
	SubmitCalls(ctx context.Context, calls [][]byte) ([]Outcome, error)
	// ExecuteGetter runs a private getter (protocol.PrivateGetter): the
	// request and the response are ciphertexts for the enclave and the
	// client. stale says the answer comes from this worker's state without
	// the shard's read barrier (it may miss calls other workers answered
	// a moment ago): the host's advisory word, passed on to the client.
	ExecuteGetter(ctx context.Context, request []byte) (response []byte, stale bool, err error)
	// Health reports the worker's progress.
	Health(ctx context.Context) (*Health, error)
}

// Identity is the enclave's public identity.
type Identity struct {
	// ShieldingKey is the serialised HPKE public key of the shard.
	ShieldingKey []byte
	// Signer is the enclave's ed25519 public key: its chain account, under
	// which its teerex registration is found.
	Signer    []byte
	MRENCLAVE [32]byte
	Shard     [32]byte
}

// Health is the worker's progress.
type Health struct {
	// Height is the last chain block processed and persisted, StateRoot
	// the state hash after it and after ShardBlock, the last shard block.
	Height     int64
	StateRoot  [32]byte
	ShardBlock uint64
	// Leader is the shard's Raft leader as this worker's enclave knows it
	// (hex signer, empty if none) and Voters the size of the group
	// (docs/sidechain.md).
	Leader string
	Voters int
	// Enclaves is the number of active enclaves registered for the shard,
	// counted up to 2 (0: not counted yet); Warnings are conditions an
	// operator must act on (a single live enclave, a store moved aside
	// after a machine loss).
	Enclaves int
	Warnings []string
}

// backendError maps a backend error to the client's error object. Host
// errors carry no secrets (the host has none), so their text is passed on.
func backendError(err error) *api.Error {
	var re *api.Error
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, ErrNotReady), errors.Is(err, protocol.ErrNotInitialized):
		return errorf(api.CodeNotReady, "worker not ready: %v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errorf(api.CodeInternal, "request abandoned: %v", err)
	}
	return errorf(api.CodeInternal, "%v", err)
}
