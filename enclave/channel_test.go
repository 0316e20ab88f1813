package enclave_test

import (
	"bytes"
	"crypto/ed25519"
	"reflect"
	"testing"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
)

// onChannel seals Alice's transfer to Bob on ch.
func (d *direct) onChannel(ch *shielding.Channel, open bool, amount, nonce uint64) []byte {
	d.t.Helper()
	pt := trustedCall(d.t, d.aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(d.aliceI), To: addr(d.bobI), Amount: amount}}, nonce, d.target())
	return ch.Seal(pt, open)
}

func newChannel(t testing.TB, pub []byte) *shielding.Channel {
	t.Helper()
	ch, err := shielding.NewChannel(pub)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func invalid(reason string) protocol.CallResult {
	return protocol.CallResult{Status: protocol.CallInvalid, Reason: reason}
}

// A channel's first call pays the HPKE decapsulation, the calls after it
// none; what a malicious host can do with channel ciphertexts (send data
// before the open, replay, flip bits, forge an encapsulation, restart the
// enclave to drop its channels) gets a clear refusal and changes nothing.
func TestChannelCalls(t *testing.T) {
	d := newDirect(t, "direct channels")
	ch := newChannel(t, d.pub)

	// Data before the channel was opened: refused, nothing applied.
	early := d.onChannel(ch, false, 1, 0)
	rep, err := d.submitOnly(early)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Results[0] != invalid(protocol.ReasonUnknownChannel) || rep.Block != nil {
		t.Fatalf("data before open: %+v, block %v", rep.Results[0], rep.Block != nil)
	}

	dec := enclave.Decapsulations(d.h.enc)
	open := d.onChannel(ch, true, 10, 0)
	data := [][]byte{d.onChannel(ch, false, 20, 1), d.onChannel(ch, false, 30, 2)}
	batch := append([][]byte{open}, data...)
	rep = d.submit(batch...)
	for i, r := range rep.Results {
		if r.Status != protocol.CallExecuted {
			t.Fatalf("call %d: %+v", i, r)
		}
	}
	d.checkBlock(rep, d.base+1, batch)
	if got := enclave.Decapsulations(d.h.enc) - dec; got != 1 {
		t.Fatalf("%d decapsulations for a channel's three calls, want 1", got)
	}
	next := d.onChannel(ch, false, 40, 3)
	d.checkBlock(d.submit(next), d.base+2, [][]byte{next})
	if got := d.balance(d.bobI); got != 100 {
		t.Fatalf("bob %d, want 100", got)
	}

	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 1
		return b
	}
	fresh := d.onChannel(ch, false, 1, 4)
	forged := newChannel(t, d.pub).Seal([]byte("not a call"), true)
	forged = flip(forged, len(shielding.ChannelMagic)+1+100) // another encapsulation: decapsulates to a wrong key
	forgedData := bytes.Clone(fresh)
	copy(forgedData[len(shielding.ChannelMagic)+1:], func() []byte { id := shielding.ChannelID(forged[5 : 5+shielding.EncapsulatedKeySize]); return id[:] }())
	rep, err = d.submitOnly(
		next,                       // replayed
		flip(fresh, len(fresh)-1),  // tag
		flip(fresh, len(fresh)-20), // body
		flip(fresh, 5+16+3),        // nonce
		flip(fresh, 5+2),           // channel ID: another, unknown, channel
		flip(fresh, 4),             // kind: an open ciphertext too short to be one
		fresh[:len(fresh)-17],      // truncated below a tag
		forged,                     // forged encapsulation
		forgedData,                 // data on the forged channel
		append([]byte(shielding.ChannelMagic), 9, 1, 2, 3), // unknown kind
	)
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.CallResult{
		invalid(protocol.ReasonStaleNonce),
		invalid(protocol.ReasonUndecryptable),
		invalid(protocol.ReasonUndecryptable),
		invalid(protocol.ReasonUndecryptable),
		invalid(protocol.ReasonUnknownChannel),
		invalid(protocol.ReasonUndecryptable),
		invalid(protocol.ReasonUndecryptable),
		invalid(protocol.ReasonUndecryptable),
		invalid(protocol.ReasonUnknownChannel), // the forged open did not register its channel
		invalid(protocol.ReasonUndecryptable),
	}
	for i := range want {
		if rep.Results[i] != want[i] {
			t.Errorf("bad ciphertext %d: %+v, want %+v", i, rep.Results[i], want[i])
		}
	}
	if rep.Block != nil || d.balance(d.bobI) != 100 {
		t.Fatalf("bad ciphertexts changed the state: block %v, bob %d", rep.Block != nil, d.balance(d.bobI))
	}

	// A restart forgets the channel: data is refused, the same call sent
	// again as an open ciphertext applies, once.
	d.h.boot(d.c)
	rep, err = d.submitOnly(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Results[0] != invalid(protocol.ReasonUnknownChannel) {
		t.Fatalf("data after restart: %+v", rep.Results[0])
	}
	again := d.onChannel(ch, true, 1, 4)
	rep = d.submit(again, d.onChannel(ch, false, 1, 4))
	if rep.Results[0].Status != protocol.CallExecuted || rep.Results[1] != invalid(protocol.ReasonStaleNonce) {
		t.Fatalf("reopened: %+v", rep.Results)
	}
	if got := d.balance(d.bobI); got != 101 {
		t.Fatalf("bob %d, want 101", got)
	}
}

// Channels are for direct calls: an indirect invocation is applied by
// every worker from the chain, so a channel ciphertext there does not
// decrypt, even at the enclave that knows the channel.
func TestChannelNotIndirect(t *testing.T) {
	d := newDirect(t, "direct channel indirect")
	ch := newChannel(t, d.pub)
	d.submit(d.onChannel(ch, true, 10, 0))
	before := d.balance(d.bobI)
	alice := accounts.DevKey("Alice")
	for _, open := range []bool{true, false} {
		ct := d.onChannel(ch, open, 5, 1)
		d.chainOK(d.c.block(d.c.tx(alice, bridge.Name, bridge.MethodInvoke, bridge.Invoke{Shard: types.Hash(d.shard), Ciphertext: ct})), "invoke")
	}
	d.c.block()
	d.sync()
	if got := d.balance(d.bobI); got != before {
		t.Fatalf("an invoked channel ciphertext was applied: bob %d, want %d", got, before)
	}
	// The same call one-shot is applied.
	pt := trustedCall(t, d.aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(d.aliceI), To: addr(d.bobI), Amount: 5}}, 1, d.target())
	d.chainOK(d.c.block(invoke(t, d.c, alice, d.pub, d.shard, pt)), "invoke")
	d.c.block()
	d.sync()
	if got := d.balance(d.bobI); got != before+5 {
		t.Fatalf("the one-shot invocation: bob %d, want %d", got, before+5)
	}
}

// TestSignerKeysPerChannel: a signer's expanded key is cached for the
// shielded channel its call came on, and only that channel's calls find
// it. A cache shared by every call would let the host learn who signed
// recently: it opens a channel of its own, sends a call that names the
// address with any signature, and times the check (a cached key answers
// sooner). Here the host's call must expand the key anew, which adds an
// entry; one-shot ciphertexts, which have no channel, cache nothing.
func TestSignerKeysPerChannel(t *testing.T) {
	d := newDirect(t, "signer keys per channel")
	e := d.h.enc
	tgt := d.target()
	call := stf.Call{Transfer: &stf.Transfer{From: addr(d.aliceI), To: addr(d.bobI), Amount: 1}}
	raw, err := stf.EncodeCall(call)
	if err != nil {
		t.Fatal(err)
	}
	// spoiled is Alice's call with her signature spoiled: what the host
	// can make for any address.
	spoiled := func(nonce uint64) []byte {
		msg, err := stf.CallSignBytes(raw, nonce, tgt)
		if err != nil {
			t.Fatal(err)
		}
		sig := ed25519.Sign(d.aliceI, msg)
		sig[7] ^= 1
		b, err := codec.Marshal(stf.SignedCall{Call: raw, Signer: addr(d.aliceI), Nonce: nonce, Signature: sig})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// prepare prepares six calls (a batch equation runs from four on),
	// each sealed by seal, and checks whether each authenticated, the
	// keys kept after and whether any key was expanded for the cache.
	prepare := func(what string, seal func(i int) []byte, valid bool, wantKeys int, expands bool) {
		t.Helper()
		before := enclave.SignerExpansions(e)
		defer func() {
			if got := enclave.SignerExpansions(e) > before; got != expands {
				t.Fatalf("%s: a key expanded for the cache %v, want %v", what, got, expands)
			}
		}()
		var cts [][]byte
		for i := range 6 {
			cts = append(cts, seal(i))
		}
		for i, p := range enclave.PrepareCalls(e, cts) {
			if got := !reflect.ValueOf(p).FieldByName("Call").IsNil(); got != valid {
				t.Fatalf("%s, call %d: authenticated %v, want %v (%+v)", what, i, got, valid, p)
			}
		}
		if got := enclave.SignerKeys(e); got != wantKeys {
			t.Fatalf("after %s: %d signer keys kept, want %d", what, got, wantKeys)
		}
	}
	client, host := newChannel(t, d.pub), newChannel(t, d.pub)
	prepare("the client's calls on its channel", func(i int) []byte {
		return client.Seal(trustedCall(t, d.aliceI, call, uint64(i), tgt), i == 0)
	}, true, 1, true)
	prepare("the host's calls naming the client's signer on its own channel", func(i int) []byte {
		return host.Seal(spoiled(uint64(i)), i == 0)
	}, false, 2, true)
	prepare("one-shot calls", func(i int) []byte {
		return encryptTo(t, d.pub, trustedCall(t, d.aliceI, call, uint64(10+i), tgt))
	}, true, 2, false)
	// The client's next calls find its key: none expanded again.
	prepare("the client's next calls", func(i int) []byte {
		return client.Seal(trustedCall(t, d.aliceI, call, uint64(20+i), tgt), false)
	}, true, 2, false)
}
