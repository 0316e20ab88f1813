// Package trusted is the Go SDK of the confidential side: it talks to a
// worker's JSON-RPC for direct invocation (its wire types are package
// worker/rpc/api; nothing of the server is linked in), and checks the
// enclave behind the worker against the chain rather than taking the
// worker's word.
//
// Dial fetches the shard's shielding key and the enclave's signer from the
// worker, then requires of the node's teerex registration of that signer
// (proved queries with client.Client) that it is active (registered,
// unexpired, its measurement allowed, not a debug enclave unless the
// policy allows it), that its shielding key hash is sha256 of the key the
// worker presented (else ErrShieldingKeyMismatch: nothing is ever
// encrypted to that key), and that its measurement serves the shard. The
// registration, policy, allowlist and shard are read at one height, whose
// state must be recent (Options.MaxStateAge, else ErrStaleState): a node
// cannot combine records of different heights, nor answer from before a
// revocation.
// Results of direct calls are checked too: the shard block header must be
// signed by that enclave and prove the call's leaf.
//
// Calls and getters are signed for the chain (its teerex.GenesisID, proved
// against a light-client-verified header), the enclave's measurement
// and the shard, so the enclave of another chain or shard refuses them. A
// getter is also signed with an expiry (Options.GetterLifetime from
// Options.Now) and for the reply key its answer is encrypted to: a
// captured getter cannot be replayed later or wrapped with another key.
package trusted

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// Errors. Each class of refusal is errors.Is-able.
var (
	// ErrShieldingKeyMismatch means the worker presented a shielding key
	// that is not the one its enclave registered on chain.
	ErrShieldingKeyMismatch = errors.New("trusted: worker's shielding key is not the registered enclave's")
	// ErrEnclaveNotActive means the worker's enclave is not registered, is
	// expired, or is no longer allowed.
	ErrEnclaveNotActive = errors.New("trusted: worker's enclave is not active on chain")
	// ErrIdentityMismatch means the worker's claims (measurement, signer)
	// disagree with the registration.
	ErrIdentityMismatch = errors.New("trusted: worker's identity disagrees with the registration")
	// ErrNotShardEnclave means the enclave's measurement does not serve
	// the worker's shard.
	ErrNotShardEnclave = errors.New("trusted: enclave does not serve the shard")
	// ErrInvalidCall means the enclave refused the call (see
	// InvalidCallError's Reason); nothing changed.
	ErrInvalidCall = errors.New("trusted: call refused by the enclave")
	// ErrUnproven means a result's block is not signed by the enclave or
	// does not prove the call: the worker's answer cannot be trusted.
	ErrUnproven = errors.New("trusted: result not proven by the enclave")
	// ErrNotConfirmed means the chain has not confirmed the result's shard
	// block (or confirmed another block of its number), whatever the
	// worker says: until it does, a host that rolls its enclave back can
	// make the call disappear.
	ErrNotConfirmed = errors.New("trusted: shard block not confirmed on chain")
	// ErrGetter means the enclave refused a getter (see the message).
	ErrGetter = errors.New("trusted: getter refused by the enclave")
	// ErrStaleState means the node answered Dial's checks from a state
	// older than Options.MaxStateAge: it is behind, or withholds newer
	// blocks (e.g. the one that revoked the enclave).
	ErrStaleState = errors.New("trusted: the node's chain state is too old")
)

// InvalidCallError is a refused call.
type InvalidCallError struct {
	Hash   string
	Reason string
}

func (e *InvalidCallError) Error() string { return "trusted: call refused by the enclave: " + e.Reason }

// Is matches ErrInvalidCall.
func (e *InvalidCallError) Is(target error) bool { return target == ErrInvalidCall }

// Registry is the chain as the SDK needs it; *client.Client implements it
// with proved queries and light-client-verified headers. The *At queries
// read at a height (0: the latest the node has) and return it.
type Registry interface {
	EnclaveAt(ctx context.Context, signer tx.Address, height int64) (*teerex.Enclave, int64, error)
	PolicyAt(ctx context.Context, height int64) (*teerex.Policy, int64, error)
	AllowlistAt(ctx context.Context, height int64) (teerex.MRENCLAVEs, int64, error)
	ShardAt(ctx context.Context, id types.Hash, height int64) (*client.ShardStatus, error)
	// VerifiedHeader is the verified header at height: the time of the
	// block after a state's height tells how recent that state is.
	VerifiedHeader(ctx context.Context, height int64) (*cmttypes.Header, error)
	// SidechainBlock is the chain's confirmation of a shard block (nil if
	// not confirmed): what "confirmed" is checked against.
	SidechainBlock(ctx context.Context, shard types.Hash, number uint64) (*sidechain.Confirmation, int64, error)
	// GenesisID is the chain's genesis ID (proved): what calls and getters
	// are signed for.
	GenesisID(ctx context.Context) (types.Hash, error)
}

var _ Registry = (*client.Client)(nil)

// DefaultGetterLifetime is how long a signed getter stays answerable by
// default.
const DefaultGetterLifetime = 2 * time.Minute

// DefaultMaxStateAge is how old the chain state Dial checks an enclave
// against may be by default: minutes, where blocks come every second or
// so, to allow for clocks apart.
const DefaultMaxStateAge = 5 * time.Minute

// Options configure a Client.
type Options struct {
	// HTTPClient makes the HTTP requests; default a client with a 30s
	// timeout.
	HTTPClient *http.Client
	// Now is the clock registrations are judged by and getter expiries
	// set from; default time.Now. The enclave judges expiries by the
	// chain's time: a clock far from it gets getters refused.
	Now func() time.Time
	// GetterLifetime is how long after Now a signed getter expires;
	// default DefaultGetterLifetime, at most stf.MaxGetterLifetime.
	GetterLifetime time.Duration
	// MaxStateAge bounds how old, by Now, the chain state Dial checks the
	// enclave against may be: the time of the verified block that
	// commits it. Default DefaultMaxStateAge.
	MaxStateAge time.Duration
}

// Client is a verified connection to one worker.
type Client struct {
	url   string
	wsURL string
	http  *http.Client
	ids   atomic.Int64

	key       []byte
	signer    tx.Address
	mrenclave [32]byte
	shard     [32]byte
	genesis   [32]byte
	enclave   teerex.Enclave
	reg       Registry

	now            func() time.Time
	getterLifetime time.Duration
}

// Dial connects to the worker at workerURL (http://host:port; ws:// is
// accepted too) and verifies its enclave against reg (see the package
// doc).
func Dial(ctx context.Context, workerURL string, reg Registry, opts Options) (*Client, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch {
	case opts.GetterLifetime == 0:
		opts.GetterLifetime = DefaultGetterLifetime
	case opts.GetterLifetime < 0 || opts.GetterLifetime > stf.MaxGetterLifetime:
		return nil, fmt.Errorf("trusted: getter lifetime %s: want more than 0 and at most %s", opts.GetterLifetime, stf.MaxGetterLifetime)
	}
	switch {
	case opts.MaxStateAge == 0:
		opts.MaxStateAge = DefaultMaxStateAge
	case opts.MaxStateAge < 0:
		return nil, fmt.Errorf("trusted: max state age %s: want more than 0", opts.MaxStateAge)
	}
	u := strings.TrimSuffix(workerURL, "/")
	switch {
	case strings.HasPrefix(u, "ws://"):
		u = "http://" + strings.TrimPrefix(u, "ws://")
	case strings.HasPrefix(u, "wss://"):
		u = "https://" + strings.TrimPrefix(u, "wss://")
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
	default:
		return nil, fmt.Errorf("trusted: worker URL %q: want http(s):// or ws(s)://", workerURL)
	}
	c := &Client{url: u, wsURL: "ws" + strings.TrimPrefix(u, "http"), http: opts.HTTPClient, reg: reg, now: opts.Now, getterLifetime: opts.GetterLifetime}
	var id api.ShieldingKeyResult
	if err := c.call(ctx, api.MethodGetShieldingKey, nil, &id); err != nil {
		return nil, err
	}
	if err := c.setIdentity(&id); err != nil {
		return nil, err
	}
	if err := c.verify(ctx, reg, opts.Now(), opts.MaxStateAge); err != nil {
		return nil, err
	}
	g, err := reg.GenesisID(ctx)
	if err != nil {
		return nil, fmt.Errorf("trusted: the chain's genesis ID: %w", err)
	}
	c.genesis = g
	return c, nil
}

func (c *Client) setIdentity(id *api.ShieldingKeyResult) error {
	var err error
	if c.key, err = hex.DecodeString(id.ShieldingKey); err != nil {
		return fmt.Errorf("trusted: worker's shielding key: %w", err)
	}
	if _, err := shielding.ParsePublicKey(c.key); err != nil {
		return fmt.Errorf("trusted: worker's shielding key: %w", err)
	}
	if c.signer, err = tx.ParseAddress(id.Signer); err != nil {
		return fmt.Errorf("trusted: worker's signer: %w", err)
	}
	m, err := types.ParseHash(id.MRENCLAVE)
	if err != nil {
		return fmt.Errorf("trusted: worker's mrenclave: %w", err)
	}
	s, err := types.ParseHash(id.Shard)
	if err != nil {
		return fmt.Errorf("trusted: worker's shard: %w", err)
	}
	c.mrenclave, c.shard = m, s
	return nil
}

// verify checks the worker's enclave against the chain, everything read at
// the height the node answers the registration at, if that is recent.
func (c *Client) verify(ctx context.Context, reg Registry, now time.Time, maxAge time.Duration) error {
	e, h, err := reg.EnclaveAt(ctx, c.signer, 0)
	if err != nil {
		if errors.Is(err, teerex.ErrNotRegistered) {
			return fmt.Errorf("%w: %w", ErrEnclaveNotActive, err)
		}
		return fmt.Errorf("trusted: registration of %s: %w", c.signer, err)
	}
	// The state of height h is the one block h+1 was made on.
	hdr, err := reg.VerifiedHeader(ctx, h+1)
	if err != nil {
		return fmt.Errorf("trusted: header %d: %w", h+1, err)
	}
	if age := now.Sub(hdr.Time); age > maxAge {
		return fmt.Errorf("%w: the node answered at height %d, committed %s ago (at most %s)", ErrStaleState, h, age.Round(time.Second), maxAge)
	}
	at := func(what string, got int64) error {
		if got != h {
			return fmt.Errorf("trusted: %s read at height %d, not %d", what, got, h)
		}
		return nil
	}
	if e.Signer != c.signer {
		return fmt.Errorf("%w: registration names signer %s", ErrIdentityMismatch, e.Signer)
	}
	if sha256.Sum256(c.key) != [32]byte(e.ShieldingKeyHash) {
		return fmt.Errorf("%w: sha256 of the presented key is %x, registered %s", ErrShieldingKeyMismatch, sha256.Sum256(c.key), e.ShieldingKeyHash)
	}
	if e.MRENCLAVE != c.mrenclave {
		return fmt.Errorf("%w: worker claims MRENCLAVE %x, registered %s", ErrIdentityMismatch, c.mrenclave, e.MRENCLAVE)
	}
	p, ph, err := reg.PolicyAt(ctx, h)
	if err == nil {
		err = at("policy", ph)
	}
	if err != nil {
		return fmt.Errorf("trusted: attestation policy: %w", err)
	}
	if exp := e.ExpiresAt(p.RenewalPeriod()); now.After(exp) {
		return fmt.Errorf("%w: %w: attested %s, expired %s", ErrEnclaveNotActive, teerex.ErrExpired, e.Attested().Format(time.RFC3339), exp.Format(time.RFC3339))
	}
	if e.Debug && !p.AllowDebug {
		return fmt.Errorf("%w: %w", ErrEnclaveNotActive, teerex.ErrDebugEnclave)
	}
	if !p.AllowAnyMRENCLAVE {
		l, lh, err := reg.AllowlistAt(ctx, h)
		if err == nil {
			err = at("allowlist", lh)
		}
		if err != nil {
			return fmt.Errorf("trusted: allowlist: %w", err)
		}
		if !slices.Contains(l, e.MRENCLAVE) {
			return fmt.Errorf("%w: %w: %s", ErrEnclaveNotActive, teerex.ErrMRENCLAVENotAllowed, e.MRENCLAVE)
		}
	}
	st, err := reg.ShardAt(ctx, types.Hash(c.shard), h)
	if err == nil {
		err = at("shard", st.Height)
	}
	if err != nil {
		return fmt.Errorf("trusted: shard %x: %w", c.shard, err)
	}
	if want := st.Shard.MRENCLAVEAt(uint64(max(st.Height, 0))); want != e.MRENCLAVE {
		return fmt.Errorf("%w: shard %x is served by %s, the enclave runs %s", ErrNotShardEnclave, c.shard, want, e.MRENCLAVE)
	}
	c.enclave = *e
	return nil
}

// ShieldingKey returns the verified shielding key.
func (c *Client) ShieldingKey() []byte { return bytes.Clone(c.key) }

// Shard returns the worker's shard.
func (c *Client) Shard() [32]byte { return c.shard }

// MRENCLAVE returns the enclave's measurement.
func (c *Client) MRENCLAVE() [32]byte { return c.mrenclave }

// Genesis returns the ID of the chain calls and getters are signed for
// (teerex.GenesisID).
func (c *Client) Genesis() [32]byte { return c.genesis }

// target is what calls and getters are signed for.
func (c *Client) target() stf.Target {
	return stf.Target{Genesis: c.genesis, MRENCLAVE: c.mrenclave, Shard: c.shard}
}

// Enclave returns the verified registration.
func (c *Client) Enclave() teerex.Enclave { return c.enclave }

// URL returns the worker's URL.
func (c *Client) URL() string { return c.url }

type rpcRequest struct {
	JSONRPC string `json:"jsonrpc"`
	ID      int64  `json:"id"`
	Method  string `json:"method"`
	Params  any    `json:"params,omitempty"`
}

type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *api.Error      `json:"error"`
	Method string          `json:"method"`
	Params struct {
		Subscription string         `json:"subscription"`
		Result       api.CallResult `json:"result"`
	} `json:"params"`
}

// call makes one JSON-RPC call over HTTP; an error object is returned as
// an *api.Error.
func (c *Client) call(ctx context.Context, method string, params, result any) error {
	body, err := json.Marshal(rpcRequest{JSONRPC: api.Version, ID: c.ids.Add(1), Method: method, Params: params})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("trusted: %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("trusted: %s: %w", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("trusted: %s: %w", method, err)
	}
	var r rpcResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("trusted: %s: HTTP %d: %w", method, resp.StatusCode, err)
	}
	if r.Error != nil {
		return r.Error
	}
	if err := json.Unmarshal(r.Result, result); err != nil {
		return fmt.Errorf("trusted: %s: result: %w", method, err)
	}
	return nil
}

// EncryptCall signs call for the chain, shard and enclave with nonce and
// encrypts it to the verified shielding key.
func (c *Client) EncryptCall(key ed25519.PrivateKey, call stf.Call, nonce uint64) ([]byte, error) {
	raw, err := stf.EncodeCall(call)
	if err != nil {
		return nil, err
	}
	signed, err := stf.SignCall(key, raw, nonce, c.target())
	if err != nil {
		return nil, err
	}
	return shielding.Encrypt(c.key, shielding.InfoTrustedCall, signed)
}

// Result is a verified executed call.
type Result struct {
	// Hash is the SHA-256 of the call's ciphertext.
	Hash [32]byte
	// Success is false for a call the STF refused (Error says why); its
	// nonce is consumed all the same.
	Success bool
	Error   string
	// Block is the enclave-signed shard block holding the call, with its
	// hash: what confirm_sidechain_block records on chain.
	Block      sidechain.Header
	HeaderHash types.Hash
}

// result verifies a worker's call result for ciphertext ct.
func (c *Client) result(ct []byte, r *api.CallResult) (*Result, error) {
	hash := sha256.Sum256(ct)
	if r.Hash != hex.EncodeToString(hash[:]) {
		return nil, fmt.Errorf("%w: result for call %s, sent %x", ErrUnproven, r.Hash, hash)
	}
	switch r.Status {
	case api.StatusInvalid:
		return nil, &InvalidCallError{Hash: r.Hash, Reason: r.Reason}
	case api.StatusExecuted, api.StatusConfirmed:
	default:
		return nil, fmt.Errorf("trusted: unexpected status %q", r.Status)
	}
	if r.Block == nil || r.Result == nil {
		return nil, fmt.Errorf("%w: no block", ErrUnproven)
	}
	sh, err := r.Block.Signed()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnproven, err)
	}
	h, err := sh.Verify()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnproven, err)
	}
	if sh.Header.Author != c.signer || sh.Header.Shard != types.Hash(c.shard) {
		return nil, fmt.Errorf("%w: block by %s of shard %s", ErrUnproven, sh.Header.Author, sh.Header.Shard)
	}
	status := sidechain.LeafFailed
	if r.Result.Success {
		status = sidechain.LeafExecuted
	}
	leaf := sidechain.CallLeaf(hash, status)
	p, err := r.Block.Proof.Merkle(leaf)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnproven, err)
	}
	if err := p.Verify(sh.Header.CallsRoot[:], leaf); err != nil {
		return nil, fmt.Errorf("%w: call not in block %d: %w", ErrUnproven, sh.Header.Number, err)
	}
	return &Result{Hash: hash, Success: r.Result.Success, Error: r.Result.Error, Block: sh.Header, HeaderHash: h}, nil
}

// Confirmed checks, with a proved query, that the chain confirmed the shard
// block of r: the final word on a direct call, since an executed call is
// only in the worker's store until then (ErrNotConfirmed otherwise).
func (c *Client) Confirmed(ctx context.Context, r *Result) error {
	conf, height, err := c.reg.SidechainBlock(ctx, r.Block.Shard, r.Block.Number)
	if err != nil {
		return fmt.Errorf("trusted: confirmation of shard block %d: %w", r.Block.Number, err)
	}
	if conf == nil {
		return fmt.Errorf("%w: block %d (chain height %d)", ErrNotConfirmed, r.Block.Number, height)
	}
	if conf.HeaderHash != r.HeaderHash {
		return fmt.Errorf("%w: the chain confirmed block %d as %s, the call is in %s", ErrNotConfirmed, r.Block.Number, conf.HeaderHash, r.HeaderHash)
	}
	return nil
}

// Submit sends an encrypted call and returns its verified result. A
// refused call gives an *InvalidCallError.
func (c *Client) Submit(ctx context.Context, ct []byte) (*Result, error) {
	var r api.CallResult
	err := c.call(ctx, api.MethodSubmitTrustedCall, api.CallParams{Shard: hex.EncodeToString(c.shard[:]), Call: hex.EncodeToString(ct)}, &r)
	var re *api.Error
	if errors.As(err, &re) && re.Code == api.CodeInvalidCall {
		// The refusal's data is the call result with the reason.
		if b, merr := json.Marshal(re.Data); merr == nil && json.Unmarshal(b, &r) == nil && r.Status == api.StatusInvalid {
			return nil, &InvalidCallError{Hash: r.Hash, Reason: r.Reason}
		}
		return nil, &InvalidCallError{Reason: re.Message}
	}
	if err != nil {
		return nil, err
	}
	return c.result(ct, &r)
}

// SubmitCall signs call with the account's next nonce (a private getter)
// and submits it.
func (c *Client) SubmitCall(ctx context.Context, key ed25519.PrivateKey, call stf.Call) (*Result, error) {
	n, err := c.Nonce(ctx, key)
	if err != nil {
		return nil, err
	}
	ct, err := c.EncryptCall(key, call, n)
	if err != nil {
		return nil, err
	}
	return c.Submit(ctx, ct)
}

// Transfer moves amount from key's shard account to to.
func (c *Client) Transfer(ctx context.Context, key ed25519.PrivateKey, to tx.Address, amount uint64) (*Result, error) {
	return c.SubmitCall(ctx, key, stf.Call{Transfer: &stf.Transfer{From: tx.AddressOf(key.Public().(ed25519.PublicKey)), To: to, Amount: amount}})
}

// Unshield releases amount of key's shard account to the public account
// beneficiary (the enclave submits unshield_funds).
func (c *Client) Unshield(ctx context.Context, key ed25519.PrivateKey, beneficiary tx.Address, amount uint64) (*Result, error) {
	return c.SubmitCall(ctx, key, stf.Call{Unshield: &stf.UnshieldTo{From: tx.AddressOf(key.Public().(ed25519.PublicKey)), Beneficiary: beneficiary, Amount: amount}})
}

// Getter runs a getter signed by key privately and returns its value: the
// worker sees only ciphertexts. A refusal matches ErrGetter and, when the
// enclave gave one, its stf error (e.g. stf.ErrGetterExpired).
func (c *Client) Getter(ctx context.Context, key ed25519.PrivateKey, g stf.Getter) ([]byte, error) {
	return c.getter(ctx, api.MethodExecuteGetter, key, g)
}

func (c *Client) getter(ctx context.Context, method string, key ed25519.PrivateKey, g stf.Getter) ([]byte, error) {
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
	var res api.GetterResult
	if err := c.call(ctx, method, api.GetterParams{Shard: hex.EncodeToString(c.shard[:]), Request: hex.EncodeToString(req)}, &res); err != nil {
		return nil, err
	}
	ct, err := hex.DecodeString(res.Response)
	if err != nil {
		return nil, fmt.Errorf("trusted: getter response: %w", err)
	}
	resp, err := rk.Open(req, ct)
	if err != nil {
		return nil, err
	}
	if resp.Error != "" {
		return nil, getterError(resp.Error)
	}
	return resp.Value, nil
}

// getterRefusals are the enclave's refusals of a getter that getterError
// makes errors.Is-able again; their text travels in the encrypted answer.
var getterRefusals = []error{
	stf.ErrGetterExpired, stf.ErrGetterExpiryTooFar, stf.ErrGetterReplyKey, stf.ErrNoChainTime,
	stf.ErrBadSignature, stf.ErrMalformed, stf.ErrNotOwner, stf.ErrUnknownCall,
}

// getterError is the error for the enclave's refusal msg: it matches
// ErrGetter and, if msg starts with one's text, that refusal.
func getterError(msg string) error {
	for _, r := range getterRefusals {
		if rest, ok := strings.CutPrefix(msg, r.Error()); ok {
			return fmt.Errorf("%w: %w%s", ErrGetter, r, rest)
		}
	}
	return fmt.Errorf("%w: %s", ErrGetter, msg)
}

func decodeUint(b []byte) (uint64, error) {
	var v uint64
	if err := codec.Unmarshal(b, &v); err != nil {
		return 0, fmt.Errorf("trusted: getter value: %w", err)
	}
	return v, nil
}

// Balance returns key's free balance in the shard.
func (c *Client) Balance(ctx context.Context, key ed25519.PrivateKey) (uint64, error) {
	a := tx.AddressOf(key.Public().(ed25519.PublicKey))
	b, err := c.getter(ctx, api.MethodExecuteGetter, key, stf.Getter{FreeBalance: &a})
	if err != nil {
		return 0, err
	}
	return decodeUint(b)
}

// Nonce returns key's next trusted-call nonce.
func (c *Client) Nonce(ctx context.Context, key ed25519.PrivateKey) (uint64, error) {
	a := tx.AddressOf(key.Public().(ed25519.PublicKey))
	b, err := c.getter(ctx, api.MethodGetNonce, key, stf.Getter{Nonce: &a})
	if err != nil {
		return 0, err
	}
	return decodeUint(b)
}

// Health returns the worker's system_health.
func (c *Client) Health(ctx context.Context) (*api.HealthResult, error) {
	var h api.HealthResult
	return &h, c.call(ctx, api.MethodHealth, nil, &h)
}
