package localnet_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker"
	"github.com/integritee-go/integritee/worker/store"
)

// TestTwoWorkersOneShard runs the indirect-invocation scenario on a
// localnet that grows to two workers: after the shield and the transfer,
// the second worker is provisioned the shard's keys and a state snapshot
// by the first and catches up; both then process the unshield, the chain
// pays it once and sees the same state hashes from both, and both answer
// the private getters alike.
func TestTwoWorkersOneShard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Workers: 1, EnclaveBinary: bins.enclave, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	shard := types.Hash(n.Shard)
	c, err := client.New(ctx, n.NodeRPC(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tc0, err := trusted.Dial(ctx, n.Workers()[0].RPCAddr(), c, trusted.Options{})
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := accounts.DevKey("Alice"), accounts.DevKey("Bob")
	aliceI, bobI := incognito("alice"), incognito("bob")
	aliceA := tx.AddressOf(aliceI.Public().(ed25519.PublicKey))
	bobPublic := accounts.DevAddress("Bob")
	vault := bridge.VaultAddress(shard)

	recipient, err := shielding.Encrypt(tc0.ShieldingKey(), shielding.InfoShieldRecipient, aliceA[:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShieldFunds(ctx, alice, shard, 1000, recipient); err != nil {
		t.Fatal(err)
	}
	transfer, err := tc0.EncryptCall(aliceI, stf.Call{Transfer: &stf.Transfer{From: aliceA, To: tx.AddressOf(bobI.Public().(ed25519.PublicKey)), Amount: 300}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invoke(ctx, bob, shard, transfer); err != nil {
		t.Fatal(err)
	}
	// Worker 0 holds a state now; worker 1 is provisioned its keys and a
	// snapshot of it.
	for {
		if _, err := tc0.Balance(ctx, bobI); err == nil {
			if b, _ := tc0.Balance(ctx, bobI); b == 300 {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("worker 0 did not process the transfer")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := n.AddWorker(ctx); err != nil {
		t.Fatal(err)
	}
	ws := n.Workers()
	id0, id1 := ws[0].Identity(), ws[1].Identity()
	if id0.ShieldingKey == "" || id0.ShieldingKey != id1.ShieldingKey {
		t.Fatalf("shielding keys %q and %q: want one shard key", id0.ShieldingKey, id1.ShieldingKey)
	}
	if id0.Signer == id1.Signer {
		t.Fatal("both workers have the same signer: signers must be per enclave")
	}
	// Both enclaves are registered with the same shielding key hash.
	encls, _, err := c.EnclavesOf(ctx, shard)
	if err != nil || len(encls) != 2 || encls[0].ShieldingKeyHash != encls[1].ShieldingKeyHash {
		t.Fatalf("registrations %+v, %v", encls, err)
	}
	tc1, err := trusted.Dial(ctx, ws[1].RPCAddr(), c, trusted.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tcs := []*trusted.Client{tc0, tc1}
	bobBefore, err := c.Account(ctx, bobPublic)
	if err != nil {
		t.Fatal(err)
	}
	// Encrypted with the key worker 1 hands out: both decrypt it.
	unshield, err := tc1.EncryptCall(bobI, stf.Call{Unshield: &stf.UnshieldTo{From: tx.AddressOf(bobI.Public().(ed25519.PublicKey)), Beneficiary: bobPublic, Amount: 100}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Alice pays the invoke, so Bob's public balance changes only by the
	// unshield.
	sub, err := c.Invoke(ctx, alice, shard, unshield)
	if err != nil {
		t.Fatal(err)
	}

	// Both enclaves confirm past the unshield (so both produced and
	// submitted it), and a few blocks later nothing was paid twice.
	target := uint64(sub.Height + 3)
	signers := []tx.Address{ws[0].Signer(), ws[1].Signer()}
	var (
		st    *client.ShardStatus
		confs map[tx.Address]bridge.Confirmation
	)
	for {
		if st, err = c.Shard(ctx, shard); err != nil {
			t.Fatal(err)
		}
		if confs, err = c.Confirmations(ctx, shard, signers, st.Height); err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, conf := range confs {
			if conf.Height >= target {
				done++
			}
		}
		if done == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("both workers did not confirm height %d: %+v", target, confs)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if st.Shard.Divergences != 0 {
		t.Fatalf("the chain recorded %d divergences (last at %d)", st.Shard.Divergences, st.Shard.LastDivergence)
	}
	// Every confirmation of both enclaves agreed with the first one of its
	// height (no divergence above), and the first ones are there.
	for h := uint64(sub.Height); h <= target; h++ {
		if first, _, err := c.ConfirmedBlock(ctx, shard, h); err != nil || first == nil {
			t.Fatalf("no confirmation of height %d: %v", h, err)
		}
	}
	if got := st.VaultBalance; got != 900 {
		t.Fatalf("vault holds %d, want 900", got)
	}
	bobAfter, err := c.Account(ctx, bobPublic)
	if err != nil {
		t.Fatal(err)
	}
	if got := bobAfter.Balance - bobBefore.Balance; got != 100 {
		t.Fatalf("Bob received %d, want 100 (paid once although both workers submit it)", got)
	}
	vb, err := c.Account(ctx, vault)
	if err != nil || vb.Balance != 900 {
		t.Fatalf("vault account %+v, %v", vb, err)
	}

	// Both workers answer the private getters alike.
	for i, tc := range tcs {
		a, err1 := tc.Balance(ctx, aliceI)
		b, err2 := tc.Balance(ctx, bobI)
		if err1 != nil || err2 != nil || a != 700 || b != 200 {
			t.Fatalf("worker %d: alice %d bob %d (%v, %v), want 700 200", i, a, b, err1, err2)
		}
	}
	if a, b := confs[signers[0]], confs[signers[1]]; a.Height == b.Height && a.StateHash != b.StateHash {
		t.Fatalf("height %d: state hashes %s and %s", a.Height, a.StateHash, b.StateHash)
	}
}

func incognito(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("provisioning test incognito " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// TestLocalnetTwoWorkers is `integritee-cli localnet --workers 2`: the
// second worker is provisioned by the first at start, before any state
// exists, and both are registered with one shielding key.
func TestLocalnetTwoWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Workers: 2, EnclaveBinary: bins.enclave, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	ws := n.Workers()
	id0, id1 := ws[0].Identity(), ws[1].Identity()
	if len(ws) != 2 || id0.ShieldingKey == "" || id0.ShieldingKey != id1.ShieldingKey || id0.Signer == id1.Signer {
		t.Fatalf("identities %+v and %+v", id0, id1)
	}
	c, err := client.New(ctx, n.NodeRPC(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	encls, _, err := c.EnclavesOf(ctx, types.Hash(n.Shard))
	if err != nil || len(encls) != 2 {
		t.Fatalf("registrations %+v, %v", encls, err)
	}
}

// records keeps log messages with their attributes, for assertions.
type records struct {
	mu  sync.Mutex
	out []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	r.mu.Lock()
	r.out = append(r.out, b.String())
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) find(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.out {
		if strings.Contains(m, s) {
			return m
		}
	}
	return ""
}

// TestProvisioningRefusesOtherMeasurement: a worker whose enclave binary
// differs (another MRENCLAVE) does not get the shard's keys from the
// shard's worker: its enclave refuses the provider (and the provider
// would refuse it), so it keeps retrying and never creates or stores keys.
func TestProvisioningRefusesOtherMeasurement(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Workers: 1, EnclaveBinary: bins.enclave, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	// Another build: one more byte changes the sim measurement.
	bin, err := os.ReadFile(bins.enclave)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "integritee-enclave")
	if err := os.WriteFile(other, append(bin, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	logs := &records{}
	dataDir := filepath.Join(t.TempDir(), "impostor")
	wc := worker.Config{
		NodeRPC: n.NodeRPC(), DataDir: dataDir, Shard: n.Shard, RPCListen: "127.0.0.1:0",
		Fund:      worker.DevFunder(n.NodeRPC(), accounts.DevKey("Alice"), localnet.WorkerFunding),
		Provision: worker.ProvisionConfig{From: []string{n.Workers()[0].RPCAddr()}},
		Logger:    slog.New(logs),
		Enclave:   worker.ProcessFactory(worker.ProcessConfig{Path: other, Args: []string{"--tee", "sim"}}),
	}
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := n.StartWorker(sctx, wc)
		done <- err
	}()
	for logs.find("provisioning failed") == "" {
		select {
		case err := <-done:
			t.Fatalf("worker with another MRENCLAVE started: %v", err)
		case <-ctx.Done():
			t.Fatal("no provisioning attempt")
		case <-time.After(100 * time.Millisecond):
		}
	}
	scancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("StartWorker = %v, want context.Canceled", err)
	}
	if m := logs.find("provisioning failed"); !strings.Contains(m, "MRENCLAVE not allowed") {
		t.Fatalf("provisioning failure %q, want the peer's MRENCLAVE refused", m)
	}
	st, err := store.Open(filepath.Join(dataDir, "worker.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if k, err := st.SealedKeys(); err != nil || k != nil {
		t.Fatalf("keys stored after a refused provisioning: %v %v", k, err)
	}
	if _, ok, err := st.Checkpoint(); err != nil || ok {
		t.Fatalf("checkpoint stored after a refused provisioning: %v %v", ok, err)
	}
}
