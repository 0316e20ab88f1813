package worker

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// The worker's JSON-RPC 2.0 over HTTP (POST /): the part of the
// direct-invocation API (design section 5, package worker/rpc) that the
// indirect path needs, with the same method names and parameters:
//
//	author_getShieldingKey  {} -> {shielding_key, signer, mrenclave, shard}
//	                        (hex); clients check sha256(shielding_key)
//	                        against the on-chain registration, not the
//	                        host's word
//	state_executeGetter     {shard, request} -> {response}: a getter
//	                        encrypted to the shielding key with a reply key
//	                        (shielding.NewGetterRequest), answered encrypted
//	                        to that key; the host reads neither
//	system_health           {} -> {height, state_root}: last processed block
//	system_version          {} -> {version}
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
	rpcWrongShard     = 1040
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
	case "state_executeGetter":
		var p GetterParams
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, &RPCError{Code: rpcInvalidParams, Message: "params: {shard, request}: " + err.Error()}
		}
		shard, err1 := decodeHex(p.Shard)
		req, err2 := decodeHex(p.Request)
		if err := errors.Join(err1, err2); err != nil || len(req) == 0 {
			return nil, &RPCError{Code: rpcInvalidParams, Message: fmt.Sprintf("params: {shard, request} in hex: %v", err)}
		}
		if !bytes.Equal(shard, w.cfg.Shard[:]) {
			return nil, &RPCError{Code: rpcWrongShard, Message: "this worker serves shard " + hex.EncodeToString(w.cfg.Shard[:])}
		}
		rep, err := callAs[*protocol.PrivateGetterReply](r.Context(), w, &protocol.PrivateGetter{Request: req})
		if err != nil {
			return nil, err
		}
		return GetterResult{Response: hex.EncodeToString(rep.Response)}, nil
	}
	return nil, &RPCError{Code: rpcMethodNotFound, Message: "method not found: " + method}
}

// GetterParams are the parameters of state_executeGetter.
type GetterParams struct {
	Shard   string `json:"shard"`
	Request string `json:"request"`
}

// GetterResult is the result of state_executeGetter.
type GetterResult struct {
	Response string `json:"response"`
}

// decodeHex decodes hex with an optional 0x prefix.
func decodeHex(s string) ([]byte, error) {
	return hex.DecodeString(strings.TrimPrefix(s, "0x"))
}

// RPCClient calls a worker's JSON-RPC.
type RPCClient struct {
	// URL is the worker's RPC URL (http://host:port).
	URL string
	// HTTP defaults to a client with a 30 s timeout.
	HTTP *http.Client
}

// Call calls method with params and decodes the result into result.
// Error objects are returned as *RPCError.
func (c *RPCClient) Call(ctx context.Context, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("rpc %s: %w", method, err)
	}
	body, err := json.Marshal(rpcRequest{JSONRPC: "2.0", ID: json.RawMessage("1"), Method: method, Params: p})
	if err != nil {
		return fmt.Errorf("rpc %s: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("rpc %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("rpc %s: %w", method, err)
	}
	defer resp.Body.Close()
	var res struct {
		Result json.RawMessage `json:"result"`
		Error  *RPCError       `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&res); err != nil {
		return fmt.Errorf("rpc %s: %s: %w", method, resp.Status, err)
	}
	if res.Error != nil {
		return fmt.Errorf("rpc %s: %w", method, res.Error)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(res.Result, result); err != nil {
		return fmt.Errorf("rpc %s: result: %w", method, err)
	}
	return nil
}

// ShieldingKey calls author_getShieldingKey. The caller must check the
// key's hash against the enclave's registration on chain.
func (c *RPCClient) ShieldingKey(ctx context.Context) (*ShieldingKeyInfo, error) {
	var r ShieldingKeyInfo
	return &r, c.Call(ctx, "author_getShieldingKey", nil, &r)
}

// Health calls system_health.
func (c *RPCClient) Health(ctx context.Context) (*Health, error) {
	var r Health
	return &r, c.Call(ctx, "system_health", nil, &r)
}

// ExecuteGetter calls state_executeGetter with an encrypted getter request
// for shard and returns the encrypted response.
func (c *RPCClient) ExecuteGetter(ctx context.Context, shard [32]byte, request []byte) ([]byte, error) {
	var r GetterResult
	p := GetterParams{Shard: hex.EncodeToString(shard[:]), Request: hex.EncodeToString(request)}
	if err := c.Call(ctx, "state_executeGetter", p, &r); err != nil {
		return nil, err
	}
	b, err := decodeHex(r.Response)
	if err != nil {
		return nil, fmt.Errorf("rpc state_executeGetter: response: %w", err)
	}
	return b, nil
}
