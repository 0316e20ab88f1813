package keeper_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/teerex/keeper"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/tee/sim"
)

// liveness is the liveness period of the tests' policy.
const liveness = time.Minute

// livenessGenesis is the dev genesis with a liveness period.
func livenessGenesis(t testing.TB) *teerex.GenesisState {
	t.Helper()
	g := devGenesis(t)
	g.Policy.LivenessSecs = uint64(liveness / time.Second)
	return g
}

// teerexState is every key and value of the module's state but the
// registration of except: what a keep_alive of except must leave alone
// (the lists and the expiry index among them).
func teerexState(t testing.TB, c *chain, except tx.Address) map[string]string {
	t.Helper()
	out := map[string]string{}
	skip := string(teerex.EnclaveKey(except))
	err := c.KV.Iterate([]byte(teerex.Name+"/"), func(k, v []byte) bool {
		if string(k) != skip {
			out[string(k)] = string(v)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// step is one thing a liveness scenario does at an offset from the
// registration: a keep_alive of sender (want: its error), or a check of
// bob's state (active: want nil, else the error of Active).
type step struct {
	at     time.Duration
	alive  bool
	sender tx.Address
	renew  bool
	want   []error
}

// TestKeepAlive: under a liveness period, an enclave is active for that
// long after its registration or latest keep_alive, then silent
// (ErrSilent) until it keeps alive again; a keep_alive of an unregistered
// or expired sender is refused and changes nothing; a renewal is a fresh
// record (AliveAt reset).
func TestKeepAlive(t *testing.T) {
	e := newEnclave(t, "v1", false, devPKI(t))
	check := func(at time.Duration, want ...error) step { return step{at: at, want: want} }
	keepAlive := func(at time.Duration, sender tx.Address, want ...error) step {
		return step{at: at, alive: true, sender: sender, want: want}
	}
	renew := func(at time.Duration) step { return step{at: at, renew: true} }
	day := teerex.DefaultRenewalPeriod
	tests := []struct {
		name    string
		genesis func(testing.TB) *teerex.GenesisState
		steps   []step
	}{
		{name: "registration alone lasts the liveness period", genesis: livenessGenesis, steps: []step{
			check(0), check(liveness), check(liveness+time.Nanosecond, teerex.ErrSilent),
		}},
		{name: "keep_alive keeps active past the liveness period", genesis: livenessGenesis, steps: []step{
			keepAlive(50*time.Second, bob), check(liveness + time.Second), check(50*time.Second + liveness),
			check(50*time.Second+liveness+time.Nanosecond, teerex.ErrSilent),
			keepAlive(100*time.Second, bob), check(100*time.Second + liveness),
		}},
		{name: "keep_alive every third of the period keeps active", genesis: livenessGenesis, steps: func() []step {
			var s []step
			for at := liveness / 3; at <= 10*liveness; at += liveness / 3 {
				s = append(s, keepAlive(at, bob), check(at+liveness))
			}
			return s
		}()},
		{name: "a silent enclave revives itself", genesis: livenessGenesis, steps: []step{
			check(2*liveness, teerex.ErrSilent), keepAlive(2*liveness, bob), check(2 * liveness), check(3 * liveness),
			check(3*liveness+time.Nanosecond, teerex.ErrSilent),
		}},
		{name: "renewal resets the keep_alive", genesis: livenessGenesis, steps: []step{
			keepAlive(liveness, bob), renew(liveness + 10*time.Second), check(2*liveness + 10*time.Second),
			check(2*liveness+10*time.Second+time.Nanosecond, teerex.ErrSilent),
		}},
		{name: "unregistered sender refused", genesis: livenessGenesis, steps: []step{
			keepAlive(time.Second, carol, teerex.ErrNotRegistered), check(liveness+time.Second, teerex.ErrSilent),
		}},
		{name: "expired sender refused", genesis: livenessGenesis, steps: []step{
			keepAlive(day, bob), keepAlive(day+time.Nanosecond, bob, teerex.ErrExpired),
			check(day+time.Nanosecond, teerex.ErrExpired),
		}},
		{name: "no liveness period: registration only", genesis: devGenesis, steps: []step{
			check(day), keepAlive(liveness, bob), check(day), check(day+time.Nanosecond, teerex.ErrExpired),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t, true, t0, tc.genesis(t))
			start := t0.Add(time.Minute)
			c.at(start)
			wantErr(t, c.register(bob, e.evidence(t, bob, shieldingKey), shieldingKey).Err)
			for i, s := range tc.steps {
				at := start.Add(s.at)
				switch {
				case s.renew:
					c.at(at)
					r := c.register(bob, e.evidence(t, bob, shieldingKey), shieldingKey)
					wantErr(t, r.Err)
					got, err := c.Teerex.Keeper.Enclave(c.KV, bob)
					if err != nil || got.AliveAt != 0 || !got.LastSeen().Equal(at) {
						t.Fatalf("step %d: renewed registration %+v %v: want AliveAt reset", i, got, err)
					}
				case s.alive:
					c.at(at)
					before, _ := c.Teerex.Keeper.Enclave(c.KV, bob)
					others := teerexState(t, c, bob)
					r := c.call(s.sender, teerex.MethodKeepAlive, teerex.KeepAlive{})
					if len(s.want) > 0 {
						rejected(t, r, s.want...)
						continue
					}
					wantErr(t, r.Err)
					ev, ok := eventAttrs(r, teerex.EventAlive)
					if !ok || !maps.Equal(ev, map[string]string{"signer": s.sender.String()}) || len(r.Events) != 1 {
						t.Fatalf("step %d: events %v", i, r.Events)
					}
					got, err := c.Teerex.Keeper.Enclave(c.KV, s.sender)
					wantErr(t, err)
					want := before
					want.AliveAt = at.UnixNano()
					if !equalEnclave(got, want) || !got.LastSeen().Equal(at) {
						t.Fatalf("step %d: after keep_alive %+v, want %+v", i, got, want)
					}
					if after := teerexState(t, c, bob); !maps.Equal(after, others) {
						t.Fatalf("step %d: keep_alive changed more than the registration", i)
					}
				default:
					_, err := c.Teerex.Keeper.Active(c.KV, bob, at)
					wantErr(t, err, s.want...)
				}
			}
		})
	}
}

// A silent enclave leaves the listings of active enclaves (the shard
// membership and voting sets are drawn from them) but stays registered.
func TestSilentLeavesActiveOf(t *testing.T) {
	e := newEnclave(t, "v1", false, devPKI(t))
	c := newChain(t, true, t0, livenessGenesis(t))
	start := t0.Add(time.Minute)
	c.at(start)
	for _, s := range []tx.Address{bob, carol} {
		wantErr(t, c.register(s, e.evidence(t, s, shieldingKey), shieldingKey).Err)
	}
	c.at(start.Add(liveness))
	wantErr(t, c.call(bob, teerex.MethodKeepAlive, teerex.KeepAlive{}).Err)
	now := start.Add(liveness + time.Second)
	act, err := c.Teerex.Keeper.ActiveOf(c.KV, e.m, now)
	if err != nil || len(act) != 1 || act[0].Signer != bob {
		t.Fatalf("active %+v %v, want bob alone", act, err)
	}
	if n, err := c.Teerex.Keeper.CountActiveOf(c.KV, e.m, now, 2); n != 1 || err != nil {
		t.Fatalf("count %d %v", n, err)
	}
	if _, err := c.Teerex.Keeper.Active(c.KV, carol, now); !errors.Is(err, teerex.ErrSilent) || !strings.Contains(err.Error(), "last seen") {
		t.Fatalf("carol: %v", err)
	}
	if s := listed(t, c, &e.m); len(s) != 2 {
		t.Fatalf("silent enclave unlisted: %v", s)
	}
}

func TestRemoveEnclave(t *testing.T) {
	e := newEnclave(t, "v1", false, devPKI(t))
	tests := []struct {
		name           string
		sender, target tx.Address
		want           []error
	}{
		{name: "by sudo", sender: alice, target: bob},
		{name: "by the enclave itself", sender: bob, target: bob, want: []error{teerex.ErrNotSudo}},
		{name: "by another account", sender: carol, target: bob, want: []error{teerex.ErrNotSudo}},
		{name: "unknown signer", sender: alice, target: carol, want: []error{teerex.ErrNotRegistered}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t, false, t0, strictSimGenesis(t, sim.CollateralOptions{}, e.m))
			c.at(t0.Add(time.Minute))
			wantErr(t, c.register(bob, e.evidence(t, bob, shieldingKey), shieldingKey).Err)
			r := c.call(tc.sender, teerex.MethodRemoveEnclave, teerex.RemoveEnclave{Signer: tc.target})
			if len(tc.want) > 0 {
				rejected(t, r, tc.want...)
				if _, err := c.Teerex.Keeper.Active(c.KV, bob, c.Ctx.Time); err != nil {
					t.Fatalf("refused removal changed bob: %v", err)
				}
				return
			}
			wantErr(t, r.Err)
			ev, ok := eventAttrs(r, teerex.EventRemoved)
			want := map[string]string{"signer": tc.target.String(), "mrenclave": e.m.String(), "by": tc.sender.String()}
			if !ok || !maps.Equal(ev, want) || len(r.Events) != 1 {
				t.Fatalf("events %v, want %v", r.Events, want)
			}
			if _, err := c.Teerex.Keeper.Enclave(c.KV, tc.target); !errors.Is(err, teerex.ErrNotRegistered) {
				t.Fatalf("removed enclave: %v", err)
			}
			if all, of := listed(t, c, nil), listed(t, c, &e.m); len(all) != 0 || len(of) != 0 {
				t.Fatalf("listed after removal: %v %v", all, of)
			}
			if rest := teerexState(t, c, tc.target); slices.ContainsFunc(slices.Collect(maps.Keys(rest)), func(k string) bool {
				return strings.HasPrefix(k, teerex.Name+"/x/")
			}) {
				t.Fatal("expiry index entry left behind")
			}
			// The enclave may register again (e.g. its machine is back).
			wantErr(t, c.register(bob, e.evidence(t, bob, shieldingKey), shieldingKey).Err)
		})
	}
}

// The liveness period is zero (none) or from MinLiveness to the renewal
// period, in genesis and in set_attestation_policy alike.
func TestLivenessPolicyBounds(t *testing.T) {
	renewal := uint64(teerex.DefaultRenewalPeriod / time.Second)
	tests := []struct {
		secs uint64
		ok   bool
	}{
		{0, true},
		{uint64(teerex.MinLiveness/time.Second) - 1, false},
		{uint64(teerex.MinLiveness / time.Second), true},
		{uint64(teerex.DefaultLiveness / time.Second), true},
		{renewal, true},
		{renewal + 1, false},
		{1 << 62, false},
	}
	for _, tc := range tests {
		g := devGenesis(t)
		g.Policy.LivenessSecs = tc.secs
		raw, err := json.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		err = keeper.New(nil, nil).InitGenesis(newBareContext(t, true), raw)
		if (err == nil) != tc.ok {
			t.Errorf("genesis with liveness %ds: %v, want ok %v", tc.secs, err, tc.ok)
		}

		c := newChain(t, true, t0, devGenesis(t))
		r := c.call(alice, teerex.MethodSetAttestationPolicy, teerex.SetAttestationPolicy{Policy: g.Policy})
		if !tc.ok {
			rejected(t, r, teerex.ErrInvalidPolicy)
			continue
		}
		wantErr(t, r.Err)
		ev, _ := eventAttrs(r, teerex.EventPolicySet)
		p, err := c.Teerex.Keeper.Policy(c.KV)
		if err != nil || p.LivenessSecs != tc.secs || ev["liveness_secs"] != strconv.FormatUint(tc.secs, 10) {
			t.Errorf("liveness %ds: stored %d, event %v, %v", tc.secs, p.LivenessSecs, ev, err)
		}
	}
}

// The liveness period survives genesis JSON: ProductionGenesis has
// DefaultLiveness, and a genesis written before the field existed has
// none.
func TestLivenessGenesisJSON(t *testing.T) {
	g := teerex.ProductionGenesis(types.Hash{1})
	raw, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"liveness_secs":600`)) {
		t.Fatalf("production genesis JSON without liveness_secs: %s", raw)
	}
	var back teerex.GenesisState
	if err := json.Unmarshal(raw, &back); err != nil || back.Policy.Liveness() != teerex.DefaultLiveness {
		t.Fatalf("round trip: liveness %s, %v", back.Policy.Liveness(), err)
	}
	st := newBareContext(t, false)
	if err := keeper.New(nil, nil).InitGenesis(st, raw); err != nil {
		t.Fatal(err)
	}
	if p, err := (keeper.Keeper{}).Policy(st.Store); err != nil || p.Liveness() != teerex.DefaultLiveness {
		t.Fatalf("stored liveness %s, %v", p.Liveness(), err)
	}

	old := bytes.Replace(raw, []byte(`"liveness_secs":600,`), nil, 1)
	if bytes.Equal(old, raw) {
		old = bytes.Replace(raw, []byte(`,"liveness_secs":600`), nil, 1)
	}
	if bytes.Contains(old, []byte("liveness")) {
		t.Fatalf("could not strip liveness_secs from %s", raw)
	}
	st = newBareContext(t, false)
	if err := keeper.New(nil, nil).InitGenesis(st, old); err != nil {
		t.Fatal(err)
	}
	if p, err := (keeper.Keeper{}).Policy(st.Store); err != nil || p.LivenessSecs != 0 {
		t.Fatalf("genesis without the field: liveness %d, %v", p.LivenessSecs, err)
	}
}

// eventAttrs returns the attributes of the first event of type typ.
func eventAttrs(r moduletest.Result, typ string) (map[string]string, bool) {
	for _, e := range r.Events {
		if e.Type == typ {
			m := map[string]string{}
			for _, a := range e.Attributes {
				m[a.Key] = a.Value
			}
			return m, true
		}
	}
	return nil, false
}
