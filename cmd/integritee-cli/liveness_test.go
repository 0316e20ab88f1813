package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/types"
)

// The CLI judges an enclave by the chain's rule: under a liveness period,
// one seen neither registering nor keeping alive within it is "silent",
// and every view shows when it was last seen.
func TestJudgeLiveness(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	withLiveness := teerex.Policy{RenewalPeriodSecs: 86400, LivenessSecs: 60, AllowAnyMRENCLAVE: true}
	without := withLiveness
	without.LivenessSecs = 0
	enclave := func(aliveAt time.Duration) teerex.Enclave {
		e := teerex.Enclave{Signer: accounts.DevAddress("Dave"), MRENCLAVE: types.Hash{1}, AttestedAt: t0.UnixNano(), WorkerURL: "wss://w:1"}
		if aliveAt > 0 {
			e.AliveAt = t0.Add(aliveAt).UnixNano()
		}
		return e
	}
	tests := []struct {
		name     string
		p        teerex.Policy
		aliveAt  time.Duration // after the registration; 0: none
		now      time.Duration
		status   string
		lastSeen time.Duration
	}{
		{name: "registered", p: withLiveness, now: time.Minute, status: "active"},
		{name: "silent after the registration", p: withLiveness, now: time.Minute + time.Nanosecond, status: "silent"},
		{name: "kept alive", p: withLiveness, aliveAt: 50 * time.Second, now: 110 * time.Second, status: "active", lastSeen: 50 * time.Second},
		{name: "silent after a keep_alive", p: withLiveness, aliveAt: 50 * time.Second, now: 111 * time.Second, status: "silent", lastSeen: 50 * time.Second},
		{name: "expired wins", p: withLiveness, now: 25 * time.Hour, status: "expired"},
		{name: "no liveness period", p: without, now: 23 * time.Hour, status: "active"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := judge(enclave(tc.aliveAt), &tc.p, nil, t0.Add(tc.now))
			if v.Status != tc.status || !v.LastSeen.Equal(t0.Add(tc.lastSeen)) {
				t.Fatalf("status %q last seen %s, want %q %s", v.Status, v.LastSeen, tc.status, t0.Add(tc.lastSeen))
			}
			if (v.SilentAfter != nil) != (tc.p.LivenessSecs > 0) ||
				v.SilentAfter != nil && !v.SilentAfter.Equal(t0.Add(tc.lastSeen+time.Minute)) {
				t.Fatalf("silent after %v", v.SilentAfter)
			}
		})
	}

	// The text views show it.
	p := withLiveness
	silent := judge(enclave(50*time.Second), &p, nil, t0.Add(time.Hour))
	active := judge(enclave(0), &p, nil, t0.Add(time.Second))
	active.Signer = accounts.DevAddress("Eve")
	seen := t0.Add(50 * time.Second).Format(time.RFC3339)
	var list bytes.Buffer
	if err := writeEnclaveList(&list, []enclaveView{silent, active}, 7); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list.String(), "LAST SEEN") || !strings.Contains(list.String(), "silent  "+seen) {
		t.Fatalf("enclaves list:\n%s", list.String())
	}
	var st bytes.Buffer
	if err := writeStatus(&st, &statusReport{Time: t0, Enclaves: []enclaveView{silent, active}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.String(), "2 registered, 1 active") || !strings.Contains(st.String(), "silent  "+seen) {
		t.Fatalf("status:\n%s", st.String())
	}
	w := shardWarnings([]enclaveView{silent, active}, nil)
	if len(w) != 2 || !strings.Contains(w[0], "is silent (last seen "+seen) || !strings.Contains(w[0], "remove-enclave") || w[1] != singleEnclaveWarning {
		t.Fatalf("shard warnings %q", w)
	}
}
