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
// Several workers. DialWorkers takes several worker URLs of one shard and
// uses one worker at a time, moving to the next (round robin) when one
// does not serve: a connection error or timeout, an HTTP 5xx, or an error
// code saying it cannot take the request now (api.CodeNotReady,
// CodeRateLimited, CodeBusy, CodeSeveralWorkers, CodeNoQuorum,
// CodeInternal). After a round in which all failed it pauses
// (Options.FailoverBackoff, doubling), and gives up after
// Options.FailoverRounds rounds (ErrNoWorker). The first worker that
// verifies fixes the client's shard, shielding key and measurement; every
// worker the client switches to is verified against the chain like the
// first, each time, and must present the same three (its own enclave
// signer, registered on chain, signs its results). A worker that fails is
// skipped, never used unverified. Dial's client of one worker verifies it
// once and makes one attempt per request, returning the worker's error as
// it is.
//
// A call whose answer is lost after it was sent (or that the worker failed
// internally) may have been ordered: Submit resends the same ciphertext to
// the next worker, where the nonce keeps it from running twice, and
// reports one outcome: that worker's proven result, or, if the resubmission
// is refused as a repeat, an *OutcomeError: ErrExecutedEarlier when the
// enclave's nonce getter shows the call's nonce used (SignedBy gives the
// client the key and nonce to ask), else ErrOutcomeUnknown. A Watch whose
// connection drops resubmits the same way, or, once the call is executed,
// follows its confirmation on chain.
//
// Stale answers. A worker of a shard with several workers answers a
// getter after a read barrier (it applied every call the shard ordered
// before the getter); when that fails (it reaches no leader, or lags) it
// answers from its own state and marks the answer stale. Read returns the
// mark (Reading.Stale); Getter and Balance return any answer. Nonce, and
// so SubmitCall, Transfer and Unshield, never signs with a nonce from a
// stale answer: it asks the same worker again (StaleTries times in all),
// then the other workers, and fails with ErrStaleAnswer if every worker
// answered stale, unless Options.AllowStaleNonce (then it uses the highest
// stale nonce seen; the enclave's nonce check refuses the call if it is
// used). The mark is the host's word: a fresh answer is never a guarantee,
// the nonce check at apply time is what protects a call.
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
	"sync"
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

// Is matches ErrInvalidCall, and ErrUnknownChannel for that reason.
func (e *InvalidCallError) Is(target error) bool {
	return target == ErrInvalidCall || target == ErrUnknownChannel && e.Reason == reasonUnknownChannel
}

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
	// FailoverRounds is how many times a request may go round the workers
	// (see the package doc). Default DefaultFailoverRounds with several
	// workers and 1 with one: Dial's client makes one attempt and returns
	// the worker's error as it is.
	FailoverRounds int
	// FailoverBackoff is the pause after the first round in which every
	// worker failed; it doubles after each. Default
	// DefaultFailoverBackoff.
	FailoverBackoff time.Duration
	// StaleTries is how many times Nonce asks a worker whose answer is
	// stale before it moves to the next; default DefaultStaleTries.
	StaleTries int
	// AllowStaleNonce lets Nonce (and the calls it signs) use the highest
	// nonce of stale answers when every worker answered stale, instead of
	// failing with ErrStaleAnswer. Such a call may be refused as a stale
	// nonce; it never runs twice.
	AllowStaleNonce bool
}

// Client is a verified connection to a shard's workers, one at a time.
// It is safe for concurrent use.
type Client struct {
	eps  []endpoint
	http *http.Client
	ids  atomic.Int64
	reg  Registry

	now            func() time.Time
	getterLifetime time.Duration
	maxStateAge    time.Duration
	rounds         int
	backoff        time.Duration
	staleTries     int
	allowStale     bool

	// What calls and getters are encrypted to and signed for: key and
	// shard set by the first verified worker, then required of every
	// other; mrenclave is the last verified worker's, which the chain had
	// serve the shard (it changes when the shard moves to another
	// release), guarded by mu.
	key       []byte
	mrenclave [32]byte
	shard     [32]byte
	genesis   [32]byte

	pick sync.Mutex // held while verifying a worker
	mu   sync.Mutex
	cur  *worker // in use; nil: verify eps[next] first
	last *worker // the last verified
	next int
}

// Dial connects to the worker at workerURL (http://host:port; ws:// is
// accepted too) and verifies its enclave against reg (see the package
// doc). It is DialWorkers with one worker.
func Dial(ctx context.Context, workerURL string, reg Registry, opts Options) (*Client, error) {
	return DialWorkers(ctx, []string{workerURL}, reg, opts)
}

// DialWorkers connects to the first of workerURLs, workers of one shard,
// whose enclave verifies against reg, and fails over among them (see the
// package doc).
func DialWorkers(ctx context.Context, workerURLs []string, reg Registry, opts Options) (*Client, error) {
	if len(workerURLs) == 0 {
		return nil, errors.New("trusted: no worker URL")
	}
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
	switch {
	case opts.FailoverRounds == 0 && len(workerURLs) == 1:
		opts.FailoverRounds = 1
	case opts.FailoverRounds == 0:
		opts.FailoverRounds = DefaultFailoverRounds
	case opts.FailoverRounds < 0:
		return nil, fmt.Errorf("trusted: failover rounds %d: want more than 0", opts.FailoverRounds)
	}
	switch {
	case opts.StaleTries == 0:
		opts.StaleTries = DefaultStaleTries
	case opts.StaleTries < 0:
		return nil, fmt.Errorf("trusted: stale tries %d: want more than 0", opts.StaleTries)
	}
	switch {
	case opts.FailoverBackoff == 0:
		opts.FailoverBackoff = DefaultFailoverBackoff
	case opts.FailoverBackoff < 0:
		return nil, fmt.Errorf("trusted: failover backoff %s: want more than 0", opts.FailoverBackoff)
	}
	c := &Client{http: opts.HTTPClient, reg: reg, now: opts.Now, getterLifetime: opts.GetterLifetime,
		maxStateAge: opts.MaxStateAge, rounds: opts.FailoverRounds, backoff: opts.FailoverBackoff,
		staleTries: opts.StaleTries, allowStale: opts.AllowStaleNonce}
	for _, u := range workerURLs {
		ep, err := parseEndpoint(u)
		if err != nil {
			return nil, err
		}
		c.eps = append(c.eps, ep)
	}
	// The first worker that verifies (current) fixes the client's shard,
	// key and measurement.
	if err := c.do(ctx, api.MethodGetShieldingKey, func(context.Context, *worker) error { return nil }); err != nil {
		return nil, err
	}
	g, err := reg.GenesisID(ctx)
	if err != nil {
		return nil, fmt.Errorf("trusted: the chain's genesis ID: %w", err)
	}
	c.genesis = g
	return c, nil
}

// identity is what a worker presents of its enclave.
type identity struct {
	key       []byte
	signer    tx.Address
	mrenclave [32]byte
	shard     [32]byte
}

func parseIdentity(r *api.ShieldingKeyResult) (*identity, error) {
	var id identity
	var err error
	if id.key, err = hex.DecodeString(r.ShieldingKey); err != nil {
		return nil, fmt.Errorf("trusted: worker's shielding key: %w", err)
	}
	if _, err := shielding.ParsePublicKey(id.key); err != nil {
		return nil, fmt.Errorf("trusted: worker's shielding key: %w", err)
	}
	if id.signer, err = tx.ParseAddress(r.Signer); err != nil {
		return nil, fmt.Errorf("trusted: worker's signer: %w", err)
	}
	m, err := types.ParseHash(r.MRENCLAVE)
	if err != nil {
		return nil, fmt.Errorf("trusted: worker's mrenclave: %w", err)
	}
	s, err := types.ParseHash(r.Shard)
	if err != nil {
		return nil, fmt.Errorf("trusted: worker's shard: %w", err)
	}
	id.mrenclave, id.shard = m, s
	return &id, nil
}

// verifyWorker asks worker i for its enclave's identity and verifies it
// against the chain. The first worker verified sets the client's shard,
// key and measurement; a later one must present the same, since the
// client's calls are encrypted to that key and signed for them. Called
// with pick held.
func (c *Client) verifyWorker(ctx context.Context, i int) (*worker, error) {
	ep := c.eps[i]
	var r api.ShieldingKeyResult
	if err := c.post(ctx, ep.url, api.MethodGetShieldingKey, nil, &r); err != nil {
		return nil, err
	}
	id, err := parseIdentity(&r)
	if err != nil {
		return nil, err
	}
	if c.key != nil {
		switch {
		case id.shard != c.shard:
			return nil, fmt.Errorf("%w: worker serves shard %x, the client %x", ErrIdentityMismatch, id.shard, c.shard)
		case !bytes.Equal(id.key, c.key):
			return nil, fmt.Errorf("%w: worker presents shielding key %x, the client's calls are encrypted to %x", ErrIdentityMismatch, sha256.Sum256(id.key), sha256.Sum256(c.key))
		}
	}
	// verify checks that the chain has the worker's measurement serve the
	// shard now: after an upgrade (docs/upgrades.md) the shard's keys are
	// the same and the calls are signed for the new release.
	e, err := verify(ctx, c.reg, id, c.now(), c.maxStateAge)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.key == nil {
		c.key, c.shard = id.key, id.shard
	}
	c.mrenclave = id.mrenclave
	c.mu.Unlock()
	return &worker{endpoint: ep, i: i, signer: id.signer, enclave: *e}, nil
}

// verify checks the enclave of id against the chain, everything read at
// the height the node answers the registration at, if that is recent, and
// returns its registration.
func verify(ctx context.Context, reg Registry, id *identity, now time.Time, maxAge time.Duration) (*teerex.Enclave, error) {
	e, h, err := reg.EnclaveAt(ctx, id.signer, 0)
	if err != nil {
		if errors.Is(err, teerex.ErrNotRegistered) {
			return nil, fmt.Errorf("%w: %w", ErrEnclaveNotActive, err)
		}
		return nil, fmt.Errorf("trusted: registration of %s: %w", id.signer, err)
	}
	// The state of height h is the one block h+1 was made on.
	hdr, err := reg.VerifiedHeader(ctx, h+1)
	if err != nil {
		return nil, fmt.Errorf("trusted: header %d: %w", h+1, err)
	}
	if age := now.Sub(hdr.Time); age > maxAge {
		return nil, fmt.Errorf("%w: the node answered at height %d, committed %s ago (at most %s)", ErrStaleState, h, age.Round(time.Second), maxAge)
	}
	at := func(what string, got int64) error {
		if got != h {
			return fmt.Errorf("trusted: %s read at height %d, not %d", what, got, h)
		}
		return nil
	}
	if e.Signer != id.signer {
		return nil, fmt.Errorf("%w: registration names signer %s", ErrIdentityMismatch, e.Signer)
	}
	if sha256.Sum256(id.key) != [32]byte(e.ShieldingKeyHash) {
		return nil, fmt.Errorf("%w: sha256 of the presented key is %x, registered %s", ErrShieldingKeyMismatch, sha256.Sum256(id.key), e.ShieldingKeyHash)
	}
	if e.MRENCLAVE != id.mrenclave {
		return nil, fmt.Errorf("%w: worker claims MRENCLAVE %x, registered %s", ErrIdentityMismatch, id.mrenclave, e.MRENCLAVE)
	}
	p, ph, err := reg.PolicyAt(ctx, h)
	if err == nil {
		err = at("policy", ph)
	}
	if err != nil {
		return nil, fmt.Errorf("trusted: attestation policy: %w", err)
	}
	if exp := e.ExpiresAt(p.RenewalPeriod()); now.After(exp) {
		return nil, fmt.Errorf("%w: %w: attested %s, expired %s", ErrEnclaveNotActive, teerex.ErrExpired, e.Attested().Format(time.RFC3339), exp.Format(time.RFC3339))
	}
	if e.Debug && !p.AllowDebug {
		return nil, fmt.Errorf("%w: %w", ErrEnclaveNotActive, teerex.ErrDebugEnclave)
	}
	if !p.AllowAnyMRENCLAVE {
		l, lh, err := reg.AllowlistAt(ctx, h)
		if err == nil {
			err = at("allowlist", lh)
		}
		if err != nil {
			return nil, fmt.Errorf("trusted: allowlist: %w", err)
		}
		if !slices.Contains(l, e.MRENCLAVE) {
			return nil, fmt.Errorf("%w: %w: %s", ErrEnclaveNotActive, teerex.ErrMRENCLAVENotAllowed, e.MRENCLAVE)
		}
	}
	st, err := reg.ShardAt(ctx, types.Hash(id.shard), h)
	if err == nil {
		err = at("shard", st.Height)
	}
	if err != nil {
		return nil, fmt.Errorf("trusted: shard %x: %w", id.shard, err)
	}
	if want := st.Shard.MRENCLAVEAt(uint64(max(st.Height, 0))); want != e.MRENCLAVE {
		return nil, fmt.Errorf("%w: shard %x is served by %s, the enclave runs %s", ErrNotShardEnclave, id.shard, want, e.MRENCLAVE)
	}
	return e, nil
}

// ShieldingKey returns the verified shielding key.
func (c *Client) ShieldingKey() []byte { return bytes.Clone(c.key) }

// Shard returns the workers' shard.
func (c *Client) Shard() [32]byte { return c.shard }

// MRENCLAVE returns the enclave's measurement.
func (c *Client) MRENCLAVE() [32]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mrenclave
}

// Genesis returns the ID of the chain calls and getters are signed for
// (teerex.GenesisID).
func (c *Client) Genesis() [32]byte { return c.genesis }

// target is what calls and getters are signed for.
func (c *Client) target() stf.Target {
	return stf.Target{Genesis: c.genesis, MRENCLAVE: c.MRENCLAVE(), Shard: c.shard}
}

// Enclave returns the verified registration of the enclave of the worker
// last switched to.
func (c *Client) Enclave() teerex.Enclave {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last.enclave
}

// URL returns the URL of the worker in use (or, after one failed, of the
// one the next request tries first).
func (c *Client) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil {
		return c.cur.url
	}
	return c.eps[c.next].url
}

// Workers returns the URLs of all the client's workers, in failover order.
func (c *Client) Workers() []string {
	out := make([]string, len(c.eps))
	for i, ep := range c.eps {
		out[i] = ep.url
	}
	return out
}

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

// post makes one JSON-RPC call over HTTP to the worker at url; an error
// object is returned as an *api.Error, a missing answer as a
// *transportError.
func (c *Client) post(ctx context.Context, url, method string, params, result any) error {
	body, err := json.Marshal(rpcRequest{JSONRPC: api.Version, ID: c.ids.Add(1), Method: method, Params: params})
	if err != nil {
		return err
	}
	return c.postBody(ctx, url, method, body, result)
}

// postBody is post with the request encoded.
func (c *Client) postBody(ctx context.Context, url, method string, body []byte, result any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("trusted: %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return &transportError{method: method, err: err, sent: !dialFailed(err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return &transportError{method: method, err: err, sent: true}
	}
	r, err := decodeAnswer(b)
	switch {
	case err == nil && r.Error != nil:
		return r.Error
	case resp.StatusCode >= 500:
		// A proxy's or a dying server's answer: the request may have
		// reached the worker.
		return &transportError{method: method, err: fmt.Errorf("HTTP %d", resp.StatusCode), sent: true}
	case err != nil:
		return fmt.Errorf("trusted: %s: HTTP %d: %w", method, resp.StatusCode, err)
	}
	if raw, ok := result.(*json.RawMessage); ok {
		// Taken as it came (decodeAnswer validated it): a second pass
		// over it would only check what the first did.
		if len(r.Result) == 0 {
			return fmt.Errorf("trusted: %s: answer without a result", method)
		}
		*raw = r.Result
		return nil
	}
	if err := json.Unmarshal(r.Result, result); err != nil {
		return fmt.Errorf("trusted: %s: result: %w", method, err)
	}
	return nil
}

// EncryptCall signs call for the chain, shard and enclave with nonce and
// encrypts it to the verified shielding key.
func (c *Client) EncryptCall(key ed25519.PrivateKey, call stf.Call, nonce uint64) ([]byte, error) {
	signed, err := c.signCall(key, call, nonce)
	if err != nil {
		return nil, err
	}
	return shielding.Encrypt(c.key, shielding.InfoTrustedCall, signed)
}

// signCall signs call for the chain, shard and enclave with nonce.
func (c *Client) signCall(key ed25519.PrivateKey, call stf.Call, nonce uint64) ([]byte, error) {
	raw, err := stf.EncodeCall(call)
	if err != nil {
		return nil, err
	}
	return stf.SignCall(key, raw, nonce, c.target())
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

// result verifies worker w's call result for ciphertext ct: the block must
// be signed by w's enclave, the one verified when the client switched to
// w.
func (c *Client) result(w *worker, ct []byte, r *api.CallResult) (*Result, error) {
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
	if sh.Header.Author != w.signer || sh.Header.Shard != types.Hash(c.shard) {
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
	ok, err := c.confirmed(ctx, r)
	if err == nil && !ok {
		err = fmt.Errorf("%w: block %d", ErrNotConfirmed, r.Block.Number)
	}
	return err
}

// confirmed reports whether the chain confirmed r's block; an error if it
// cannot tell, or confirmed another block of that number.
func (c *Client) confirmed(ctx context.Context, r *Result) (bool, error) {
	conf, height, err := c.reg.SidechainBlock(ctx, r.Block.Shard, r.Block.Number)
	if err != nil {
		return false, fmt.Errorf("trusted: confirmation of shard block %d: %w", r.Block.Number, err)
	}
	if conf == nil {
		return false, nil
	}
	if conf.HeaderHash != r.HeaderHash {
		return false, fmt.Errorf("%w: the chain confirmed block %d as %s, the call is in %s (chain height %d)", ErrNotConfirmed, r.Block.Number, conf.HeaderHash, r.HeaderHash, height)
	}
	return true, nil
}

// Submit sends an encrypted call and returns its verified result. A
// refused call gives an *InvalidCallError. If a worker takes the call and
// its answer is lost, Submit resends the call to the next worker and
// reports the single outcome (see the package doc and OutcomeError); give
// SignedBy to let it settle a repeat.
func (c *Client) Submit(ctx context.Context, ct []byte, opts ...CallOption) (*Result, error) {
	var (
		res  *Result
		lost string // the worker that took the call and lost its answer
	)
	err := c.do(ctx, api.MethodSubmitTrustedCall, func(ctx context.Context, w *worker) error {
		r, err := c.submitTo(ctx, w, ct)
		if err != nil && lost == "" && outcomeLost(err) {
			lost = w.url
		}
		res = r
		return err
	})
	if lost == "" {
		if err != nil {
			return nil, err
		}
		return res, nil
	}
	return c.settle(ctx, sha256.Sum256(ct), lost, newCallOptions(opts), res, err)
}

// submitTo submits ct to worker w.
func (c *Client) submitTo(ctx context.Context, w *worker, ct []byte) (*Result, error) {
	var r api.CallResult
	err := c.post(ctx, w.url, api.MethodSubmitTrustedCall, api.CallParams{Shard: hex.EncodeToString(c.shard[:]), Call: hex.EncodeToString(ct)}, &r)
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
	return c.result(w, ct, &r)
}

// SubmitCall signs call with the account's next nonce (a private getter)
// and submits it (SignedBy: a call lost in a failover is settled).
func (c *Client) SubmitCall(ctx context.Context, key ed25519.PrivateKey, call stf.Call) (*Result, error) {
	n, err := c.Nonce(ctx, key)
	if err != nil {
		return nil, err
	}
	m := c.MRENCLAVE()
	ct, err := c.EncryptCall(key, call, n)
	if err != nil {
		return nil, err
	}
	res, err := c.Submit(ctx, ct, SignedBy(key, n))
	var ie *InvalidCallError
	if errors.As(err, &ie) && ie.Reason == reasonBadSignature && c.MRENCLAVE() != m {
		// The shard moved to another release while the call was on its
		// way (the old release's worker refused it, the new one cannot
		// take a call signed for the old): sign it for the new one. The
		// refused call changed nothing, so the nonce is still free.
		if ct, err = c.EncryptCall(key, call, n); err != nil {
			return nil, err
		}
		return c.Submit(ctx, ct, SignedBy(key, n))
	}
	return res, err
}

// reasonBadSignature is the enclave's reason for a call signed for
// another chain, shard or measurement (protocol.ReasonBadSignature).
const reasonBadSignature = "bad signature"

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
// enclave gave one, its stf error (e.g. stf.ErrGetterExpired). The answer
// may be stale (see the package doc); Read says whether it is.
func (c *Client) Getter(ctx context.Context, key ed25519.PrivateKey, g stf.Getter) ([]byte, error) {
	r, err := c.Read(ctx, key, g)
	if err != nil {
		return nil, err
	}
	return r.Value, nil
}

// Read runs a getter like Getter and returns its answer with the worker's
// word on its freshness.
func (c *Client) Read(ctx context.Context, key ed25519.PrivateKey, g stf.Getter) (*Reading, error) {
	return c.getter(ctx, api.MethodExecuteGetter, key, g)
}

func (c *Client) getter(ctx context.Context, method string, key ed25519.PrivateKey, g stf.Getter) (*Reading, error) {
	raw, err := stf.EncodeGetter(g)
	if err != nil {
		return nil, err
	}
	var r *Reading
	// A getter changes nothing: any worker may answer it.
	err = c.do(ctx, method, func(ctx context.Context, w *worker) (err error) {
		r, err = c.getterAt(ctx, w, method, key, raw)
		return err
	})
	return r, err
}

// getterAt runs the encoded getter raw at worker w, with a fresh reply key.
func (c *Client) getterAt(ctx context.Context, w *worker, method string, key ed25519.PrivateKey, raw []byte) (*Reading, error) {
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
	if err := c.post(ctx, w.url, method, api.GetterParams{Shard: hex.EncodeToString(c.shard[:]), Request: hex.EncodeToString(req)}, &res); err != nil {
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
	return &Reading{Value: resp.Value, Stale: res.Stale, Worker: w.url}, nil
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

// Balance returns key's free balance in the shard. The answer may be
// stale (see the package doc); BalanceRead says whether it is.
func (c *Client) Balance(ctx context.Context, key ed25519.PrivateKey) (uint64, error) {
	b, _, err := c.BalanceRead(ctx, key)
	return b, err
}

// BalanceRead returns key's free balance in the shard and whether the
// worker marked its answer stale.
func (c *Client) BalanceRead(ctx context.Context, key ed25519.PrivateKey) (balance uint64, stale bool, err error) {
	a := tx.AddressOf(key.Public().(ed25519.PublicKey))
	r, err := c.getter(ctx, api.MethodExecuteGetter, key, stf.Getter{FreeBalance: &a})
	if err != nil {
		return 0, false, err
	}
	b, err := decodeUint(r.Value)
	return b, r.Stale, err
}

// NonceRead returns key's next trusted-call nonce from any answer, and
// whether the worker marked it stale: for display; Nonce is for signing.
func (c *Client) NonceRead(ctx context.Context, key ed25519.PrivateKey) (nonce uint64, stale bool, err error) {
	a := tx.AddressOf(key.Public().(ed25519.PublicKey))
	r, err := c.getter(ctx, api.MethodGetNonce, key, stf.Getter{Nonce: &a})
	if err != nil {
		return 0, false, err
	}
	n, err := decodeUint(r.Value)
	return n, r.Stale, err
}

// Nonce returns key's next trusted-call nonce from an answer no worker
// marked stale (see the package doc: it retries, fails over, and fails
// with ErrStaleAnswer unless Options.AllowStaleNonce).
func (c *Client) Nonce(ctx context.Context, key ed25519.PrivateKey) (uint64, error) {
	return c.freshNonce(ctx, key)
}

// Health returns the system_health of the worker in use.
func (c *Client) Health(ctx context.Context) (*api.HealthResult, error) {
	var h api.HealthResult
	err := c.do(ctx, api.MethodHealth, func(ctx context.Context, w *worker) error {
		return c.post(ctx, w.url, api.MethodHealth, nil, &h)
	})
	if err != nil {
		return nil, err
	}
	return &h, nil
}
