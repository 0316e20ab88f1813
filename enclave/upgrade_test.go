package enclave_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/fxamacker/cbor/v2"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/state"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/tee/sim"
)

// vaultKey is where the test STF keeps its record of the funds shielded
// into the shard: {"total": n} in state version 1, {"shielded": n} in
// version 2 (the renamed field the test migration shows).
var vaultKey = []byte("test/vault")

// vaultField is the record's field in a state of version v.
func vaultField(v uint32) string {
	if v >= 2 {
		return "shielded"
	}
	return "total"
}

// vaultSTF is the balances STF that also keeps the vault record, in the
// format of the state's version: a release runs on its predecessor's
// state until its enactment height, when its migration converts it.
type vaultSTF struct{ stf.Balances }

func (s *vaultSTF) Shield(env stf.Env, st state.KV, to tx.Address, amount uint64) ([]stf.Event, error) {
	evs, err := s.Balances.Shield(env, st, to, amount)
	if err != nil {
		return nil, err
	}
	v := uint32(1)
	if b, ok, err := st.Get(enclave.StateVersionKey); err != nil {
		return nil, err
	} else if ok {
		v = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	rec := map[string]uint64{}
	if b, ok, err := st.Get(vaultKey); err != nil {
		return nil, err
	} else if ok {
		if err := cbor.Unmarshal(b, &rec); err != nil {
			return nil, err
		}
	}
	rec[vaultField(v)] += amount
	b, err := cbor.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return evs, st.Set(vaultKey, b)
}

// renameVaultField is the test migration from state version 1 to 2.
func renameVaultField(b *state.Batch) error {
	raw, ok, err := b.Get(vaultKey)
	if err != nil || !ok {
		return err
	}
	rec := map[string]uint64{}
	if err := cbor.Unmarshal(raw, &rec); err != nil {
		return err
	}
	rec["shielded"], rec["total"] = rec["total"], 0
	delete(rec, "total")
	out, err := cbor.Marshal(rec)
	if err != nil {
		return err
	}
	return b.Set(vaultKey, out)
}

// releaseBuild configures a host's enclave as release r of the test
// shard: release 1 writes state version 1 (as releases before the
// cofactored signature rule did), later ones version 3 (the test
// migration from 1, then the enclave's own step to the cofactored rule),
// and the vault STF.
func releaseBuild(r uint64) func(*enclave.Config) {
	return func(c *enclave.Config) {
		c.Release, c.StateVersion = r, 1
		if r > 1 {
			c.StateVersion = enclave.StateVersionCofactored
		}
		c.Migrations = []enclave.Migration{{From: 1, Apply: renameVaultField}}
		c.NewSTF = func(*protocol.Init) stf.STF {
			return &vaultSTF{stf.Balances{Dev: c.Dev, Sudo: c.DevSudo}}
		}
	}
}

// releaseHost is a host of the shard whose enclave has measurement m and
// release r.
func releaseHost(t *testing.T, shard, m [32]byte, r uint64) *host {
	t.Helper()
	h := newHost(t, shard)
	b, err := sim.New(sim.Config{Measurement: &m})
	if err != nil {
		t.Fatal(err)
	}
	h.backend, h.dev, h.build = b, true, releaseBuild(r)
	startPeers(h, simPeers(h.backend))
	return h
}

// vaultRecord reads the test STF's record (a dev enclave's plaintext
// state access).
func vaultRecord(t *testing.T, h *host) map[string]uint64 {
	t.Helper()
	r, err := protocol.CallAs[*protocol.GetStateReply](context.Background(), h.c, &protocol.GetState{Key: vaultKey})
	if err != nil || !r.Found {
		t.Fatalf("vault record: %v, found %v", err, r != nil && r.Found)
	}
	rec := map[string]uint64{}
	if err := cbor.Unmarshal(r.Value, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// upgradeFixture is a shard on release 1 (measurement = shard ID) whose
// chain authorizes release 2 (measurement m2) from height enact:
//
//	1-2  (newProvisionFixture) Alice shields 1000, sends 300 to Bob
//	3    Bob sends 50 back      4  -
//	5    sudo: update_shard_config(shard, m2, enact)
//	6    -                      7  Alice sends 100 to Bob (for release 1)
//	8    Alice sends 7 to Bob (for release 1), a signature with torsion:
//	     refused in a state of version 1 (ed25519x.Cofactorless)
//	9    (enact) Bob sends 10 to Alice (for release 2); Alice shields 500;
//	     Bob sends 5 to Alice (for release 2), a signature with torsion:
//	     applied in the migrated state of version 3 (ed25519x.Cofactored)
//	10   Alice sends 1 to Bob, signed for release 1: refused
//	11   -
type upgradeFixture struct {
	*provisionFixture
	m2    [32]byte
	enact int64
}

func newUpgradeFixture(t *testing.T) *upgradeFixture {
	t.Helper()
	return newUpgradeFixtureRelease(t, 1)
}

// newUpgradeFixtureRelease is newUpgradeFixture whose provider is release
// r.
func newUpgradeFixtureRelease(t *testing.T, r uint64) *upgradeFixture {
	t.Helper()
	base := newProvisionFixtureBuild(t, time.Time{}, true, func(h *host) { h.dev, h.build = true, releaseBuild(r) })
	f := &upgradeFixture{provisionFixture: base, m2: sha256Of("integritee provisioning enclave v2"), enact: 9}

	alice := accounts.DevKey("Alice")
	t1, t2 := f.c.target(f.shard, f.shard), f.c.target(f.m2, f.shard)
	mustOK(t, f.c.block(f.c.tx(alice, bridge.Name, bridge.MethodUpdateShardConfig,
		bridge.UpdateShardConfig{Shard: types.Hash(f.shard), MRENCLAVE: types.Hash(f.m2), EnactmentHeight: uint64(f.enact)})))
	f.c.block()
	mustOK(t, f.c.block(invoke(t, f.c, alice, f.shieldingPub, f.shard,
		trustedCall(t, f.aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(f.aliceI), To: addr(f.bobI), Amount: 100}}, 1, t1))))
	mustOK(t, f.c.block(invoke(t, f.c, alice, f.shieldingPub, f.shard,
		torsionCall(t, f.aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(f.aliceI), To: addr(f.bobI), Amount: 7}}, 2, t1))))
	recipient, err := shielding.Encrypt(f.shieldingPub, shielding.InfoShieldRecipient, func() []byte { a := addr(f.aliceI); return a[:] }())
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, f.c.block(
		invoke(t, f.c, alice, f.shieldingPub, f.shard,
			trustedCall(t, f.bobI, stf.Call{Transfer: &stf.Transfer{From: addr(f.bobI), To: addr(f.aliceI), Amount: 10}}, 1, t2)),
		f.c.tx(alice, bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: types.Hash(f.shard), Amount: 500, EncryptedRecipient: recipient}),
		invoke(t, f.c, alice, f.shieldingPub, f.shard,
			torsionCall(t, f.bobI, stf.Call{Transfer: &stf.Transfer{From: addr(f.bobI), To: addr(f.aliceI), Amount: 5}}, 2, t2)),
	))
	mustOK(t, f.c.block(invoke(t, f.c, alice, f.shieldingPub, f.shard,
		trustedCall(t, f.aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(f.aliceI), To: addr(f.bobI), Amount: 1}}, 2, t1))))
	f.c.block()
	return f
}

func mustOK(t *testing.T, rs []*abci.ExecTxResult) {
	t.Helper()
	for i, r := range rs {
		if r.Code != 0 {
			t.Fatalf("tx %d: %s/%d %s", i, r.Codespace, r.Code, r.Log)
		}
	}
}

// advance has h process blocks up to to.
func advance(t *testing.T, f *upgradeFixture, h *host, to int64) {
	t.Helper()
	for hgt := h.height + 1; hgt <= to; hgt++ {
		if _, err := h.process(f.c, hgt); err != nil {
			t.Fatalf("block %d: %v", hgt, err)
		}
	}
}

// handover provisions req from f's provider and loads the snapshot.
func handover(t *testing.T, f *upgradeFixture, req *host) (*protocol.ProvisionResult, error) {
	t.Helper()
	res, err := relay(t, f.c, req, f.prov, nil)
	if err != nil {
		return nil, err
	}
	snapshot := f.prov.allEntries()
	if err := req.load(snapshot, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.CallAs[*protocol.ResumeReply](context.Background(), req.c, &protocol.Resume{}); err != nil {
		t.Fatal(err)
	}
	sk := res.SealedKeys
	req.sealed, req.checkpoint, req.height = &sk, res.Checkpoint, res.Height
	for _, e := range snapshot {
		req.entries[e.Key] = e.Value
	}
	return res, nil
}

// TestUpgradeHandover moves a shard from release 1 to release 2: the
// release-2 enclave gets the keys and state once the authorization is in a
// block the provider verified, follows the shard without serving until the
// enactment height, and from it serves alone, on the migrated state, with
// every balance as before; release 1 stops there with an error naming
// release 2.
func TestUpgradeHandover(t *testing.T) {
	ctx := context.Background()
	f := newUpgradeFixture(t)
	advance(t, f, f.prov, 6)
	req := releaseHost(t, f.shard, f.m2, 2)
	if _, err := handover(t, f, req); err != nil {
		t.Fatal(err)
	}
	if req.height != 6 || req.root() != f.prov.root() {
		t.Fatalf("release 2 at %d root %x, release 1 at %d root %x", req.height, req.root(), f.prov.height, f.prov.root())
	}

	// Before the enactment height both apply the shard's calls (signed
	// for release 1) to the same state and make the same outgoing calls
	// (the chain refuses release 2's until the enactment height; its host
	// keeps them, so that what release 1 left unconfirmed is confirmed).
	// Both check signatures under the rule of the state's version 1, as
	// the releases before the cofactored rule did: Alice's call with
	// torsion in block 8 is refused by both.
	for hgt := int64(7); hgt < f.enact; hgt++ {
		pr, err := f.prov.process(f.c, hgt)
		if err != nil {
			t.Fatal(err)
		}
		rr, err := req.process(f.c, hgt)
		if err != nil {
			t.Fatal(err)
		}
		if rr.StateRoot != pr.StateRoot || rr.Stats != pr.Stats || len(pr.Outgoing) == 0 || len(rr.Outgoing) != len(pr.Outgoing) {
			t.Fatalf("block %d: release 1 %+v root %x (%d outgoing), release 2 %+v root %x (%d outgoing)",
				hgt, pr.Stats, pr.StateRoot, len(pr.Outgoing), rr.Stats, rr.StateRoot, len(rr.Outgoing))
		}
		if hgt == 8 && (rr.Stats.Rejected != 1 || rr.Stats.Applied != 0) {
			t.Fatalf("block 8, a signature with torsion in a state of version 1: %+v, want it rejected", rr.Stats)
		}
	}
	// A direct call with torsion, too, is refused while the state is of
	// version 1.
	torsioned := [][]byte{encryptTo(t, f.shieldingPub, torsionCall(t, f.aliceI,
		stf.Call{Transfer: &stf.Transfer{From: addr(f.aliceI), To: addr(f.bobI), Amount: 1}}, 2, f.c.target(f.shard, f.shard)))}
	if p := enclave.PrepareCalls(req.enc, torsioned)[0]; p.Call != nil || p.Reason != protocol.ReasonBadSignature {
		t.Fatalf("direct call with torsion before the enactment height: authenticated %v, reason %q", p.Call != nil, p.Reason)
	}
	// So is a getter, by either release; the same getter honestly signed
	// is answered.
	aliceAddr := addr(f.aliceI)
	balanceGetter := stf.Getter{FreeBalance: &aliceAddr}
	for _, h := range []*host{f.prov, req} {
		honest, err := stf.SignGetter(f.aliceI, mustGetter(t, balanceGetter), f.c.getterExpiry(), nil, f.c.target(f.shard, f.shard))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.c.Call(ctx, &protocol.ExecuteGetter{Getter: honest}); err != nil {
			t.Fatalf("honest getter before the enactment height: %v", err)
		}
		g := torsionGetter(t, f.aliceI, balanceGetter, f.c.getterExpiry(), f.c.target(f.shard, f.shard))
		if _, err := h.c.Call(ctx, &protocol.ExecuteGetter{Getter: g}); err == nil || !strings.Contains(err.Error(), stf.ErrBadSignature.Error()) {
			t.Fatalf("getter with torsion before the enactment height: %v, want a bad signature", err)
		}
	}
	// A direct batch logged now may be applied after the enactment
	// height: its calls are verified for release 1 or, already, release 2.
	t1, t2 := f.c.target(f.shard, f.shard), f.c.target(f.m2, f.shard)
	call := stf.Call{Transfer: &stf.Transfer{From: addr(f.aliceI), To: addr(f.bobI), Amount: 1}}
	cts := [][]byte{
		encryptTo(t, f.shieldingPub, trustedCall(t, f.aliceI, call, 2, t1)),
		encryptTo(t, f.shieldingPub, trustedCall(t, f.aliceI, call, 2, t2)),
	}
	prepared := enclave.PrepareCalls(req.enc, cts)
	if prepared[0].Call == nil || prepared[0].MRENCLAVE != f.shard || prepared[1].MRENCLAVE != f.m2 {
		t.Fatalf("prepared for %x and %x, want release 1's and release 2's measurements", prepared[0].MRENCLAVE, prepared[1].MRENCLAVE)
	}
	// The same in a batch whose signatures are checked together: a call
	// for release 2 fails release 1's batch and is then checked alone.
	for i := range 30 {
		tgt := t1
		if i%4 == 3 {
			tgt = t2
		}
		cts = append(cts, encryptTo(t, f.shieldingPub, trustedCall(t, f.aliceI, call, uint64(3+i), tgt)))
	}
	checkPreparedAlone(t, req.enc, cts)
	for i, p := range enclave.PrepareCalls(req.enc, cts) {
		want := f.shard
		if i == 1 || (i >= 2 && (i-2)%4 == 3) {
			want = f.m2
		}
		if p.Call == nil || p.MRENCLAVE != want {
			t.Fatalf("call %d prepared for %x (authenticated: %v), want %x", i, p.MRENCLAVE, p.Call != nil, want)
		}
	}
	// Direct calls go to the serving release only (without replication).
	if _, err := req.c.Call(ctx, &protocol.SubmitCalls{Calls: [][]byte{{1}}}); !errors.Is(err, protocol.ErrForbidden) {
		t.Fatalf("direct call to release 2 before the enactment height: %v", err)
	}
	alice, bob := privateBalance(t, f.c, f.prov, f.shieldingPub, f.aliceI), privateBalance(t, f.c, f.prov, f.shieldingPub, f.bobI)
	if alice != 650 || bob != 350 {
		t.Fatalf("release 1 before the enactment: alice %d bob %d, want 650 350", alice, bob)
	}
	if got := vaultRecord(t, req); got["total"] != 1000 || len(got) != 1 {
		t.Fatalf("vault record before the enactment %v", got)
	}

	// At the enactment height release 1 stops, naming release 2.
	if _, err := f.prov.process(f.c, f.enact); !errors.Is(err, protocol.ErrRetired) || !strings.Contains(err.Error(), types.Hash(f.m2).String()[:16]) {
		t.Fatalf("release 1 at the enactment height: %v", err)
	}
	for _, r := range []protocol.Request{&protocol.SubmitCalls{Calls: [][]byte{{1}}}, &protocol.PrivateGetter{Request: []byte{1}}, request(t, f.c.tc, f.enact)} {
		if _, err := f.prov.c.Call(ctx, r); !errors.Is(err, protocol.ErrRetired) {
			t.Fatalf("%s to retired release 1: %v", r.Type(), err)
		}
	}
	// Release 2 migrates the state and applies the block: Bob's call
	// signed for release 2, Alice's shield, and Bob's call with torsion,
	// under the migrated state's rule.
	rr, err := req.process(f.c, f.enact)
	if err != nil {
		t.Fatal(err)
	}
	if rr.Stats.Applied != 2 || rr.Stats.Shields != 1 || len(rr.Outgoing) == 0 {
		t.Fatalf("release 2 at the enactment height: %+v, %d outgoing", rr.Stats, len(rr.Outgoing))
	}
	if got := vaultRecord(t, req); got["shielded"] != 1500 || len(got) != 1 {
		t.Fatalf("vault record after the migration %v, want shielded 1500", got)
	}
	req.serving = &f.m2
	// A call signed for release 1 no longer executes.
	rr, err = req.process(f.c, f.enact+1)
	if err != nil || rr.Stats.Applied != 0 || rr.Stats.Rejected != 1 {
		t.Fatalf("call for release 1 after the enactment: %+v %v", rr, err)
	}
	if a, b := privateBalance(t, f.c, req, f.shieldingPub, f.aliceI), privateBalance(t, f.c, req, f.shieldingPub, f.bobI); a != alice+10+5+500 || b != bob-15 {
		t.Fatalf("release 2: alice %d bob %d, want %d %d", a, b, alice+515, bob-15)
	}
	// A restart of release 2 resumes as the serving release.
	req.boot(f.c)
	if got := vaultRecord(t, req); got["shielded"] != 1500 {
		t.Fatalf("vault record after restart %v", got)
	}

	// Calls prepared before the enactment height (above) and applied
	// after it: the one verified for release 1 is refused as if verified
	// when applied; the same call signed for release 2 executes.
	rep, err := enclave.ApplyPrepared(req.enc, prepared, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results; r[0].Status != protocol.CallInvalid || r[0].Reason != protocol.ReasonBadSignature || r[1].Status != protocol.CallExecuted {
		t.Fatalf("results %+v, want release 1's call refused (bad signature) and release 2's executed", r)
	}

	// From the enactment height the state is of version 2, whose rule is
	// the cofactored one: a signature with torsion is taken, indirect
	// (block 12) and direct, alone or in a batch.
	bobBefore := privateBalance(t, f.c, req, f.shieldingPub, f.bobI)
	mustOK(t, f.c.block(invoke(t, f.c, accounts.DevKey("Alice"), f.shieldingPub, f.shard,
		torsionCall(t, f.bobI, stf.Call{Transfer: &stf.Transfer{From: addr(f.bobI), To: addr(f.aliceI), Amount: 5}}, 3, t2))))
	f.c.block()
	advance(t, f, req, 11)
	if rr, err := req.process(f.c, 12); err != nil {
		t.Fatal(err)
	} else if rr.Stats.Applied != 1 {
		t.Fatalf("block 12, a signature with torsion in a state of version 2: %+v, want it applied", rr.Stats)
	}
	if b := privateBalance(t, f.c, req, f.shieldingPub, f.bobI); b != bobBefore-5 {
		t.Fatalf("bob %d after the call with torsion, want %d", b, bobBefore-5)
	}
	g := torsionGetter(t, f.aliceI, balanceGetter, f.c.getterExpiry(), t2)
	if _, err := req.c.Call(ctx, &protocol.ExecuteGetter{Getter: g}); err != nil {
		t.Fatalf("getter with torsion after the enactment height: %v", err)
	}
	// Chunks of at least four calls per core reach the batch equation.
	for _, n := range []int{1, max(8, 4*runtime.GOMAXPROCS(0))} {
		var cts [][]byte
		for i := range n {
			cts = append(cts, encryptTo(t, f.shieldingPub, torsionCall(t, f.aliceI, call, uint64(10+i), t2)))
		}
		for i, p := range enclave.PrepareCalls(req.enc, cts) {
			if p.Call == nil || p.MRENCLAVE != f.m2 {
				t.Fatalf("direct call %d of %d with torsion after the enactment height: authenticated %v, reason %q", i, n, p.Call != nil, p.Reason)
			}
		}
	}
}

// TestUpgradeHandoverRefused: the keys go to no other measurement than
// the one the chain authorized, not before the provider verified the
// block with the authorization (and the requester can prove it), and
// never to an older release.
func TestUpgradeHandoverRefused(t *testing.T) {
	f := newUpgradeFixture(t)
	try := func(t *testing.T, m [32]byte, r uint64) error {
		t.Helper()
		req := releaseHost(t, f.shard, m, r)
		res, err := relay(t, f.c, req, f.prov, nil)
		if err == nil || res != nil {
			t.Fatalf("handover to %x release %d: %+v", m[:4], r, res)
		}
		return err
	}
	// The provider verified block 4: no authorization yet.
	advance(t, f, f.prov, 4)
	if err := try(t, f.m2, 2); !strings.Contains(err.Error(), "MRENCLAVE not allowed") {
		t.Fatalf("before the authorization: %v", err)
	}
	// Block 5 holds it; the provider verified it, but its checkpoint
	// header's state does not hold it yet: the requester refuses.
	advance(t, f, f.prov, 5)
	if err := try(t, f.m2, 2); !strings.Contains(err.Error(), enclave.ErrNotAuthorized.Error()) {
		t.Fatalf("authorization not provable at the checkpoint: %v", err)
	}
	advance(t, f, f.prov, 6)
	for _, tc := range []struct {
		name    string
		m       [32]byte
		release uint64
		want    string
	}{
		{"unauthorized measurement", sha256Of("not authorized"), 2, "MRENCLAVE not allowed"},
		{"authorized measurement of the same release", f.m2, 1, enclave.ErrDowngrade.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := try(t, tc.m, tc.release); !errors.Is(err, protocol.ErrVerification) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// A provider host that leaves out the shard record's proof, or passes
	// one of an earlier height, gets nothing handed over.
	for name, alter := range map[string]func([]protocol.ProvedValue) []protocol.ProvedValue{
		"shard record without a proof": func(vs []protocol.ProvedValue) []protocol.ProvedValue {
			return slices.DeleteFunc(vs, func(v protocol.ProvedValue) bool {
				return bytes.Equal(v.Key, bridge.ShardKey(types.Hash(f.shard)))
			})
		},
		"shard record of an earlier height": func(vs []protocol.ProvedValue) []protocol.ProvedValue {
			old := registryProofs(t, f.c, f.prov.signer, f.shard, 3)
			for i := range vs {
				if bytes.Equal(vs[i].Key, bridge.ShardKey(types.Hash(f.shard))) {
					vs[i] = old[len(old)-1]
				}
			}
			return vs
		},
	} {
		t.Run(name, func(t *testing.T) {
			f.prov.alterRegistry = alter
			defer func() { f.prov.alterRegistry = nil }()
			if err := try(t, f.m2, 2); !strings.Contains(err.Error(), "proof") {
				t.Fatalf("got %v", err)
			}
		})
	}

	// The authorized release gets them.
	if _, err := handover(t, f, releaseHost(t, f.shard, f.m2, 2)); err != nil {
		t.Fatal(err)
	}

	// A provider of release 3 gives nothing to the authorized measurement
	// when that is release 2 (a downgrade the chain authorized).
	f = newUpgradeFixtureRelease(t, 3)
	advance(t, f, f.prov, 6)
	if err := try(t, f.m2, 2); !errors.Is(err, protocol.ErrVerification) || !strings.Contains(err.Error(), enclave.ErrDowngrade.Error()) {
		t.Fatalf("handover to an older release: %v", err)
	}
}

// encryptTo encrypts a signed call to the shard's shielding key.
func encryptTo(t *testing.T, pub []byte, signed []byte) []byte {
	t.Helper()
	ct, err := shielding.Encrypt(pub, shielding.InfoTrustedCall, signed)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}
