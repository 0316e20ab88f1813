package stf_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/state"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/internal/ed25519x"
)

func key(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func addr(k ed25519.PrivateKey) tx.Address { return tx.AddressOf(k.Public().(ed25519.PublicKey)) }

var (
	alice, bob, sudo = key("alice"), key("bob"), key("sudo")
	env              = stf.Env{Genesis: [32]byte{3}, Shard: [32]byte{1}, MRENCLAVE: [32]byte{2}, Height: 5, Rule: ed25519x.Cofactored}
	// chainTime is the verified chain time getters are judged by.
	chainTime = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	// replyKey stands for a client's serialised reply key.
	replyKey = bytes.Repeat([]byte{0xaa}, 32)
)

func call(t *testing.T, c stf.Call) []byte {
	t.Helper()
	b, err := stf.EncodeCall(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signed(t *testing.T, k ed25519.PrivateKey, c stf.Call, nonce uint64, e stf.Env) []byte {
	t.Helper()
	b, err := stf.SignCall(k, call(t, c), nonce, e.Target())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type fixture struct {
	st *state.State
	rt *stf.Runtime
}

func newFixture(t *testing.T, dev bool) *fixture {
	t.Helper()
	st, err := state.New(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, rt: &stf.Runtime{STF: &stf.Balances{Dev: dev, Sudo: addr(sudo)}}}
	b := st.Begin()
	if _, err := f.rt.Shield(env, b, addr(alice), 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Commit(b, 1); err != nil {
		t.Fatal(err)
	}
	return f
}

// apply runs one call in its own block and returns the result and the
// number of entries it changed.
func (f *fixture) apply(t *testing.T, plaintext []byte) (stf.Result, int) {
	t.Helper()
	b := f.st.Begin()
	res, err := f.rt.Apply(env, b, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := f.st.Commit(b, 2)
	if err != nil {
		t.Fatal(err)
	}
	return res, len(cs.Entries)
}

func (f *fixture) balance(t *testing.T, k ed25519.PrivateKey) uint64 {
	t.Helper()
	v, err := stf.FreeBalance(f.st.Begin(), addr(k))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestApply(t *testing.T) {
	otherShard, otherEnclave, otherChain := env, env, env
	otherShard.Shard[0]++
	otherEnclave.MRENCLAVE[0]++
	otherChain.Genesis[0]++
	transfer := stf.Call{Transfer: &stf.Transfer{From: addr(alice), To: addr(bob), Amount: 300}}
	goodSig := signed(t, alice, transfer, 0, env)
	var sc stf.SignedCall
	if err := codec.Unmarshal(goodSig, &sc); err != nil {
		t.Fatal(err)
	}
	sc.Signature[0] ^= 1
	badSig, _ := codec.Marshal(sc)

	tests := []struct {
		name      string
		plaintext []byte
		status    stf.Status
		err       error
		alice     uint64
		bob       uint64
		changed   int
	}{
		{"garbage", []byte("not cbor"), stf.Rejected, stf.ErrMalformed, 1000, 0, 0},
		{"bad signature", badSig, stf.Rejected, stf.ErrBadSignature, 1000, 0, 0},
		{"signed for another shard", signed(t, alice, transfer, 0, otherShard), stf.Rejected, stf.ErrBadSignature, 1000, 0, 0},
		{"signed for another enclave", signed(t, alice, transfer, 0, otherEnclave), stf.Rejected, stf.ErrBadSignature, 1000, 0, 0},
		{"signed for another chain", signed(t, alice, transfer, 0, otherChain), stf.Rejected, stf.ErrBadSignature, 1000, 0, 0},
		{"future nonce", signed(t, alice, transfer, 1, env), stf.Rejected, stf.ErrFutureNonce, 1000, 0, 0},
		{"transfer", goodSig, stf.Applied, nil, 700, 300, 3},
		{"replay", goodSig, stf.Rejected, stf.ErrStaleNonce, 700, 300, 0},
		{"from is not the signer", signed(t, bob, transfer, 0, env), stf.Failed, stf.ErrNotOwner, 700, 300, 1},
		{"insufficient funds", signed(t, alice, stf.Call{Transfer: &stf.Transfer{From: addr(alice), To: addr(bob), Amount: 701}}, 1, env),
			stf.Failed, stf.ErrInsufficientFunds, 700, 300, 1},
		{"zero", signed(t, alice, stf.Call{Transfer: &stf.Transfer{From: addr(alice), To: addr(bob)}}, 2, env), stf.Failed, stf.ErrZeroAmount, 700, 300, 1},
		{"two calls in one", signed(t, alice, stf.Call{Transfer: transfer.Transfer, SetBalance: &stf.SetBalance{Who: addr(alice), Amount: 1}}, 3, env),
			stf.Failed, stf.ErrUnknownCall, 700, 300, 1},
		{"set_balance outside dev", signed(t, sudo, stf.Call{SetBalance: &stf.SetBalance{Who: addr(bob), Amount: 5}}, 0, env),
			stf.Failed, stf.ErrDevOnly, 700, 300, 1},
		{"unshield", signed(t, bob, stf.Call{Unshield: &stf.UnshieldTo{From: addr(bob), Beneficiary: tx.Address{7}, Amount: 100}}, 1, env),
			stf.Applied, nil, 700, 200, 2},
	}
	f := newFixture(t, false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := f.st.Root()
			res, changed := f.apply(t, tt.plaintext)
			if res.Status != tt.status || !errors.Is(res.Err, tt.err) || (tt.err == nil && res.Err != nil) {
				t.Fatalf("status %d err %v, want %d %v", res.Status, res.Err, tt.status, tt.err)
			}
			if a, b := f.balance(t, alice), f.balance(t, bob); a != tt.alice || b != tt.bob {
				t.Fatalf("alice %d bob %d, want %d %d", a, b, tt.alice, tt.bob)
			}
			if changed != tt.changed {
				t.Fatalf("%d entries changed, want %d", changed, tt.changed)
			}
			if tt.status == stf.Rejected && f.st.Root() != root {
				t.Fatal("rejected call changed the state hash")
			}
			if tt.name == "unshield" {
				if len(res.Events) != 1 || res.Events[0].Unshield == nil || *res.Events[0].Unshield != (stf.Unshield{Beneficiary: tx.Address{7}, Amount: 100}) {
					t.Fatalf("events %+v", res.Events)
				}
				if res.UnshieldHash(0) == res.UnshieldHash(1) || res.UnshieldHash(0) == res.Hash {
					t.Fatal("unshield hashes not distinct")
				}
			}
		})
	}
}

func TestSetBalanceDev(t *testing.T) {
	f := newFixture(t, true)
	if res, _ := f.apply(t, signed(t, alice, stf.Call{SetBalance: &stf.SetBalance{Who: addr(alice), Amount: 5}}, 0, env)); !errors.Is(res.Err, stf.ErrDevOnly) {
		t.Fatalf("non-sudo set_balance: %v", res.Err)
	}
	if res, _ := f.apply(t, signed(t, sudo, stf.Call{SetBalance: &stf.SetBalance{Who: addr(bob), Amount: 5}}, 0, env)); res.Status != stf.Applied {
		t.Fatalf("sudo set_balance: %v", res.Err)
	}
	if f.balance(t, bob) != 5 {
		t.Fatal("balance not set")
	}
}

func TestGetters(t *testing.T) {
	f := newFixture(t, false)
	f.apply(t, signed(t, alice, stf.Call{Transfer: &stf.Transfer{From: addr(alice), To: addr(bob), Amount: 1}}, 0, env))
	a := addr(alice)
	getter := func(g stf.Getter) []byte {
		b, err := stf.EncodeGetter(g)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sign := func(k ed25519.PrivateKey, g []byte, e stf.Env) []byte {
		b, err := stf.SignGetter(k, g, chainTime.Add(time.Minute), replyKey, e.Target())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other, otherChain := env, env
	other.Shard[0]++
	otherChain.Genesis[0]++
	tests := []struct {
		name   string
		signed []byte
		want   uint64
		err    error
	}{
		{"free balance", sign(alice, getter(stf.Getter{FreeBalance: &a}), env), 999, nil},
		{"nonce", sign(alice, getter(stf.Getter{Nonce: &a}), env), 1, nil},
		{"not the owner", sign(bob, getter(stf.Getter{FreeBalance: &a}), env), 0, stf.ErrNotOwner},
		{"other shard", sign(alice, getter(stf.Getter{FreeBalance: &a}), other), 0, stf.ErrBadSignature},
		{"other chain", sign(alice, getter(stf.Getter{FreeBalance: &a}), otherChain), 0, stf.ErrBadSignature},
		{"empty getter", sign(alice, getter(stf.Getter{}), env), 0, stf.ErrUnknownCall},
		{"garbage", []byte{1, 2}, 0, stf.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := f.rt.Get(env, f.st.Begin(), tt.signed, chainTime, replyKey)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			var got uint64
			if err := codec.Unmarshal(v, &got); err != nil || got != tt.want {
				t.Fatalf("got %d (%v), want %d", got, err, tt.want)
			}
		})
	}
}

// TestGetterExpiryAndReplyKey: what a replayer can do with a signed
// getter. It is answered only until it expires, by the chain's time; only
// if that expiry is at most MaxGetterLifetime ahead; and only for the reply
// key it was signed for.
func TestGetterExpiryAndReplyKey(t *testing.T) {
	f := newFixture(t, false)
	a := addr(alice)
	g, err := stf.EncodeGetter(stf.Getter{FreeBalance: &a})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(expires time.Time, rk []byte) []byte {
		b, err := stf.SignGetter(alice, g, expires, rk, env.Target())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// tamper re-encodes a signed getter after changing it.
	tamper := func(b []byte, change func(*stf.SignedGetter)) []byte {
		var sg stf.SignedGetter
		if err := codec.Unmarshal(b, &sg); err != nil {
			t.Fatal(err)
		}
		change(&sg)
		out, err := codec.Marshal(sg)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	otherKey := bytes.Repeat([]byte{0xbb}, 32)
	good := sign(chainTime.Add(time.Minute), replyKey)
	tests := []struct {
		name     string
		signed   []byte
		now      time.Time
		replyKey []byte
		err      error
	}{
		{"good", good, chainTime, replyKey, nil},
		{"expires at the chain time", sign(chainTime, replyKey), chainTime, replyKey, nil},
		{"expires the longest allowed after it", sign(chainTime.Add(stf.MaxGetterLifetime), replyKey), chainTime, replyKey, nil},
		{"replayed after expiry", good, chainTime.Add(time.Minute + time.Millisecond), replyKey, stf.ErrGetterExpired},
		{"expiry too far ahead", sign(chainTime.Add(stf.MaxGetterLifetime+time.Millisecond), replyKey), chainTime, replyKey, stf.ErrGetterExpiryTooFar},
		{"expires at the end of time", signedWithExpiry(t, alice, g, math.MaxInt64, replyKey), chainTime, replyKey, stf.ErrGetterExpiryTooFar},
		{"expired at the beginning of time", signedWithExpiry(t, alice, g, math.MinInt64, replyKey), chainTime, replyKey, stf.ErrGetterExpired},
		{"no chain time yet", good, time.Time{}, replyKey, stf.ErrNoChainTime},
		{"wrapped with another reply key", good, chainTime, otherKey, stf.ErrGetterReplyKey},
		{"asked in plaintext", good, chainTime, nil, stf.ErrGetterReplyKey},
		{"signed for plaintext, asked privately", sign(chainTime.Add(time.Minute), nil), chainTime, replyKey, stf.ErrGetterReplyKey},
		{"signed for plaintext, asked in plaintext", sign(chainTime.Add(time.Minute), nil), chainTime, nil, nil},
		{"expiry changed after signing", tamper(good, func(sg *stf.SignedGetter) { sg.Expires += 60_000 }), chainTime.Add(90 * time.Second), replyKey, stf.ErrBadSignature},
		{"reply key changed after signing", tamper(good, func(sg *stf.SignedGetter) { sg.ReplyKeyHash = stf.ReplyKeyHash(otherKey) }), chainTime, otherKey, stf.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := f.rt.Get(env, f.st.Begin(), tt.signed, tt.now, tt.replyKey)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				return
			}
			var got uint64
			if err := codec.Unmarshal(v, &got); err != nil || got != 1000 {
				t.Fatalf("got %d (%v), want 1000", got, err)
			}
		})
	}
}

// signedWithExpiry signs a getter with a raw Unix-millisecond expiry, such as
// the int64 limits.
func signedWithExpiry(t *testing.T, k ed25519.PrivateKey, g []byte, expires int64, rk []byte) []byte {
	t.Helper()
	d, err := stf.GetterSignBytes(g, expires, stf.ReplyKeyHash(rk), env.Target())
	if err != nil {
		t.Fatal(err)
	}
	b, err := codec.Marshal(stf.SignedGetter{Getter: g, Signer: addr(k), Expires: expires, ReplyKeyHash: stf.ReplyKeyHash(rk), Signature: ed25519.Sign(k, d)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestShieldOverflowDropsWrites(t *testing.T) {
	f := newFixture(t, false)
	b := f.st.Begin()
	if _, err := f.rt.Shield(env, b, addr(alice), ^uint64(0)); !errors.Is(err, stf.ErrOverflow) {
		t.Fatalf("err = %v", err)
	}
	if v, _ := stf.FreeBalance(b, addr(alice)); v != 1000 {
		t.Fatalf("balance %d after failed shield", v)
	}
}

func TestDevAccounts(t *testing.T) {
	call := func(first, count uint32) stf.Call {
		return stf.Call{DevAccounts: &stf.DevAccounts{First: first, Count: count, Amount: 7}}
	}
	tests := []struct {
		name    string
		dev     bool
		signer  ed25519.PrivateKey
		call    stf.Call
		want    error
		changed int // entries: the nonce and the accounts
	}{
		{"production build", false, sudo, call(0, 10), stf.ErrDevOnly, 1},
		{"not sudo", true, alice, call(0, 10), stf.ErrDevOnly, 1},
		{"none", true, sudo, call(0, 0), stf.ErrTooManyAccounts, 1},
		{"too many", true, sudo, call(0, stf.MaxDevAccounts+1), stf.ErrTooManyAccounts, 1},
		{"numbers wrap", true, sudo, call(^uint32(0)-5, 10), stf.ErrTooManyAccounts, 1},
		{"created", true, sudo, call(100, 10), nil, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.dev)
			res, changed := f.apply(t, signed(t, tt.signer, tt.call, 0, env))
			if !errors.Is(res.Err, tt.want) || changed != tt.changed {
				t.Fatalf("err = %v, %d entries changed; want %v, %d", res.Err, changed, tt.want, tt.changed)
			}
			for i := uint32(99); i <= 110; i++ {
				v, err := stf.FreeBalance(f.st.Begin(), stf.DevAccount(i))
				want := uint64(0)
				if tt.want == nil && i >= 100 && i < 110 {
					want = 7
				}
				if err != nil || v != want {
					t.Fatalf("account %d: %d, %v; want %d", i, v, err, want)
				}
			}
		})
	}
}

// TestSignBytesFormat: the signed payloads are the CBOR maps they always
// were, whatever Go types carry their hashes (a types.Hash takes the
// codec's fast path; a [32]byte encodes the same byte string slowly).
// Wallets sign these bytes: a change would void every signature.
func TestSignBytesFormat(t *testing.T) {
	target := env.Target()
	call, _ := codec.Marshal(map[string]uint64{"transfer": 7})
	digest := func(domain string, v any) []byte {
		enc, err := codec.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(append([]byte(domain), enc...))
		return h[:]
	}
	wantCall := digest(stf.CallDomain, struct {
		Call      cbor.RawMessage `cbor:"call"`
		Nonce     uint64          `cbor:"nonce"`
		Genesis   [32]byte        `cbor:"genesis"`
		MRENCLAVE [32]byte        `cbor:"mrenclave"`
		Shard     [32]byte        `cbor:"shard"`
	}{call, 9, target.Genesis, target.MRENCLAVE, target.Shard})
	if got, err := stf.CallSignBytes(call, 9, target); err != nil || !bytes.Equal(got, wantCall) {
		t.Errorf("CallSignBytes = %x, %v; want %x", got, err, wantCall)
	}
	rk := [32]byte{0xee}
	wantGetter := digest(stf.GetterDomain, struct {
		Getter       cbor.RawMessage `cbor:"getter"`
		Expires      int64           `cbor:"expires"`
		ReplyKeyHash [32]byte        `cbor:"reply_key_hash"`
		Genesis      [32]byte        `cbor:"genesis"`
		MRENCLAVE    [32]byte        `cbor:"mrenclave"`
		Shard        [32]byte        `cbor:"shard"`
	}{call, 12345, rk, target.Genesis, target.MRENCLAVE, target.Shard})
	if got, err := stf.GetterSignBytes(call, 12345, rk, target); err != nil || !bytes.Equal(got, wantGetter) {
		t.Errorf("GetterSignBytes = %x, %v; want %x", got, err, wantGetter)
	}
}

func BenchmarkCallSignBytes(b *testing.B) {
	target := env.Target()
	call, _ := codec.Marshal(map[string]uint64{"transfer": 7})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := stf.CallSignBytes(call, 9, target); err != nil {
			b.Fatal(err)
		}
	}
}
