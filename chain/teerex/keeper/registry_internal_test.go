package keeper

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/tee/sim"
)

// registry is the module on a committed store, advanced block by block.
type registry struct {
	t     *testing.T
	mod   *Module
	st    *store.Store
	kv    *store.Cache
	ctx   *runtime.Context
	quote map[types.Hash]*sim.Backend
}

var testGenesis = teerex.GenesisID("registry test", 1, []byte("validators"))

func newRegistry(t *testing.T, at time.Time) *registry {
	t.Helper()
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	r := &registry{t: t, mod: New(nil, nil), st: st, quote: map[types.Hash]*sim.Backend{}}
	r.kv = store.NewCache(st)
	r.ctx = &runtime.Context{Store: r.kv, ChainID: "registry test", Height: 1, Time: at, Dev: true, Genesis: testGenesis}
	g, err := devnet.TeerexGenesis(at)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.mod.InitGenesis(r.ctx, raw); err != nil {
		t.Fatal(err)
	}
	r.commit()
	return r
}

// commit writes the block and starts the next one at the same time.
func (r *registry) commit() {
	r.t.Helper()
	p, err := r.st.Prepare(r.ctx.Height, r.kv.Changes())
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.st.Commit(p); err != nil {
		r.t.Fatal(err)
	}
	r.kv = store.NewCache(r.st)
	r.ctx = &runtime.Context{Store: r.kv, ChainID: r.ctx.ChainID, Height: r.ctx.Height + 1, Time: r.ctx.Time, Dev: true, Genesis: testGenesis}
}

// endBlock runs the module's EndBlock, as the application does after the
// block's transactions, and commits.
func (r *registry) endBlock() []string {
	r.t.Helper()
	b := r.kv.Branch()
	ctx := r.ctx.WithStore(b)
	if err := r.mod.EndBlock(ctx); err != nil {
		r.t.Fatal(err)
	}
	b.Write()
	var pruned []string
	for _, ev := range ctx.Events() {
		if ev.Type == teerex.EventPruned {
			pruned = append(pruned, ev.Attributes[0].Value)
		}
	}
	r.commit()
	return pruned
}

// call executes a call from sender as the application does: on a branch
// kept only on success. Errors must be module errors.
func (r *registry) call(sender tx.Address, msg runtime.Msg) error {
	r.t.Helper()
	b := r.kv.Branch()
	ctx := r.ctx.WithStore(b)
	ctx.Sender = sender
	err := r.mod.Execute(ctx, msg)
	if err == nil {
		b.Write()
	} else if !errors.As(err, new(*types.Error)) {
		r.t.Fatalf("untyped error (would halt the chain): %v", err)
	}
	return err
}

// register registers (or renews) signer with a verified sim quote of
// measurement m.
func (r *registry) register(signer tx.Address, m types.Hash) error {
	r.t.Helper()
	b, ok := r.quote[m]
	if !ok {
		mr := [32]byte(m)
		var err error
		if b, err = sim.New(sim.Config{Measurement: &mr}); err != nil {
			r.t.Fatal(err)
		}
		r.quote[m] = b
	}
	key := []byte("shielding key")
	q, err := b.Quote(teerex.ReportData(signer, key, testGenesis))
	if err != nil {
		r.t.Fatal(err)
	}
	return r.call(signer, teerex.RegisterEnclave{Attestation: teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}, ShieldingKey: key})
}

// seed stores a registration of signer with measurement m attested at
// at through the keeper's write path, as register does once the
// attestation verified: thousands of verifications would take minutes.
func (r *registry) seed(signer tx.Address, m types.Hash, at time.Time) {
	r.t.Helper()
	e := teerex.Enclave{Signer: signer, Kind: attestation.KindDCAP, MRENCLAVE: m, TCBStatus: attestation.StatusUpToDate,
		AttestedAt: at.UnixNano(), RegisteredHeight: r.ctx.Height, AttestedHeight: r.ctx.Height}
	if err := r.mod.Keeper.put(r.kv, e, nil); err != nil {
		r.t.Fatal(err)
	}
}

// query answers a query path from the committed state with its proof, as
// the application's Query does, and decodes the value into v.
func (r *registry) query(path string, v any) bool {
	r.t.Helper()
	key, err := r.mod.QueryKey(strings.Split(path, "/"))
	if err != nil {
		r.t.Fatalf("%s: %v", path, err)
	}
	got, err := r.st.GetWithProof(key, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := got.Proof.Verify(r.st.Root(), key, got.Value); err != nil {
		r.t.Fatalf("%s: %v", path, err)
	}
	if got.Value == nil {
		return false
	}
	if err := codec.Unmarshal(got.Value, v); err != nil {
		r.t.Fatalf("%s: %v", path, err)
	}
	return true
}

// listed reads a listing through the queries a client makes: the count,
// then every slot.
func (r *registry) listed(m *types.Hash) map[tx.Address]bool {
	r.t.Helper()
	base := "enclaves"
	if m != nil {
		base += "/" + m.String()
	}
	var n uint64
	r.query(base, &n)
	out := make(map[tx.Address]bool, n)
	for i := range n {
		var s tx.Address
		if !r.query(fmt.Sprintf("%s/%d", base, i), &s) {
			r.t.Fatalf("%s: slot %d of %d empty", base, i, n)
		}
		if out[s] {
			r.t.Fatalf("%s: %s listed twice", base, s)
		}
		out[s] = true
	}
	var past tx.Address
	if r.query(fmt.Sprintf("%s/%d", base, n), &past) {
		r.t.Fatalf("%s: slot %d past the count holds %s", base, n, past)
	}
	return out
}

// consistent checks the listings and the pruning index against the
// registrations themselves, found by a prefix scan, and returns the
// listings: of all registrations, and per measurement.
func (r *registry) consistent() (all map[tx.Address]bool, of map[types.Hash]map[tx.Address]bool) {
	r.t.Helper()
	of = map[types.Hash]map[tx.Address]bool{}
	recs := map[tx.Address]teerex.Enclave{}
	if err := r.st.Iterate(teerex.EnclaveKeyPrefix(), func(_, v []byte) bool {
		var e teerex.Enclave
		if err := codec.Unmarshal(v, &e); err != nil {
			r.t.Fatal(err)
		}
		recs[e.Signer] = e
		return true
	}); err != nil {
		r.t.Fatal(err)
	}
	if all = r.listed(nil); len(all) != len(recs) {
		r.t.Fatalf("all: %d listed, %d registrations", len(all), len(recs))
	}
	count := map[types.Hash]int{}
	for _, e := range recs {
		count[e.MRENCLAVE]++
	}
	for m, n := range count {
		got := r.listed(&m)
		if len(got) != n {
			r.t.Fatalf("%s: %d listed, %d registrations", m, len(got), n)
		}
		for s := range got {
			if recs[s].MRENCLAVE != m {
				r.t.Fatalf("%s listed under %s, registered with %s", s, m, recs[s].MRENCLAVE)
			}
		}
		of[m] = got
	}
	expiry := 0
	if err := r.st.Iterate(keyExpiryPrefix, func(k, _ []byte) bool {
		s := tx.Address(k[len(k)-32:])
		if !bytes.Equal(k, expiryKey(recs[s].AttestedAt, s)) {
			r.t.Fatalf("stale expiry entry %x", k)
		}
		expiry++
		return true
	}); err != nil {
		r.t.Fatal(err)
	}
	if expiry != len(recs) {
		r.t.Fatalf("%d expiry entries, %d registrations", expiry, len(recs))
	}
	return all, of
}

func address(i int) tx.Address {
	return tx.Address(sha256.Sum256(binary.BigEndian.AppendUint64([]byte("enclave signer "), uint64(i))))
}

// TestRegistryOf10000Enclaves registers 10,000 enclaves, 6,000 of one
// measurement, and keeps working: registration, renewal (also to another
// measurement), unregistration, the listing queries, the sidechain's count
// of active enclaves, and pruning, a bounded number per block, once they
// have long expired (TestPruning has the rules). On the old layout, where
// each index was one CBOR array and the codec reads at most 4,096
// elements, the 4,097th registration failed with an untyped error
// (halting the chain), and so did every later registration, renewal and
// unregistration.
func TestRegistryOf10000Enclaves(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := newRegistry(t, t0)
	shard, other := types.Hash(sha256.Sum256([]byte("shard release"))), types.Hash(sha256.Sum256([]byte("other release")))
	const total = 10_000
	for i := range total {
		m := shard
		if i%5 >= 3 {
			m = other
		}
		// Attested over the last hours, oldest first.
		r.seed(address(i), m, t0.Add(-time.Duration(total-i)*time.Second))
		if i%2000 == 1999 {
			r.commit()
		}
	}
	r.commit()

	// A new enclave of each measurement registers with a verified quote.
	fresh, fresh2 := address(total), address(total+1)
	if err := r.register(fresh, shard); err != nil {
		t.Fatalf("registration %d: %v", total+1, err)
	}
	if err := r.register(fresh2, other); err != nil {
		t.Fatalf("registration %d: %v", total+2, err)
	}
	// An old one renews, another moves to the other release, a third
	// unregisters.
	renewed, moved, gone := address(0), address(1), address(2)
	for _, s := range []tx.Address{renewed, moved} {
		m := shard
		if s == moved {
			m = other
		}
		if err := r.register(s, m); err != nil {
			t.Fatalf("renewal of %s: %v", s, err)
		}
	}
	if err := r.call(gone, teerex.UnregisterEnclave{}); err != nil {
		t.Fatalf("unregistration: %v", err)
	}
	r.commit()

	all, of := r.consistent()
	// The shard's release lost one to the other and one unregistered, and
	// gained the fresh one.
	if len(all) != total+1 || len(of[shard]) != 5999 || len(of[other]) != 4002 {
		t.Fatalf("%d registrations, %d of the shard, %d of the other release", len(all), len(of[shard]), len(of[other]))
	}
	var n uint64
	if !r.query("enclaves", &n) || n != total+1 {
		t.Fatalf("/teerex/enclaves = %d", n)
	}
	if !r.query("enclaves/"+shard.String(), &n) || n != 5999 {
		t.Fatalf("/teerex/enclaves/<shard> = %d", n)
	}
	if !of[shard][fresh] || !of[shard][renewed] || of[shard][moved] || !of[other][moved] || !of[other][fresh2] || all[gone] {
		t.Fatal("registration, renewal to another release or unregistration not reflected in the listings")
	}
	// The sidechain asks whether more than one enclave of the shard is
	// active: it reads no more than it must.
	if got, err := r.mod.Keeper.CountActiveOf(r.st, shard, r.ctx.Time, 2); err != nil || got != 2 {
		t.Fatalf("CountActiveOf = %d, %v", got, err)
	}

	// Long after the seeded registrations expired, the end of each block
	// prunes them, oldest first, at most MaxPrunedPerBlock per block; the
	// renewed and fresh ones, attested later, go last.
	p, err := r.mod.Keeper.Policy(r.st)
	if err != nil {
		t.Fatal(err)
	}
	r.ctx.Time = t0.Add(p.RenewalPeriod() + ExpiredRetention)
	var pruned []string
	for range 20 {
		got := r.endBlock()
		if len(got) != MaxPrunedPerBlock {
			t.Fatalf("block pruned %d, want %d", len(got), MaxPrunedPerBlock)
		}
		pruned = append(pruned, got...)
	}
	if pruned[0] != address(3).String() {
		t.Fatalf("pruned %s first, want the oldest remaining registration %s", pruned[0], address(3))
	}
	if _, err := r.mod.Keeper.Enclave(r.st, address(3)); !errors.Is(err, teerex.ErrNotRegistered) {
		t.Fatalf("pruned registration: %v", err)
	}
	// Registration keeps working while the backlog is pruned.
	if err := r.register(address(total+2), shard); err != nil {
		t.Fatal(err)
	}
	r.commit()
	if all, _ = r.consistent(); len(all) != total+2-20*MaxPrunedPerBlock {
		t.Fatalf("%d registrations after pruning", len(all))
	}
}
