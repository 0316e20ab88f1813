// Package rpc is the worker's JSON-RPC 2.0 server for direct invocation:
// clients send trusted calls and getters, encrypted for the enclave,
// straight to the worker, over WebSocket or plain HTTP POST on one
// listener.
//
// Methods (params are JSON objects; binary values are hex, "0x" optional):
//
//	author_getShieldingKey            {} -> {shielding_key, signer, mrenclave, shard}
//	author_submitTrustedCall          {shard, call} -> CallResult (executed) or error 1010 (invalid)
//	author_submitAndWatchTrustedCall  {shard, call} -> subscription ID; WebSocket only
//	author_unwatchTrustedCall         {subscription} -> bool
//	state_executeGetter               {shard, request} -> {response}
//	state_getNonce                    {shard, request} -> {response} (request: the nonce getter)
//	system_health                     {} -> Health
//	system_version                    {} -> {version}
//	rpc_methods                       {} -> {methods}
//
// A call is a trusted call HPKE-encrypted to the shard's shielding key
// (shielding.InfoTrustedCall); a getter request is a shielding.GetterRequest
// encrypted with shielding.InfoGetter, and its response is encrypted to the
// client's reply key: the server and the host behind it see ciphertexts
// only. A subscription sends "author_trustedCallStatus" notifications
// {subscription, result: Status}: submitted, then executed (with the
// result) or invalid (with the reason), then confirmed once the host
// reports (Server.Confirmed) that the shard block holding the call is
// confirmed on chain. An executed call carries the enclave-signed block
// header and a Merkle proof of the call's leaf, so the client can check the
// outcome on the enclave's word rather than the host's.
//
// Concurrent submissions, from any clients, are queued in arrival order
// and passed to the backend in batches: one enclave round trip and one
// shard block per batch. Getters are queued too and passed to the backend
// a few at a time (Options.MaxGetters), so that however many arrive, only
// that many wait for the enclave ahead of a chain block; a full queue
// answers CodeBusy. Requests are bounded in size (413 / -32600 over HTTP,
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
)

// JSON-RPC 2.0 error codes, and the application's.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603

	// CodeNotReady: the enclave is not started or has no state yet.
	CodeNotReady = 1000
	// CodeInvalidCall: the trusted call was refused (data: {hash,
	// reason}); nothing changed.
	CodeInvalidCall = 1010
	// CodeInvalidGetter: the getter request does not decrypt or carries
	// no usable reply key.
	CodeInvalidGetter = 1020
	// CodeRateLimited: too many requests from this client.
	CodeRateLimited = 1030
	// CodeBusy: the submission queue is full; retry later.
	CodeBusy = 1031
	// CodeWrongShard: the worker does not serve the requested shard.
	CodeWrongShard = 1040
)

// Error is a JSON-RPC error object.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("rpc error %d: %s", e.Code, e.Message) }

func errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNotReady is what a Backend returns while it cannot serve (enclave
// starting, state loading); the server answers CodeNotReady.
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
	// client.
	ExecuteGetter(ctx context.Context, request []byte) ([]byte, error)
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
}

// backendError maps a backend error to the client's error object. Host
// errors carry no secrets (the host has none), so their text is passed on.
func backendError(err error) *Error {
	var re *Error
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, ErrNotReady), errors.Is(err, protocol.ErrNotInitialized):
		return errorf(CodeNotReady, "worker not ready: %v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errorf(CodeInternal, "request abandoned: %v", err)
	}
	return errorf(CodeInternal, "%v", err)
}
