package trusted_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/api"
	"github.com/integritee-go/integritee/worker/rpc/rpctest"
)

// now is the clients' clock: the test chain's time, by which the enclave
// judges getter expiries.
var now = rpctest.BlockTime

// registry is a chain whose teerex holds the given registrations.
type registry struct {
	enclaves map[tx.Address]teerex.Enclave
	policy   teerex.Policy
	allow    teerex.MRENCLAVEs
	shards   map[types.Hash]bridge.Shard
	// blocks are the shard blocks the chain confirmed, by number.
	blocks map[uint64]types.Hash
	// genesis is the chain's genesis ID; genesisErr fails its query.
	genesis    types.Hash
	genesisErr error

	// latest is the height the node answers each query asked at height 0
	// ("enclave", "policy", "allowlist", "shard"); 5 if unset.
	latest map[string]int64
	// disallowedAt, if set, is the height from which the allowlist is
	// empty.
	disallowedAt int64
	// headerTime is the time of every verified header; zero: now.
	headerTime time.Time
	// reads are the heights each query was answered at.
	reads map[string]int64
}

// answer returns the height the node answers query what asked at height.
func (r *registry) answer(what string, height int64) int64 {
	if height == 0 {
		height = r.latest[what]
	}
	if height == 0 {
		height = 5
	}
	if r.reads == nil {
		r.reads = map[string]int64{}
	}
	r.reads[what] = height
	return height
}

func (r *registry) SidechainBlock(_ context.Context, shard types.Hash, n uint64) (*sidechain.Confirmation, int64, error) {
	h, ok := r.blocks[n]
	if !ok {
		return nil, 5, nil
	}
	return &sidechain.Confirmation{Shard: shard, Number: n, HeaderHash: h}, 5, nil
}

func (r *registry) GenesisID(context.Context) (types.Hash, error) { return r.genesis, r.genesisErr }

func (r *registry) VerifiedHeader(_ context.Context, height int64) (*cmttypes.Header, error) {
	t := r.headerTime
	if t.IsZero() {
		t = now
	}
	return &cmttypes.Header{Height: height, Time: t}, nil
}

func (r *registry) EnclaveAt(_ context.Context, s tx.Address, height int64) (*teerex.Enclave, int64, error) {
	h := r.answer("enclave", height)
	e, ok := r.enclaves[s]
	if !ok {
		return nil, h, teerex.ErrNotRegistered
	}
	return &e, h, nil
}
func (r *registry) PolicyAt(_ context.Context, height int64) (*teerex.Policy, int64, error) {
	p := r.policy
	return &p, r.answer("policy", height), nil
}
func (r *registry) AllowlistAt(_ context.Context, height int64) (teerex.MRENCLAVEs, int64, error) {
	h := r.answer("allowlist", height)
	if r.disallowedAt != 0 && h >= r.disallowedAt {
		return nil, h, nil
	}
	return r.allow, h, nil
}
func (r *registry) ShardAt(_ context.Context, id types.Hash, height int64) (*client.ShardStatus, error) {
	s, ok := r.shards[id]
	if !ok {
		s = bridge.DefaultShard(id)
	}
	return &client.ShardStatus{Shard: s, Recorded: ok, Height: r.answer("shard", height)}, nil
}

// registered returns a registry in which e's enclave is registered as it
// would be on a dev chain.
func registered(id rpc.Identity) *registry {
	signer := tx.Address(id.Signer)
	return &registry{
		enclaves: map[tx.Address]teerex.Enclave{signer: {
			Signer: signer, MRENCLAVE: id.MRENCLAVE, ShieldingKeyHash: sha256.Sum256(id.ShieldingKey), AttestedAt: now.Add(-time.Hour).UnixNano(),
		}},
		policy:  teerex.Policy{RenewalPeriodSecs: 24 * 3600},
		allow:   teerex.MRENCLAVEs{id.MRENCLAVE},
		shards:  map[types.Hash]bridge.Shard{},
		genesis: types.Hash(rpctest.Genesis()),
	}
}

func start(t testing.TB, name string) (*rpctest.Enclave, *rpc.Server, string) {
	t.Helper()
	e := rpctest.NewEnclave(t, name)
	srv := rpc.New(e, rpc.Options{})
	url, _ := rpctest.Serve(t, srv)
	return e, srv, url
}

func TestDialVerifiesTheEnclave(t *testing.T) {
	e, _, url := start(t, "sdk verify")
	id := e.Identity()
	signer := tx.Address(id.Signer)
	ctx := context.Background()
	opts := trusted.Options{Now: func() time.Time { return now }}
	c, err := trusted.Dial(ctx, url, registered(id), opts)
	if err != nil {
		t.Fatal(err)
	}
	if c.Shard() != id.Shard || c.MRENCLAVE() != id.MRENCLAVE || string(c.ShieldingKey()) != string(id.ShieldingKey) {
		t.Fatal("identity")
	}

	// A worker presenting another enclave's shielding key (here: a second
	// enclave's worker while the first is the registered signer's key).
	other, _, otherURL := start(t, "sdk verify")
	impostor := registered(id)
	oid := other.Identity()
	impostor.enclaves[tx.Address(oid.Signer)] = func() teerex.Enclave {
		en := impostor.enclaves[signer]
		en.Signer = tx.Address(oid.Signer)
		return en // registered with the first enclave's key hash
	}()
	if _, err := trusted.Dial(ctx, otherURL, impostor, opts); !errors.Is(err, trusted.ErrShieldingKeyMismatch) {
		t.Fatalf("worker with an unregistered shielding key: %v", err)
	}

	tests := []struct {
		name   string
		mutate func(*registry)
		want   []error
	}{
		{"not registered", func(r *registry) { delete(r.enclaves, signer) }, []error{trusted.ErrEnclaveNotActive, teerex.ErrNotRegistered}},
		{"key hash differs", func(r *registry) { en := r.enclaves[signer]; en.ShieldingKeyHash[0] ^= 1; r.enclaves[signer] = en },
			[]error{trusted.ErrShieldingKeyMismatch}},
		{"expired", func(r *registry) {
			en := r.enclaves[signer]
			en.AttestedAt = now.Add(-25 * time.Hour).UnixNano()
			r.enclaves[signer] = en
		},
			[]error{trusted.ErrEnclaveNotActive, teerex.ErrExpired}},
		{"debug", func(r *registry) { en := r.enclaves[signer]; en.Debug = true; r.enclaves[signer] = en },
			[]error{trusted.ErrEnclaveNotActive, teerex.ErrDebugEnclave}},
		{"disallowed", func(r *registry) { r.allow = nil }, []error{trusted.ErrEnclaveNotActive, teerex.ErrMRENCLAVENotAllowed}},
		{"other measurement registered", func(r *registry) { en := r.enclaves[signer]; en.MRENCLAVE[0] ^= 1; r.enclaves[signer] = en },
			[]error{trusted.ErrIdentityMismatch}},
		{"shard moved to another release", func(r *registry) {
			s := bridge.DefaultShard(types.Hash(id.Shard))
			s.Config.MRENCLAVE[0] ^= 1
			r.shards[types.Hash(id.Shard)] = s
		}, []error{trusted.ErrNotShardEnclave}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := registered(id)
			tc.mutate(r)
			_, err := trusted.Dial(ctx, url, r, opts)
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Fatalf("error %v, want %v", err, w)
				}
			}
		})
	}
	if _, err := trusted.Dial(ctx, "ftp://x", registered(id), opts); err == nil {
		t.Fatal("ftp URL accepted")
	}
}

// TestDialReadsOneRecentHeight: the registration, policy, allowlist and
// shard are read at one height, the one the node answered the registration
// at, and that state must be recent. The old Dial asked each at the
// latest height, taking whatever height the node answered: here it would
// have read the allowlist from height 6, before the measurement was
// disallowed at 7, and accepted; and it took state of any age.
func TestDialReadsOneRecentHeight(t *testing.T) {
	e, _, url := start(t, "sdk heights")
	id := e.Identity()
	ctx := context.Background()
	opts := trusted.Options{Now: func() time.Time { return now }}

	r := registered(id)
	r.latest = map[string]int64{"enclave": 7, "policy": 5, "allowlist": 6, "shard": 8}
	if _, err := trusted.Dial(ctx, url, r, opts); err != nil {
		t.Fatal(err)
	}
	for what, h := range r.reads {
		if h != 7 {
			t.Errorf("%s read at height %d, the registration at 7", what, h)
		}
	}
	if len(r.reads) != 4 {
		t.Errorf("reads %v", r.reads)
	}
	r.disallowedAt = 7
	if _, err := trusted.Dial(ctx, url, r, opts); !errors.Is(err, teerex.ErrMRENCLAVENotAllowed) {
		t.Fatalf("measurement disallowed at the registration's height: %v", err)
	}

	// State committed ten minutes ago is refused by default, accepted
	// under a looser bound.
	r = registered(id)
	r.headerTime = now.Add(-10 * time.Minute)
	if _, err := trusted.Dial(ctx, url, r, opts); !errors.Is(err, trusted.ErrStaleState) {
		t.Fatalf("stale state: %v", err)
	}
	loose := opts
	loose.MaxStateAge = time.Hour
	if _, err := trusted.Dial(ctx, url, r, loose); err != nil {
		t.Fatalf("stale state within MaxStateAge: %v", err)
	}
	loose.MaxStateAge = -time.Second
	if _, err := trusted.Dial(ctx, url, r, loose); err == nil {
		t.Fatal("a negative MaxStateAge was accepted")
	}
}

func TestDirectCalls(t *testing.T) {
	e, srv, url := start(t, "sdk calls")
	ctx := context.Background()
	reg := registered(e.Identity())
	c, err := trusted.Dial(ctx, url, reg, trusted.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	alice, bob, sudo := rpctest.Key("alice"), rpctest.Key("bob"), rpctest.SudoKey()
	if _, err := c.SubmitCall(ctx, sudo, stf.Call{SetBalance: &stf.SetBalance{Who: rpctest.Address(alice), Amount: 1000}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		r, err := c.Transfer(ctx, alice, rpctest.Address(bob), 10)
		if err != nil || !r.Success || r.Block.Number != uint64(i+2) {
			t.Fatalf("transfer %d: %+v %v", i, r, err)
		}
	}
	if b, err := c.Balance(ctx, bob); err != nil || b != 50 {
		t.Fatalf("bob %d %v", b, err)
	}
	if n, err := c.Nonce(ctx, alice); err != nil || n != 5 {
		t.Fatalf("alice nonce %d %v", n, err)
	}
	r, err := c.Transfer(ctx, bob, rpctest.Address(alice), 1000)
	if err != nil || r.Success || r.Error != stf.ErrInsufficientFunds.Error() {
		t.Fatalf("overdraft %+v %v", r, err)
	}
	r, err = c.Unshield(ctx, bob, tx.Address{7}, 20)
	if err != nil || !r.Success {
		t.Fatalf("unshield %+v %v", r, err)
	}
	var unshields int
	for _, o := range e.Outgoing() {
		if o.Call.Method == bridge.MethodUnshieldFunds {
			unshields++
		}
	}
	if unshields != 1 {
		t.Fatalf("%d unshield_funds outgoing", unshields)
	}
	// Replay: refused with its reason.
	ct, err := c.EncryptCall(alice, stf.Call{Transfer: &stf.Transfer{From: rpctest.Address(alice), To: rpctest.Address(bob), Amount: 1}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ie *trusted.InvalidCallError
	if _, err := c.Submit(ctx, ct); !errors.As(err, &ie) || !errors.Is(err, trusted.ErrInvalidCall) || ie.Reason != protocol.ReasonStaleNonce {
		t.Fatalf("replay: %v", err)
	}
	// A getter about someone else's account is refused by the enclave.
	b := rpctest.Address(bob)
	if _, err := c.Getter(ctx, alice, stf.Getter{FreeBalance: &b}); !errors.Is(err, trusted.ErrGetter) {
		t.Fatalf("foreign getter: %v", err)
	}

	// Watch: submitted, executed, confirmed once the host says so and the
	// chain's (proved) record agrees. A host that says confirmed while the
	// chain has no such block is caught (ErrNotConfirmed).
	for _, onChain := range []bool{false, true} {
		n, err := c.Nonce(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		ct, err = c.EncryptCall(alice, stf.Call{Transfer: &stf.Transfer{From: rpctest.Address(alice), To: rpctest.Address(bob), Amount: 1}}, n)
		if err != nil {
			t.Fatal(err)
		}
		w, err := c.Watch(ctx, ct)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		var executed *trusted.Result
		for _, want := range []string{api.StatusSubmitted, api.StatusExecuted, api.StatusConfirmed} {
			st, err := w.Next(ctx)
			if want == api.StatusConfirmed && !onChain {
				if !errors.Is(err, trusted.ErrNotConfirmed) {
					t.Fatalf("confirmed by the host alone: %+v %v", st, err)
				}
				break
			}
			if err != nil || st.Status != want {
				t.Fatalf("status %+v %v, want %s", st, err, want)
			}
			if want == api.StatusExecuted {
				executed = st.Result
				if onChain {
					reg.blocks = map[uint64]types.Hash{executed.Block.Number: executed.HeaderHash}
				}
				srv.Confirmed(executed.Block.Number)
			}
			if want == api.StatusConfirmed && (st.Result.HeaderHash != executed.HeaderHash || !st.Final()) {
				t.Fatalf("confirmed %+v", st.Result)
			}
		}
	}
	// An invalid watched call ends with its reason.
	w2, err := c.Watch(ctx, ct)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if st, _ := w2.Next(ctx); st.Status != api.StatusSubmitted {
		t.Fatalf("%+v", st)
	}
	if st, _ := w2.Next(ctx); st.Status != api.StatusInvalid || st.Reason != protocol.ReasonStaleNonce || !st.Final() {
		t.Fatalf("%+v", st)
	}
}

// TestBoundToTheChain: calls and getters are signed for the chain the
// client's light client verified; an enclave that follows another chain
// refuses them, and a first block that is not one refuses the dial.
func TestBoundToTheChain(t *testing.T) {
	e, _, url := start(t, "sdk chain")
	ctx := context.Background()
	opts := trusted.Options{Now: func() time.Time { return now }}
	c, err := trusted.Dial(ctx, url, registered(e.Identity()), opts)
	if err != nil {
		t.Fatal(err)
	}
	if c.Genesis() != rpctest.Genesis() {
		t.Fatalf("genesis %x, the enclave's chain is %x", c.Genesis(), rpctest.Genesis())
	}

	// The node shows the client another chain: everything signed for it is
	// refused by the enclave.
	other := registered(e.Identity())
	other.genesis[0] ^= 1
	oc, err := trusted.Dial(ctx, url, other, opts)
	if err != nil {
		t.Fatal(err)
	}
	if oc.Genesis() == c.Genesis() {
		t.Fatal("another chain has the same genesis ID")
	}
	alice := rpctest.Key("alice")
	var ie *trusted.InvalidCallError
	if _, err := oc.SubmitCall(ctx, rpctest.SudoKey(), stf.Call{SetBalance: &stf.SetBalance{Who: rpctest.Address(alice), Amount: 1}}); !errors.Is(err, stf.ErrBadSignature) || !errors.Is(err, trusted.ErrGetter) {
		// The nonce getter is refused before the call is sent.
		t.Fatalf("getter for another chain: %v", err)
	}
	ct, err := oc.EncryptCall(rpctest.SudoKey(), stf.Call{SetBalance: &stf.SetBalance{Who: rpctest.Address(alice), Amount: 1}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oc.Submit(ctx, ct); !errors.As(err, &ie) || ie.Reason != protocol.ReasonBadSignature {
		t.Fatalf("call for another chain: %v", err)
	}
	if b, err := c.Balance(ctx, alice); err != nil || b != 0 {
		t.Fatalf("alice %d %v: the call for another chain changed the state", b, err)
	}

	// A chain whose genesis ID cannot be read: no client.
	r := registered(e.Identity())
	r.genesisErr = errors.New("no proof")
	if _, err := trusted.Dial(ctx, url, r, opts); err == nil || !strings.Contains(err.Error(), "genesis ID") {
		t.Fatalf("dial: %v", err)
	}
}

// TestGetterExpiry: getters expire GetterLifetime after the client's
// clock, judged by the enclave against the chain's time.
func TestGetterExpiry(t *testing.T) {
	e, _, url := start(t, "sdk getter expiry")
	ctx := context.Background()
	alice := rpctest.Key("alice")
	// MaxStateAge: a clock minutes ahead would find the chain's state
	// stale at Dial; the enclave's judgement of getters is the point here.
	dial := func(clock time.Time, lifetime time.Duration) (*trusted.Client, error) {
		return trusted.Dial(ctx, url, registered(e.Identity()), trusted.Options{Now: func() time.Time { return clock }, GetterLifetime: lifetime, MaxStateAge: time.Hour})
	}
	for _, tc := range []struct {
		name     string
		clock    time.Time
		lifetime time.Duration
		want     error
	}{
		{"default lifetime", now, 0, nil},
		{"longest lifetime", now, stf.MaxGetterLifetime, nil},
		{"clock behind the chain", now.Add(-3 * time.Minute), 0, stf.ErrGetterExpired},
		{"clock ahead of the chain", now.Add(9 * time.Minute), 0, stf.ErrGetterExpiryTooFar},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dial(tc.clock, tc.lifetime)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Balance(ctx, alice)
			if tc.want == nil && err != nil {
				t.Fatalf("balance: %v", err)
			}
			if tc.want != nil && (!errors.Is(err, tc.want) || !errors.Is(err, trusted.ErrGetter)) {
				t.Fatalf("balance: %v, want %v", err, tc.want)
			}
		})
	}
	for _, lifetime := range []time.Duration{-time.Second, stf.MaxGetterLifetime + time.Millisecond} {
		if _, err := dial(now, lifetime); err == nil {
			t.Fatalf("getter lifetime %s accepted", lifetime)
		}
	}
}

// lying is a host that alters what the enclave answered.
type lying struct {
	*rpctest.Enclave
	alter func(*rpc.Outcome)
}

func (l *lying) SubmitCalls(ctx context.Context, calls [][]byte) ([]rpc.Outcome, error) {
	outs, err := l.Enclave.SubmitCalls(ctx, calls)
	for i := range outs {
		l.alter(&outs[i])
	}
	return outs, err
}

func TestResultsProvenByTheEnclave(t *testing.T) {
	ctx := context.Background()
	for name, alter := range map[string]func(*rpc.Outcome){
		"header altered": func(o *rpc.Outcome) {
			b := *o.Block
			b.Header.StateHash[0] ^= 1
			o.Block = &b
		},
		"failure reported as success": func(o *rpc.Outcome) { o.Status = protocol.CallExecuted },
		"another call's proof": func(o *rpc.Outcome) {
			p := *o.Proof
			p.LeafHash = make([]byte, 32)
			p.Aunts = [][]byte{make([]byte, 32)}
			p.Total, p.Index = 2, 1
			o.Proof = &p
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := rpctest.NewEnclave(t, "sdk lies")
			srv := rpc.New(&lying{Enclave: e, alter: alter}, rpc.Options{})
			url, _ := rpctest.Serve(t, srv)
			c, err := trusted.Dial(ctx, url, registered(e.Identity()), trusted.Options{Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			// A transfer without funds fails in the STF: a failed call.
			_, err = c.Transfer(ctx, rpctest.Key("nobody"), tx.Address{1}, 5)
			if !errors.Is(err, trusted.ErrUnproven) {
				t.Fatalf("altered result accepted: %v", err)
			}
		})
	}
}
