package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// TestStatusCommand runs `status` against a localnet with two workers:
// the JSON report decodes with the node, both enclaves, the shard with its
// vault balance and both enclaves' confirmations, agreeing, and both
// workers up at their registered URLs; the text shows the same key lines;
// a stopped worker shows as down without failing the command; --watch
// refreshes until interrupted.
func TestStatusCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	enclave, err := localnet.BuildEnclave(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	net, err := localnet.Start(ctx, localnet.Config{Workers: 2, EnclaveBinary: enclave})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	node := net.NodeRPC()
	shard := types.Hash(net.Shard)

	// A shield changes the shard's state, which both enclaves confirm.
	var res trustedResult
	cliJSONAt(t, time.Now, &res, "trusted", "shield", "--from", "Alice", "--amount", "1000", "--to", "Alice//incognito",
		"--node", node, "--worker", net.Workers()[0].RPCAddr(), "--keystore", t.TempDir())
	var r statusReport
	for {
		r = statusReport{}
		cliJSONAt(t, time.Now, &r, "status", "--node", node)
		if len(r.Shards) == 1 && len(r.Shards[0].Confirmations) == 2 &&
			r.Shards[0].Confirmations[0].Height >= uint64(res.Height) && r.Shards[0].Confirmations[1].Height >= uint64(res.Height) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no confirmation of height %d by both enclaves: %+v", res.Height, r.Shards)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if r.Node.URL != node || r.Node.ChainID != net.ChainID || r.Node.Height < res.Height || r.Height < res.Height || r.Node.BlockTime.IsZero() {
		t.Errorf("node %+v at proved height %d, shield at %d", r.Node, r.Height, res.Height)
	}
	if len(r.Enclaves) != 2 {
		t.Fatalf("%d enclaves, want 2", len(r.Enclaves))
	}
	urls := map[tx.Address]string{}
	for _, w := range net.Workers() {
		a, err := tx.ParseAddress(w.Identity().Signer)
		if err != nil {
			t.Fatal(err)
		}
		urls[a] = w.RPCAddr()
	}
	for _, v := range r.Enclaves {
		if v.Status != "active" || v.MRENCLAVE != shard || v.TCBStatus == "" || !v.ExpiresAt.After(time.Now()) || v.WorkerURL != urls[v.Signer] {
			t.Errorf("enclave %+v", v)
		}
	}
	s := r.Shards[0]
	if s.ID != shard || s.Serving != shard || s.VaultBalance != 1000 || s.Vault != bridge.VaultAddress(shard) ||
		s.Enclaves != 2 || s.Active != 2 || s.WorkersUp != 2 || !s.Agree || len(s.Disagreements) != 0 || s.Latest == nil {
		t.Errorf("shard %+v", s)
	}
	if len(r.Workers) != 2 {
		t.Fatalf("%d workers, want 2", len(r.Workers))
	}
	for _, w := range r.Workers {
		if !w.Up || !w.Matches || w.Error != "" || w.URL != urls[w.Enclave] || w.Shard == nil || *w.Shard != shard ||
			w.Health == nil || w.Health.Height < res.Height || w.Version == "" {
			t.Errorf("worker %+v", w)
		}
	}
	if r.Workers[0].Health != nil && r.Workers[1].Health != nil {
		lo, hi := r.Workers[0].Health.ShardBlock, r.Workers[1].Health.ShardBlock
		if b := s.ShardBlocks; b == nil || b.Min != min(lo, hi) || b.Max != max(lo, hi) {
			t.Errorf("shard blocks %+v, workers report %d and %d", b, lo, hi)
		}
	}

	code, text, errOut := runCLIAt(t, time.Now, nil, "status", "--node", node)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	t.Logf("status:\n%s", text)
	for _, want := range []string{
		"node      " + node + "  chain " + net.ChainID + "  height ",
		"enclaves  2 registered, 2 active (proved at height ",
		"shard " + shard.String() + "\n",
		"  vault balance   1000 (0.000000001 TEER)",
		"  agree           yes\n",
		"  sidechain       ",
		"  ENCLAVE ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in the text", want)
		}
	}
	for _, w := range net.Workers() {
		if !strings.Contains(text, w.RPCAddr()+"  up  ") {
			t.Errorf("worker %s not up in the text", w.RPCAddr())
		}
	}

	// --shard names the shards to show: one without a record is served by
	// the measurement equal to its ID, which has no enclaves here.
	other := types.Hash{0xab}
	var only statusReport
	cliJSONAt(t, time.Now, &only, "status", "--node", node, "--shard", other.String())
	if len(only.Shards) != 1 || only.Shards[0].ID != other || only.Shards[0].Recorded || only.Shards[0].Serving != other ||
		only.Shards[0].Enclaves != 0 || only.Shards[0].WorkersUp != 0 || len(only.Workers) != 2 {
		t.Errorf("status --shard %s: %+v", other, only.Shards)
	}
	cliFailsAt(t, time.Now, "--shard", "status", "--node", node, "--shard", "xyz")

	// A worker that is down shows as down; the command still succeeds.
	down := net.Workers()[1]
	if err := down.Stop(); err != nil {
		t.Fatal(err)
	}
	r = statusReport{}
	cliJSONAt(t, time.Now, &r, "status", "--node", node, "--worker-timeout", "2s")
	for _, w := range r.Workers {
		if isDown := w.URL == down.RPCAddr(); w.Up == isDown || isDown && (w.Error == "" || w.Health != nil) {
			t.Errorf("after stopping %s: worker %+v", down.RPCAddr(), w)
		}
	}
	if s := r.Shards[0]; s.WorkersUp != 1 || !s.Agree {
		t.Errorf("shard with one worker down: %+v", s)
	}
	code, text, errOut = runCLIAt(t, time.Now, nil, "status", "--node", node, "--worker-timeout", "2s")
	t.Logf("status with a worker down:\n%s", text)
	if code != 0 || !strings.Contains(text, down.RPCAddr()+"  DOWN") {
		t.Errorf("status with a worker down: exit %d: %s\n%s", code, errOut, text)
	}

	// --watch: one report per refresh until interrupted, then exit 0.
	wctx, stop := context.WithCancel(ctx)
	var out lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(wctx, []string{"status", "--node", node, "--json", "--watch", "--interval", "50ms", "--worker-timeout", "2s"},
			&env{stdout: &out, stderr: io.Discard, now: time.Now, trustDir: t.TempDir()})
	}()
	var heights []int64
	for len(heights) < 2 {
		select {
		case code := <-done:
			stop()
			t.Fatalf("watch ended with %d:\n%s", code, out.String())
		case <-ctx.Done():
			stop()
			t.Fatalf("watch gave %d reports:\n%s", len(heights), out.String())
		case <-time.After(100 * time.Millisecond):
		}
		heights = heights[:0]
		dec := json.NewDecoder(strings.NewReader(out.String()))
		for {
			var wr statusReport
			if dec.Decode(&wr) != nil {
				break
			}
			if wr.Node.Height == 0 || len(wr.Workers) != 2 {
				t.Fatalf("watched report %+v", wr)
			}
			heights = append(heights, wr.Node.Height)
		}
	}
	stop()
	if code := <-done; code != 0 {
		t.Errorf("interrupted watch: exit %d", code)
	}
}

// TestDisagreements: the shard's enclaves and workers agree unless the
// chain counted a divergence, two enclaves confirmed one height with
// different states, or two workers report different states after the same
// chain block and shard block.
func TestDisagreements(t *testing.T) {
	a, b := tx.Address{1}, tx.Address{2}
	conf := func(e tx.Address, h uint64, state byte) bridge.Confirmation {
		return bridge.Confirmation{Enclave: e, Height: h, StateHash: types.Hash{state}}
	}
	wk := func(e tx.Address, h int64, block uint64, root string) workerStatus {
		return workerStatus{Enclave: e, Up: true, Health: &api.HealthResult{Height: h, ShardBlock: block, StateRoot: root}}
	}
	for _, tc := range []struct {
		name string
		s    shardStatus
		ws   []workerStatus
		want string // in the one disagreement; "" for none
	}{
		{"same", shardStatus{Confirmations: []bridge.Confirmation{conf(a, 5, 1), conf(b, 5, 1)}}, []workerStatus{wk(a, 7, 2, "aa"), wk(b, 7, 2, "aa")}, ""},
		{"different heights", shardStatus{Confirmations: []bridge.Confirmation{conf(a, 5, 1), conf(b, 6, 2)}}, []workerStatus{wk(a, 7, 2, "aa"), wk(b, 8, 2, "bb"), wk(b, 7, 3, "cc")}, ""},
		{"divergence counted", shardStatus{Divergences: 2, LastDivergence: 9}, nil, "2 heights with differing confirmations, the last 9"},
		{"confirmed states differ", shardStatus{Confirmations: []bridge.Confirmation{conf(a, 5, 1), conf(b, 5, 2)}}, nil, "confirmed height 5 with states"},
		{"reported states differ", shardStatus{}, []workerStatus{wk(a, 7, 2, "aa"), wk(b, 7, 2, "bb")}, "after chain block 7 and shard block 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := disagreements(&tc.s, tc.ws)
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("disagreements %q, want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Errorf("disagreements %q, want one with %q", got, tc.want)
			}
		})
	}
}
