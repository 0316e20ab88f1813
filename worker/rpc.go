package worker

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

// The worker's JSON-RPC 2.0 over HTTP (POST /). This is the start of the
// direct-invocation API (design section 5); it serves what clients need for
// the indirect path:
//
//	author_getShieldingKey  {shielding_key, signer, mrenclave, shard} (hex);
//	                        clients check sha256(shielding_key) against the
//	                        on-chain registration, not the host's word
//	system_health           {height, state_root}: last processed block
//	system_version          {version}
//	dev_executeGetter       [hex signed getter] -> hex plaintext result;
//	                        dev mode only (the enclave refuses otherwise)
//	                        until getters are answered encrypted
const maxRPCBody = 1 << 20

type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *RPCError       `json:"error,omitempty"`
}

// RPCError is a JSON-RPC error object.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string { return e.Message }

// JSON-RPC error codes.
const (
	rpcParseError     = -32700
	rpcInvalidRequest = -32600
	rpcMethodNotFound = -32601
	rpcInvalidParams  = -32602
	rpcServerError    = -32000
)

// ShieldingKeyInfo is the result of author_getShieldingKey.
type ShieldingKeyInfo struct {
	ShieldingKey string `json:"shielding_key"`
	Signer       string `json:"signer"`
	MRENCLAVE    string `json:"mrenclave"`
	Shard        string `json:"shard"`
}

// Health is the result of system_health.
type Health struct {
	Height    int64  `json:"height"`
	StateRoot string `json:"state_root"`
}

func (w *Worker) rpcServer() *http.Server {
	return &http.Server{Handler: http.HandlerFunc(w.serveRPC), ReadHeaderTimeout: 10 * time.Second}
}

func (w *Worker) serveRPC(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(rw, "JSON-RPC 2.0: POST a request", http.StatusMethodNotAllowed)
		return
	}
	var req rpcRequest
	res := rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null")}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRPCBody+1))
	switch {
	case err != nil || len(body) > maxRPCBody:
		res.Error = &RPCError{Code: rpcInvalidRequest, Message: "request unreadable or too large"}
	case json.Unmarshal(body, &req) != nil:
		res.Error = &RPCError{Code: rpcParseError, Message: "parse error"}
	case req.JSONRPC != "2.0" || req.Method == "":
		res.Error = &RPCError{Code: rpcInvalidRequest, Message: "not a JSON-RPC 2.0 request"}
	default:
		if req.ID != nil {
			res.ID = req.ID
		}
		res.Result, err = w.rpcCall(r, req.Method, req.Params)
		if err != nil {
			var re *RPCError
			if !errors.As(err, &re) {
				re = &RPCError{Code: rpcServerError, Message: err.Error()}
			}
			res.Result, res.Error = nil, re
		}
	}
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(res)
}

func (w *Worker) rpcCall(r *http.Request, method string, params json.RawMessage) (any, error) {
	switch method {
	case "author_getShieldingKey":
		id := w.Identity()
		if id.ShieldingKey == "" {
			return nil, &RPCError{Code: rpcServerError, Message: "enclave not started"}
		}
		return ShieldingKeyInfo{ShieldingKey: id.ShieldingKey, Signer: id.Signer, MRENCLAVE: id.MRENCLAVE, Shard: id.Shard}, nil
	case "system_health":
		h, root := w.Processed()
		return Health{Height: h, StateRoot: hex.EncodeToString(root[:])}, nil
	case "system_version":
		return map[string]string{"version": Version}, nil
	case "dev_executeGetter":
		if !w.cfg.Dev {
			return nil, &RPCError{Code: rpcMethodNotFound, Message: "dev_executeGetter: dev mode only"}
		}
		var args []string
		if json.Unmarshal(params, &args) != nil || len(args) != 1 {
			return nil, &RPCError{Code: rpcInvalidParams, Message: "params: [hex signed getter]"}
		}
		g, err := hex.DecodeString(args[0])
		if err != nil {
			return nil, &RPCError{Code: rpcInvalidParams, Message: "getter: " + err.Error()}
		}
		v, err := w.DebugGetter(r.Context(), g)
		if err != nil {
			return nil, err
		}
		return hex.EncodeToString(v), nil
	}
	return nil, &RPCError{Code: rpcMethodNotFound, Message: "method not found: " + method}
}
