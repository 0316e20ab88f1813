package enclave_test

import (
	"context"
	"errors"
	"testing"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/tee/sim"
)

// TestSealedKeysOnAnotherMachine: keys and a checkpoint sealed on one
// machine do not open on another (another sealing secret, the same
// measurement). The enclave refuses them with CodeSealing, which is all a
// worker learns (worker/recover.go); it creates no keys in their place,
// and the same host's blobs open again once the machine is back.
func TestSealedKeysOnAnotherMachine(t *testing.T) {
	ctx := context.Background()
	c := newChainSim(t)
	shard := sha256Of("machine loss")
	h := newHost(t, shard)
	first := h.boot(c)
	c.block()
	c.block()
	if _, err := h.process(c, 1); err != nil {
		t.Fatal(err)
	}
	home := h.backend
	other, err := sim.New(sim.Config{Measurement: &shard, SealingSecret: []byte("another machine's secret")})
	if err != nil {
		t.Fatal(err)
	}
	h.backend = other
	h.start()
	for _, req := range []*protocol.Init{h.initRequest(c), func() *protocol.Init {
		r := h.initRequest(c)
		r.Checkpoint = nil // the keys alone do not open either
		return r
	}()} {
		rep, err := protocol.CallAs[*protocol.InitReply](ctx, h.c, req)
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Code != protocol.CodeSealing || rep != nil {
			t.Fatalf("init with another machine's sealed blobs: %+v, %v; want CodeSealing", rep, err)
		}
	}
	// The machine is back: the same blobs open, with the same identity.
	h.backend = home
	if again := h.boot(c); again.Created || string(again.SignerPublic) != string(first.SignerPublic) {
		t.Fatalf("restart on the home machine: created %v, signer changed %v", again.Created, string(again.SignerPublic) != string(first.SignerPublic))
	}
}
