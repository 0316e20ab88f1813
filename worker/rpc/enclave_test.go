package rpc_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/api"
	"github.com/integritee-go/integritee/worker/rpc/rpctest"
)

// user is a client of the real enclave: it signs and encrypts on its own.
type user struct {
	t     testing.TB
	id    rpc.Identity
	key   ed25519.PrivateKey
	nonce uint64
}

func (u *user) addr() tx.Address { return rpctest.Address(u.key) }

func (u *user) encrypt(call stf.Call, nonce uint64) []byte {
	u.t.Helper()
	raw, err := stf.EncodeCall(call)
	if err != nil {
		u.t.Fatal(err)
	}
	signed, err := stf.SignCall(u.key, raw, nonce, rpctest.Target(u.id))
	if err != nil {
		u.t.Fatal(err)
	}
	ct, err := shielding.Encrypt(u.id.ShieldingKey, shielding.InfoTrustedCall, signed)
	if err != nil {
		u.t.Fatal(err)
	}
	return ct
}

func (u *user) transfer(to tx.Address, amount uint64) []byte {
	ct := u.encrypt(stf.Call{Transfer: &stf.Transfer{From: u.addr(), To: to, Amount: amount}}, u.nonce)
	u.nonce++
	return ct
}

func submitParams(id rpc.Identity, ct []byte) map[string]string {
	return map[string]string{"shard": hex.EncodeToString(id.Shard[:]), "call": hex.EncodeToString(ct)}
}

// getter asks a private getter signed by signer and returns the raw
// response message and the opened answer (nil on an RPC error).
func getter(t testing.TB, c *wsClient, id rpc.Identity, signer ed25519.PrivateKey, g stf.Getter) (message, *shielding.GetterResponse) {
	t.Helper()
	raw, err := stf.EncodeGetter(g)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := shielding.NewReplyKey()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := stf.SignGetter(signer, raw, rpctest.BlockTime.Add(time.Minute), rk.Public(), rpctest.Target(id))
	if err != nil {
		t.Fatal(err)
	}
	request, err := shielding.NewGetterRequest(id.ShieldingKey, rk, signed)
	if err != nil {
		t.Fatal(err)
	}
	m := c.call(1, "state_executeGetter", map[string]string{"shard": hex.EncodeToString(id.Shard[:]), "request": hex.EncodeToString(request)})
	if m.Error != nil {
		return m, nil
	}
	var res api.GetterResult
	if err := json.Unmarshal(m.Result, &res); err != nil {
		t.Fatal(err)
	}
	ct, err := hex.DecodeString(res.Response)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rk.Open(request, ct)
	if err != nil {
		t.Fatal(err)
	}
	return m, resp
}

func balance(t testing.TB, c *wsClient, id rpc.Identity, k ed25519.PrivateKey) uint64 {
	t.Helper()
	a := rpctest.Address(k)
	_, resp := getter(t, c, id, k, stf.Getter{FreeBalance: &a})
	if resp == nil || resp.Error != "" {
		t.Fatalf("balance: %+v", resp)
	}
	var v uint64
	if err := codec.Unmarshal(resp.Value, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// checkExecuted verifies an executed result as a client must: the header
// is signed by the enclave's signer and the proof puts the call's leaf
// under its calls root.
func checkExecuted(t testing.TB, id rpc.Identity, ct []byte, r *api.CallResult) {
	t.Helper()
	if r.Status != api.StatusExecuted || r.Block == nil || !r.Result.Success {
		t.Fatalf("result %+v", r)
	}
	sh, err := r.Block.Signed()
	if err != nil {
		t.Fatal(err)
	}
	h, err := sh.Verify()
	if err != nil || h != r.Block.HeaderHash || !bytes.Equal(sh.Header.Author[:], id.Signer) {
		t.Fatalf("header: %v, hash %s vs %s, author %s", err, h, r.Block.HeaderHash, sh.Header.Author)
	}
	leaf := sidechain.CallLeaf(sha256.Sum256(ct), sidechain.LeafExecuted)
	p, err := r.Block.Proof.Merkle(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(sh.Header.CallsRoot[:], leaf); err != nil {
		t.Fatalf("proof: %v", err)
	}
}

// TestRealEnclave runs the RPC in front of a real enclave: 30 pipelined
// transfers are executed in batches, each verifiable on the enclave's
// word; private getters are exact; every bad input gets its error while
// another client keeps being served; the host never sees a balance; an
// acknowledged call survives an enclave restart and is not applied twice.
func TestRealEnclave(t *testing.T) {
	e := rpctest.NewEnclave(t, "rpc real enclave")
	_, _, ws := newServer(t, e, rpc.Options{})
	id := e.Identity()
	alice := &user{t: t, id: id, key: rpctest.Key("alice")}
	bob := &user{t: t, id: id, key: rpctest.Key("bob")}
	sudo := &user{t: t, id: id, key: rpctest.SudoKey()}
	c, other := dialWS(t, ws), dialWS(t, ws)

	fund := sudo.encrypt(stf.Call{SetBalance: &stf.SetBalance{Who: alice.addr(), Amount: 10_000}}, 0)
	if m := c.call(1, "author_submitTrustedCall", submitParams(id, fund)); m.Error != nil {
		t.Fatalf("fund: %+v", m.Error)
	}

	const n = 30
	cts := make(map[string][]byte)
	for i := range n {
		ct := alice.transfer(bob.addr(), uint64(i+1))
		cts[strconvI(100+i)] = ct
		c.send(req(100+i, "author_submitTrustedCall", submitParams(id, ct)))
	}
	for range n {
		m := c.next()
		var r api.CallResult
		if m.Error != nil || json.Unmarshal(m.Result, &r) != nil {
			t.Fatalf("transfer %s: %+v", m.ID, m.Error)
		}
		checkExecuted(t, id, cts[string(m.ID)], &r)
	}
	const want = n * (n + 1) / 2
	if got := balance(t, c, id, bob.key); got != want {
		t.Fatalf("bob has %d, want %d", got, want)
	}
	if got := balance(t, c, id, alice.key); got != 10_000-want {
		t.Fatalf("alice has %d", got)
	}
	rounds, total := e.RoundTrips(), 0
	for _, r := range rounds {
		total += r
	}
	if total != n+1 || len(e.Blocks()) != len(rounds) {
		t.Fatalf("round trips %v, blocks %d", rounds, len(e.Blocks()))
	}
	last := e.Blocks()[len(e.Blocks())-1]
	if [32]byte(last.Header.StateHash) != e.PersistedRoot() {
		t.Fatal("the last block's state hash is not the hash of the persisted state")
	}

	// Bad input, each with its error; the other client is served between.
	forged := func() []byte {
		raw, _ := stf.EncodeCall(stf.Call{Transfer: &stf.Transfer{From: alice.addr(), To: bob.addr(), Amount: 1}})
		signed, _ := stf.SignCall(bob.key, raw, alice.nonce, rpctest.Target(id))
		var sc stf.SignedCall
		codec.Unmarshal(signed, &sc)
		sc.Signer = alice.addr() // Bob's signature, Alice's account
		b, _ := codec.Marshal(sc)
		ct, _ := shielding.Encrypt(id.ShieldingKey, shielding.InfoTrustedCall, b)
		return ct
	}()
	replay := cts[strconvI(100)]
	for _, tc := range []struct {
		name   string
		ct     []byte
		reason string
	}{
		{"wrong ciphertext", bytes.Repeat([]byte{0x42}, 1300), protocol.ReasonUndecryptable},
		{"bad signature", forged, protocol.ReasonBadSignature},
		{"replayed nonce", replay, protocol.ReasonStaleNonce},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := c.call(2, "author_submitTrustedCall", submitParams(id, tc.ct))
			if m.Error == nil || m.Error.Code != api.CodeInvalidCall || !bytes.Contains([]byte(m.Error.Message), []byte(tc.reason)) {
				t.Fatalf("error %+v, want reason %q", m.Error, tc.reason)
			}
			if got := balance(t, other, id, bob.key); got != want {
				t.Fatalf("other client: bob %d", got)
			}
		})
	}
	t.Run("getter signed by someone else", func(t *testing.T) {
		b := bob.addr()
		_, resp := getter(t, c, id, alice.key, stf.Getter{FreeBalance: &b})
		if resp == nil || resp.Error != stf.ErrNotOwner.Error() || resp.Value != nil {
			t.Fatalf("answer %+v", resp)
		}
		if got := balance(t, other, id, bob.key); got != want {
			t.Fatalf("other client: bob %d", got)
		}
	})
	t.Run("getter ciphertext garbage", func(t *testing.T) {
		m := c.call(3, "state_executeGetter", map[string]string{"shard": hex.EncodeToString(id.Shard[:]), "request": hex.EncodeToString(bytes.Repeat([]byte{1}, 1300))})
		if m.Error == nil || m.Error.Code != api.CodeInvalidGetter {
			t.Fatalf("%+v", m)
		}
	})

	// The host never sees a getter's answer: a distinctive balance is in
	// neither the enclave traffic nor the RPC messages.
	const secret = 0x1122334455667
	set := sudo.encrypt(stf.Call{SetBalance: &stf.SetBalance{Who: bob.addr(), Amount: secret}}, 1)
	if m := c.call(4, "author_submitTrustedCall", submitParams(id, set)); m.Error != nil {
		t.Fatal(m.Error)
	}
	plain, _ := codec.Marshal(uint64(secret))
	b := bob.addr()
	m, resp := getter(t, c, id, bob.key, stf.Getter{FreeBalance: &b})
	if resp == nil || !bytes.Equal(resp.Value, plain) {
		t.Fatalf("answer %+v", resp)
	}
	raw, _ := json.Marshal(m)
	if e.TrafficContains(plain) || bytes.Contains(raw, plain) || bytes.Contains(raw, []byte(hex.EncodeToString(plain))) {
		t.Fatal("the host saw the getter's plaintext answer")
	}

	// Kill the enclave after an acknowledged call: its effect survives,
	// and the same call is not applied again.
	ack := alice.transfer(bob.addr(), 5)
	if m := c.call(5, "author_submitTrustedCall", submitParams(id, ack)); m.Error != nil {
		t.Fatal(m.Error)
	}
	e.Restart()
	if got := balance(t, c, id, bob.key); got != secret+5 {
		t.Fatalf("after restart bob has %d, want %d", got, secret+5)
	}
	if m := c.call(6, "author_submitTrustedCall", submitParams(id, ack)); m.Error == nil || m.Error.Code != api.CodeInvalidCall {
		t.Fatalf("replay after restart: %+v", m)
	}
	if got := balance(t, c, id, bob.key); got != secret+5 {
		t.Fatalf("applied twice: bob %d", got)
	}
}
