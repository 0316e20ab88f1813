// Package stf is the enclave's state transition function: a Go interface
// that applications implement (STF) and the runtime around it that
// authenticates trusted calls and getters and enforces nonces, so that no
// application can get replay protection wrong.
//
// A trusted call travels HPKE-encrypted to the shard's shielding key (in a
// bridge invoke) as the CBOR of a SignedCall: the application's call, the
// signer's account, a nonce and an ed25519 signature over
// sha256(CallDomain || CBOR{call, nonce, genesis, mrenclave, shard}).
// Binding the chain's genesis ID (teerex.GenesisID), the enclave
// measurement and the shard (a Target) means a call signed for one chain,
// shard or enclave version never executes in another.
//
// A getter is a SignedGetter, signed over sha256(GetterDomain ||
// CBOR{getter, expires, reply_key_hash, genesis, mrenclave, shard}).
// Getters have no nonce, so the signature bounds what a replayer can do
// with one: it expires (Unix milliseconds, judged by the time of the
// latest chain block the enclave verified, never the host's clock, and at
// most MaxGetterLifetime after it), and it names the reply key its answer
// must be encrypted to, so a getter wrapped again with another key is
// refused.
package stf

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/state"
	"github.com/integritee-go/integritee/internal/ed25519x"
)

// Signing domains. v2 payloads carry the genesis ID.
const (
	CallDomain   = "integritee-trusted-call-v2"
	GetterDomain = "integritee-trusted-getter-v2"
)

// MaxCallBytes bounds a decrypted trusted call.
const MaxCallBytes = 64 << 10

// MaxGetterLifetime bounds how far after the chain's time a getter may
// expire, and so how long a signed getter can be replayed by whoever holds
// it. It leaves room for a client clock running ahead and for a worker a
// few blocks behind.
const MaxGetterLifetime = 10 * time.Minute

// Target is what a trusted call or getter is signed for: the chain (its
// teerex.GenesisID), the enclave measurement and the shard. A signature
// made for one target is refused under any other.
type Target struct {
	Genesis   [32]byte
	MRENCLAVE [32]byte
	Shard     [32]byte
}

// Env is what a call executes in.
type Env struct {
	// Genesis is the ID of the chain the enclave follows
	// (teerex.GenesisID).
	Genesis   [32]byte
	Shard     [32]byte
	MRENCLAVE [32]byte
	// Height is the chain block carrying the call.
	Height int64
	// Rule is the equation signatures are checked under: the one the
	// state's version names (enclave.SignatureRule), so that replicas of
	// two releases applying the same calls give the same verdicts.
	Rule ed25519x.Rule
}

// Target is what calls executing in e must be signed for.
func (e Env) Target() Target {
	return Target{Genesis: e.Genesis, MRENCLAVE: e.MRENCLAVE, Shard: e.Shard}
}

// Unshield asks the enclave to release funds of the shard's vault to a
// public account (an unshield_funds chain transaction).
type Unshield struct {
	Beneficiary tx.Address
	Amount      uint64
}

// Event is an outcome of a call. Unshield, if set, is acted upon.
type Event struct {
	Type     string
	Unshield *Unshield
}

// STF is an application's state transition function. Calls reach Execute
// authenticated (signer signed it for this shard and enclave) and with a
// fresh nonce; Execute decides what the signer may do. An error makes the
// runtime drop every write of the call (its nonce is still consumed).
type STF interface {
	// Execute applies the application call payload (CBOR) of signer.
	Execute(env Env, st state.KV, signer tx.Address, call []byte) ([]Event, error)
	// Get answers the getter payload (CBOR) of signer.
	Get(env Env, st state.KV, signer tx.Address, getter []byte) ([]byte, error)
	// Shield credits amount, paid into the shard's vault on chain, to the
	// shard account to.
	Shield(env Env, st state.KV, to tx.Address, amount uint64) ([]Event, error)
}

// Rejection classes of the runtime. A rejected call leaves the state
// unchanged.
var (
	ErrMalformed    = errors.New("stf: malformed trusted call")
	ErrBadSignature = errors.New("stf: bad signature (or signed for another chain, shard or enclave)")
	ErrStaleNonce   = errors.New("stf: nonce already used")
	ErrFutureNonce  = errors.New("stf: nonce ahead of the account's")
)

// Refusals of a signed getter, besides ErrMalformed and ErrBadSignature.
var (
	ErrGetterExpired      = errors.New("stf: getter expired")
	ErrGetterExpiryTooFar = errors.New("stf: getter expires too far after the chain's time")
	ErrGetterReplyKey     = errors.New("stf: getter signed for another reply key")
	ErrNoChainTime        = errors.New("stf: no verified chain block yet to judge the getter's expiry by")
)

// SignedCall is the plaintext of an invoke ciphertext.
type SignedCall struct {
	Call      cbor.RawMessage `cbor:"call"`
	Signer    tx.Address      `cbor:"signer"`
	Nonce     uint64          `cbor:"nonce"`
	Signature []byte          `cbor:"sig"`
}

type callPayload struct {
	Call      cbor.RawMessage `cbor:"call"`
	Nonce     uint64          `cbor:"nonce"`
	Genesis   types.Hash      `cbor:"genesis"`
	MRENCLAVE types.Hash      `cbor:"mrenclave"`
	Shard     types.Hash      `cbor:"shard"`
}

// CallSignBytes returns the digest a trusted call's signer signs for t.
func CallSignBytes(call []byte, nonce uint64, t Target) ([]byte, error) {
	enc, err := codec.Marshal(callPayload{Call: call, Nonce: nonce, Genesis: t.Genesis, MRENCLAVE: t.MRENCLAVE, Shard: t.Shard})
	if err != nil {
		return nil, fmt.Errorf("encode call payload: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(CallDomain))
	h.Write(enc)
	return h.Sum(nil), nil
}

// SignCall signs an application call (CBOR) for t and returns the
// SignedCall's bytes, ready to be encrypted to the shielding key
// (shielding.Encrypt with shielding.InfoTrustedCall).
func SignCall(key ed25519.PrivateKey, call []byte, nonce uint64, t Target) ([]byte, error) {
	d, err := CallSignBytes(call, nonce, t)
	if err != nil {
		return nil, err
	}
	return codec.Marshal(SignedCall{
		Call: call, Signer: tx.AddressOf(key.Public().(ed25519.PublicKey)), Nonce: nonce, Signature: ed25519.Sign(key, d),
	})
}

// SignedGetter is a getter signed by the account it reads.
type SignedGetter struct {
	Getter cbor.RawMessage `cbor:"getter"`
	Signer tx.Address      `cbor:"signer"`
	// Expires is the last chain time at which the getter is answered, in
	// Unix milliseconds.
	Expires int64 `cbor:"expires"`
	// ReplyKeyHash is ReplyKeyHash of the key the answer is encrypted to.
	ReplyKeyHash types.Hash `cbor:"reply_key_hash"`
	Signature    []byte     `cbor:"sig"`
}

type getterPayload struct {
	Getter       cbor.RawMessage `cbor:"getter"`
	Expires      int64           `cbor:"expires"`
	ReplyKeyHash types.Hash      `cbor:"reply_key_hash"`
	Genesis      types.Hash      `cbor:"genesis"`
	MRENCLAVE    types.Hash      `cbor:"mrenclave"`
	Shard        types.Hash      `cbor:"shard"`
}

// ReplyKeyHash is what a signed getter records of the serialised reply
// key (shielding.ReplyKey.Public) its answer is encrypted to: its SHA-256,
// or all zeros for none (the dev-only plaintext getter).
func ReplyKeyHash(replyKey []byte) [32]byte {
	if len(replyKey) == 0 {
		return [32]byte{}
	}
	return sha256.Sum256(replyKey)
}

// GetterSignBytes returns the digest a getter's signer signs for t, with
// its expiry (Unix milliseconds) and reply key hash.
func GetterSignBytes(getter []byte, expires int64, replyKeyHash [32]byte, t Target) ([]byte, error) {
	enc, err := codec.Marshal(getterPayload{
		Getter: getter, Expires: expires, ReplyKeyHash: replyKeyHash, Genesis: t.Genesis, MRENCLAVE: t.MRENCLAVE, Shard: t.Shard,
	})
	if err != nil {
		return nil, fmt.Errorf("encode getter payload: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(GetterDomain))
	h.Write(enc)
	return h.Sum(nil), nil
}

// SignGetter signs a getter (CBOR) for t, answerable until expires
// (millisecond precision) and only encrypted to replyKey (the serialised
// public key; nil for the dev-only plaintext getter), and returns the
// SignedGetter's bytes.
func SignGetter(key ed25519.PrivateKey, getter []byte, expires time.Time, replyKey []byte, t Target) ([]byte, error) {
	exp, rk := expires.UnixMilli(), ReplyKeyHash(replyKey)
	d, err := GetterSignBytes(getter, exp, rk, t)
	if err != nil {
		return nil, err
	}
	return codec.Marshal(SignedGetter{
		Getter: getter, Signer: tx.AddressOf(key.Public().(ed25519.PublicKey)), Expires: exp, ReplyKeyHash: rk, Signature: ed25519.Sign(key, d),
	})
}

func verify(r ed25519x.Rule, signer tx.Address, digest, sig []byte) error {
	if !r.Verify(signer[:], digest, sig) {
		return ErrBadSignature
	}
	return nil
}

// Status is what became of a trusted call.
type Status int

const (
	// Rejected: not decodable, not authentic or replayed; nothing changed.
	Rejected Status = iota
	// Failed: authentic and fresh, but the STF refused it; only the nonce
	// was consumed.
	Failed
	// Applied: executed.
	Applied
)

// Result is the outcome of Runtime.Apply.
type Result struct {
	Status Status
	Signer tx.Address
	// Hash is sha256 of the SignedCall bytes: the call's identity.
	Hash   [32]byte
	Events []Event
	// Err is the rejection or failure.
	Err error
}

// UnshieldHash is the call_hash of the i-th unshield of a call: unique per
// call, so the chain pays each at most once however many enclaves submit it.
func (r *Result) UnshieldHash(i int) [32]byte {
	h := sha256.New()
	h.Write(r.Hash[:])
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(i)))
	return [32]byte(h.Sum(nil))
}

// Runtime wraps an STF with authentication and nonces.
type Runtime struct {
	STF STF
}

// nonceKey is the state key of an account's next nonce.
func nonceKey(a tx.Address) []byte { return append([]byte("system/nonce/"), a[:]...) }

// Nonce returns the next nonce of account a.
func Nonce(st state.KV, a tx.Address) (uint64, error) {
	v, ok, err := st.Get(nonceKey(a))
	if err != nil || !ok {
		return 0, err
	}
	var n uint64
	if err := codec.Unmarshal(v, &n); err != nil {
		return 0, fmt.Errorf("stf: stored nonce: %w", err)
	}
	return n, nil
}

func setNonce(st state.KV, a tx.Address, n uint64) error {
	v, err := codec.Marshal(n)
	if err != nil {
		return err
	}
	return st.Set(nonceKey(a), v)
}

// Verified is a trusted call whose signature Verify checked: the half of
// Apply that depends on the call alone, not on the state. A direct batch
// is verified once by the enclave that proposes it to its shard's log, and
// every enclave of the shard applies it with ApplyVerified.
type Verified struct {
	// Hash is sha256 of the SignedCall bytes (Result.Hash).
	Hash   types.Hash `cbor:"hash"`
	Signer tx.Address `cbor:"signer"`
	Nonce  uint64     `cbor:"nonce"`
	// Call is the application call (CBOR) as signed, carried as a byte
	// string: whoever stores a Verified, under other decoding limits than
	// the SignedCall's, reads it back whatever its nesting or size.
	Call []byte `cbor:"call"`
}

// Verify decodes the SignedCall bytes plaintext and checks its signature
// for target t under rule r. A rejection (ErrMalformed, ErrBadSignature)
// is returned as the error.
func Verify(t Target, r ed25519x.Rule, plaintext []byte) (Verified, error) {
	u, err := Decode(t, plaintext)
	if err != nil {
		return u.v, err
	}
	if err := verify(r, u.v.Signer, u.digest, u.sig); err != nil {
		return Verified{Hash: u.v.Hash, Signer: u.v.Signer}, err
	}
	return u.v, nil
}

// Unchecked is a call Decode parsed for a target, its signature not yet
// checked: Verify in two halves, so that many calls' signatures can be
// checked as one ed25519x.Batch.
type Unchecked struct {
	v      Verified
	digest []byte
	sig    []byte
}

// Decode is Verify without the signature check: it decodes the SignedCall
// bytes plaintext and computes what its signer signed for target t. A
// malformed call is returned as the error (ErrMalformed), with what of it
// could be read (Hash, and Signer once decoded) in Verified.
func Decode(t Target, plaintext []byte) (Unchecked, error) {
	u := Unchecked{v: Verified{Hash: sha256.Sum256(plaintext)}}
	if len(plaintext) > MaxCallBytes {
		return u, fmt.Errorf("%w: %d bytes", ErrMalformed, len(plaintext))
	}
	var sc SignedCall
	if err := codec.Unmarshal(plaintext, &sc); err != nil {
		return u, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	u.v.Signer = sc.Signer
	d, err := CallSignBytes(sc.Call, sc.Nonce, t)
	if err != nil {
		return u, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	u.digest, u.sig = d, sc.Signature
	u.v.Nonce, u.v.Call = sc.Nonce, sc.Call
	return u, nil
}

// AddTo adds the call's signature to b, which checks it under the
// Cofactored rule; with its signer's key cached in scope if scope is not
// nil (ed25519x.Batch.AddIn).
func (u *Unchecked) AddTo(b *ed25519x.Batch, scope *ed25519x.Scope) {
	b.AddIn(scope, u.v.Signer[:], u.digest, u.sig)
}

// Verified is the call, for a caller whose batch took its signature.
func (u *Unchecked) Verified() Verified { return u.v }

// Apply executes the SignedCall bytes plaintext on the block batch b.
// Rejections and failures are reported in the Result, not as an error; the
// error is for state failures only (fatal for the block).
func (r *Runtime) Apply(env Env, b *state.Batch, plaintext []byte) (Result, error) {
	v, err := Verify(env.Target(), env.Rule, plaintext)
	if err != nil {
		return Result{Status: Rejected, Signer: v.Signer, Hash: v.Hash, Err: err}, nil
	}
	return r.ApplyVerified(env, b, v)
}

// ApplyVerified executes call v, which Verify accepted for env's target,
// on the block batch b: the nonce check and the STF, which depend on the
// state. Like Apply, it reports rejections and failures in the Result.
func (r *Runtime) ApplyVerified(env Env, b *state.Batch, v Verified) (Result, error) {
	res := Result{Hash: v.Hash, Signer: v.Signer}
	reject := func(err error) (Result, error) {
		res.Status, res.Err = Rejected, err
		return res, nil
	}
	sc := SignedCall{Call: v.Call, Signer: v.Signer, Nonce: v.Nonce}
	next, err := Nonce(b, sc.Signer)
	if err != nil {
		return res, err
	}
	switch {
	case sc.Nonce < next:
		return reject(fmt.Errorf("%w: %d, next %d", ErrStaleNonce, sc.Nonce, next))
	case sc.Nonce > next:
		return reject(fmt.Errorf("%w: %d, next %d", ErrFutureNonce, sc.Nonce, next))
	}
	child := b.Child()
	events, xerr := r.STF.Execute(env, child, sc.Signer, sc.Call)
	if xerr == nil {
		if err := child.Write(); err != nil {
			return res, err
		}
		res.Status, res.Events = Applied, events
	} else {
		res.Status, res.Err = Failed, xerr
	}
	if err := setNonce(b, sc.Signer, next+1); err != nil {
		return res, err
	}
	return res, nil
}

// Get answers the SignedGetter bytes signed for replyKey (nil for none)
// at chain time now: the time of the latest chain block the enclave
// verified (zero before the first), never a clock the host controls. The
// getter must not have expired at now, nor expire more than
// MaxGetterLifetime after it.
func (r *Runtime) Get(env Env, st state.KV, signed []byte, now time.Time, replyKey []byte) ([]byte, error) {
	if len(signed) > MaxCallBytes {
		return nil, fmt.Errorf("%w: getter of %d bytes", ErrMalformed, len(signed))
	}
	var sg SignedGetter
	if err := codec.Unmarshal(signed, &sg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	d, err := GetterSignBytes(sg.Getter, sg.Expires, sg.ReplyKeyHash, env.Target())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := verify(env.Rule, sg.Signer, d, sg.Signature); err != nil {
		return nil, err
	}
	if sg.ReplyKeyHash != ReplyKeyHash(replyKey) {
		return nil, ErrGetterReplyKey
	}
	if now.IsZero() {
		return nil, ErrNoChainTime
	}
	// In milliseconds: a verified chain time is far from the int64
	// limits, so the bound does not overflow, whatever Expires holds.
	at := now.UnixMilli()
	switch {
	case sg.Expires < at:
		return nil, fmt.Errorf("%w: at %s, chain time %s", ErrGetterExpired, formatMilli(sg.Expires), formatMilli(at))
	case sg.Expires > at+MaxGetterLifetime.Milliseconds():
		return nil, fmt.Errorf("%w: at %s, chain time %s, at most %s later", ErrGetterExpiryTooFar, formatMilli(sg.Expires), formatMilli(at), MaxGetterLifetime)
	}
	return r.STF.Get(env, st, sg.Signer, sg.Getter)
}

func formatMilli(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

// Shield credits a shield_funds to the STF on a child of b; a failure drops
// its writes.
func (r *Runtime) Shield(env Env, b *state.Batch, to tx.Address, amount uint64) ([]Event, error) {
	child := b.Child()
	events, err := r.STF.Shield(env, child, to, amount)
	if err != nil {
		return nil, err
	}
	return events, child.Write()
}
