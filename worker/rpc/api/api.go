// Package api holds the wire types of the worker's JSON-RPC 2.0 API for
// direct invocation: method names, params and results, the statuses of a
// watched call, error codes and the error object. docs/rpc.md is the
// reference for users (kept equal to the served methods by a test). The server (package
// worker/rpc) and its clients (package client/trusted, the CLI) share
// them; a client imports this package and nothing of the server, as
// CometBFT's clients import rpc/core/types and not rpc/core.
//
// Methods (params are JSON objects; binary values are hex, "0x" optional):
//
//	author_getShieldingKey            {} -> ShieldingKeyResult
//	author_submitTrustedCall          CallParams -> CallResult (executed) or error CodeInvalidCall
//	author_submitAndWatchTrustedCall  CallParams -> subscription ID; WebSocket only
//	author_unwatchTrustedCall         UnwatchParams -> bool
//	state_executeGetter               GetterParams -> GetterResult
//	state_getNonce                    GetterParams -> GetterResult (request: the nonce getter)
//	system_health                     {} -> HealthResult
//	system_version                    {} -> VersionResult
//	rpc_methods                       {} -> MethodsResult
//
// A call is a trusted call HPKE-encrypted to the shard's shielding key
// (shielding.InfoTrustedCall); a getter request is a shielding.GetterRequest
// encrypted with shielding.InfoGetter, and its response is encrypted to the
// client's reply key. A subscription sends NotificationTrustedCallStatus
// notifications (StatusParams): StatusSubmitted, then StatusExecuted (with
// the result) or StatusInvalid (with the reason), then StatusConfirmed once
// the shard block holding the call is confirmed on chain. An executed call
// carries the enclave-signed block header and a Merkle proof of the call's
// leaf (BlockRef), so the client can check the outcome on the enclave's
// word rather than the worker's.
//
// The application's error codes (1000 and up) are stable. A client with
// several workers of a shard moves to another on CodeNotReady,
// CodeRateLimited, CodeBusy, CodeSeveralWorkers and CodeNoQuorum: each
// says that this worker did not take the request, not that the request is
// wrong.
package api

import "fmt"

// Version is the JSON-RPC version of every request and response.
const Version = "2.0"

// Method names.
const (
	MethodGetShieldingKey           = "author_getShieldingKey"
	MethodSubmitTrustedCall         = "author_submitTrustedCall"
	MethodSubmitAndWatchTrustedCall = "author_submitAndWatchTrustedCall"
	MethodUnwatchTrustedCall        = "author_unwatchTrustedCall"
	MethodExecuteGetter             = "state_executeGetter"
	MethodGetNonce                  = "state_getNonce"
	MethodHealth                    = "system_health"
	MethodVersion                   = "system_version"
	MethodMethods                   = "rpc_methods"
)

// NotificationTrustedCallStatus is the method of a subscription's status
// notifications; their params are StatusParams.
const NotificationTrustedCallStatus = "author_trustedCallStatus"

// JSON-RPC 2.0 error codes, and the application's.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603

	// CodeNotReady: the enclave is not started or has no state yet.
	CodeNotReady = 1000
	// CodeInvalidCall: the trusted call was refused (data: a CallResult
	// with the hash and reason); nothing changed.
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
	// CodeSeveralWorkers: a direct call was refused because several
	// enclaves serve the shard (data: {enclaves}); nothing changed.
	// No longer returned: the shard's enclaves order direct calls among
	// themselves (docs/sidechain.md); older workers may still send it.
	CodeSeveralWorkers = 1050
	// CodeNoQuorum: the worker's enclave cannot reach a quorum of the
	// shard's enclaves (a minority partition, or most of them down); the
	// call was not ordered and nothing changed: send it to another worker
	// of the shard.
	CodeNoQuorum = 1060
	// CodeRetired: the shard moved to another enclave release at its
	// enactment height; this worker's enclave serves it no more (data:
	// {mrenclave, workers}: the measurement serving it now and its
	// workers' URLs). Nothing changed: send the request there.
	CodeRetired = 1070
)

// Error is a JSON-RPC error object.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("rpc error %d: %s", e.Code, e.Message) }

// ShieldingKeyResult is the result of author_getShieldingKey (hex): the
// enclave's public identity.
type ShieldingKeyResult struct {
	// ShieldingKey is the serialised HPKE public key of the shard.
	ShieldingKey string `json:"shielding_key"`
	// Signer is the enclave's ed25519 public key: its chain account, under
	// which its teerex registration is found.
	Signer    string `json:"signer"`
	MRENCLAVE string `json:"mrenclave"`
	Shard     string `json:"shard"`
}

// CallParams are the params of the submit methods.
type CallParams struct {
	Shard string `json:"shard"`
	// Call is the hex ciphertext of the trusted call.
	Call string `json:"call"`
}

// UnwatchParams are the params of author_unwatchTrustedCall.
type UnwatchParams struct {
	Subscription string `json:"subscription"`
}

// GetterParams are the params of state_executeGetter and state_getNonce.
type GetterParams struct {
	Shard string `json:"shard"`
	// Request is the hex ciphertext of a shielding.GetterRequest.
	Request string `json:"request"`
}

// GetterResult is their result: the hex ciphertext of the
// shielding.GetterResponse, encrypted to the request's reply key. No
// plaintext answer ever passes the server.
//
// Stale, if true, says the worker answered from its own state without the
// shard's read barrier (it reached no leader, or its enclave lags): the
// answer may miss calls other workers answered a moment ago. Omitted when
// false; a worker from before this field omits it always. It is the
// host's word, advisory: a host can lie either way, so a client treats a
// single worker's answer as never guaranteed fresh (docs/threat-model.md).
type GetterResult struct {
	Response string `json:"response"`
	Stale    bool   `json:"stale,omitempty"`
}

// HealthResult is the result of system_health: the last chain block the
// worker processed and persisted, the state hash after it and after the
// last shard block, and the last shard block confirmed on chain.
type HealthResult struct {
	Height     int64  `json:"height"`
	StateRoot  string `json:"state_root"`
	ShardBlock uint64 `json:"shard_block"`
	Confirmed  uint64 `json:"confirmed_shard_block"`
	// Leader is the hex signer of the shard's Raft leader as the worker's
	// enclave knows it (empty: none, the worker orders no direct calls);
	// Voters the number of enclaves in the shard's group.
	Leader string `json:"leader,omitempty"`
	Voters int    `json:"voters,omitempty"`
	// Enclaves is the number of active enclaves registered for the shard,
	// counted up to 2 (one means the shard's keys exist on this machine
	// only); Warnings are conditions an operator must act on.
	Enclaves int      `json:"shard_enclaves,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Limits are the server's JSON-RPC limits (the integritee-worker
	// --rpc-* flags), so that a client or a load generator can state
	// which applied. Not secret: a client meets them anyway.
	Limits *Limits `json:"limits,omitempty"`
}

// Limits are a worker's JSON-RPC limits, as its --rpc-* flags set them.
type Limits struct {
	RateLimit     float64 `json:"rate"`
	RateBurst     int     `json:"burst"`
	MaxBatch      int     `json:"max_batch"`
	MaxConns      int     `json:"max_conns"`
	MaxConnsPerIP int     `json:"max_conns_per_ip"`
	MaxInFlight   int     `json:"max_in_flight"`
	CallQueue     int     `json:"call_queue"`
	CallsPerRound int     `json:"calls_per_round"`
	// BatchLingerMs is --rpc-batch-linger in milliseconds (0: none).
	BatchLingerMs   float64 `json:"batch_linger_ms,omitempty"`
	Getters         int     `json:"getters"`
	GetterQueue     int     `json:"getter_queue"`
	MaxRequestBytes int     `json:"max_request_bytes"`
}

// VersionResult is the result of system_version.
type VersionResult struct {
	Version string `json:"version"`
}

// MethodsResult is the result of rpc_methods: the served methods, sorted.
type MethodsResult struct {
	Methods []string `json:"methods"`
}
