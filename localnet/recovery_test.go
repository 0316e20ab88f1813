package localnet_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
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

// logBuffer collects a localnet's logs for a test to search (and passes
// them on to testLogger's destination).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if os.Getenv("LOCALNET_TEST_LOG") != "" {
		os.Stderr.Write(p)
	}
	return b.buf.Write(p)
}

func (b *logBuffer) has(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(b.buf.String(), s)
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// waitLog waits until the logs hold s.
func waitLog(ctx context.Context, t *testing.T, logs *logBuffer, s string) {
	t.Helper()
	for !logs.has(s) {
		select {
		case <-ctx.Done():
			t.Fatalf("the log never said %q", s)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestMachineLoss is issue 12's machine-loss acceptance: worker 1 of
// three, a voter of the shard's group, moves to a "new machine" (its
// simulated TEE's sealing secret changes), so its sealed keys no longer
// open. It keeps its old store aside, re-provisions a fresh enclave from
// the others, serves the same balances, and says so in its log and
// system_health; the shard goes on (the other two keep the group's quorum)
// and the fresh enclave joins the group as a new member. Three workers,
// because a group of two that loses a voter has no quorum left
// (docs/operations-recovery.md).
func TestMachineLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := &logBuffer{}
	n, err := localnet.Start(ctx, localnet.Config{Workers: 3, EnclaveBinary: bins.enclave, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	shard := types.Hash(n.Shard)
	c, err := client.New(ctx, n.NodeRPC(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ws := n.Workers()
	tcs := make([]*trusted.Client, len(ws))
	for i, w := range ws {
		if tcs[i], err = trusted.Dial(ctx, w.RPCAddr(), c, trusted.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	aliceI, bobI := incognito("machine loss alice"), incognito("machine loss bob")
	aliceA, bobA := tx.AddressOf(aliceI.Public().(ed25519.PublicKey)), tx.AddressOf(bobI.Public().(ed25519.PublicKey))
	recipient, err := shielding.Encrypt(tcs[0].ShieldingKey(), shielding.InfoShieldRecipient, aliceA[:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShieldFunds(ctx, accounts.DevKey("Alice"), shard, 1000, recipient); err != nil {
		t.Fatal(err)
	}
	transfer := func(amount, nonce uint64) {
		t.Helper()
		call, err := tcs[0].EncryptCall(aliceI, stf.Call{Transfer: &stf.Transfer{From: aliceA, To: bobA, Amount: amount}}, nonce)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Invoke(ctx, accounts.DevKey("Bob"), shard, call); err != nil {
			t.Fatal(err)
		}
	}
	transfer(300, 0)
	waitBalances(ctx, t, tcs, aliceI, bobI, 700, 300)
	// Worker 1 is a voter of the shard's group when its machine is lost.
	waitVoters(ctx, t, tcs, 3)

	old := ws[1].Identity()
	if err := ws[1].Stop(); err != nil {
		t.Fatal(err)
	}
	// An earlier move aside was cut off after enclave.json moved and
	// before the store did: the recovery finishes it under that stamp.
	const interrupted = ".unsealable-20260101T000000Z"
	if err := os.Rename(filepath.Join(ws[1].DataDir, "enclave.json"), filepath.Join(ws[1].DataDir, "enclave.json"+interrupted)); err != nil {
		t.Fatal(err)
	}
	w1, err := n.RestartWorkerSealing(ctx, 1, bytes.Repeat([]byte{0x5e}, 32))
	if err != nil {
		t.Fatal(err)
	}
	id := w1.Identity()
	if id.Signer == old.Signer {
		t.Fatal("the restarted worker kept its signer: its sealed keys opened under another sealing secret")
	}
	if id.ShieldingKey != old.ShieldingKey {
		t.Fatalf("shielding key %s after the recovery, want the shard's %s", id.ShieldingKey, old.ShieldingKey)
	}
	// The old store is kept, with the old keys, for an operator whose old
	// machine comes back; so is the old identity.
	kept, err := filepath.Glob(filepath.Join(w1.DataDir, "worker.db.unsealable-*"))
	if err != nil || len(kept) != 1 {
		t.Fatalf("kept stores %q, %v: want one", kept, err)
	}
	ks, err := store.Open(kept[0])
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ks.SealedKeys()
	ks.Close()
	if err != nil || keys == nil {
		t.Fatalf("the kept store's sealed keys: %v, %v", keys, err)
	}
	keptDir := t.TempDir()
	suffix := strings.TrimPrefix(filepath.Base(kept[0]), "worker.db")
	if suffix != interrupted {
		t.Fatalf("store kept as %s, want the interrupted move's %s", filepath.Base(kept[0]), interrupted)
	}
	if err := os.Rename(filepath.Join(w1.DataDir, "enclave.json"+suffix), filepath.Join(keptDir, "enclave.json")); err != nil {
		t.Fatalf("the old enclave.json was not kept: %v", err)
	}
	if prev, err := worker.ReadIdentity(keptDir); err != nil || prev.Signer != old.Signer {
		t.Fatalf("kept identity %+v, %v: want the lost enclave's signer %s", prev, err, old.Signer)
	}

	// Re-provisioned: the same balances, from the new enclave.
	if tcs[1], err = trusted.Dial(ctx, w1.RPCAddr(), c, trusted.Options{}); err != nil {
		t.Fatal(err)
	}
	waitBalances(ctx, t, tcs[1:2], aliceI, bobI, 700, 300)
	h, err := tcs[1].Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !containsAll(h.Warnings, "re-provisioned", "kept store") {
		t.Fatalf("health warnings %q: want the recovery reported", h.Warnings)
	}
	waitLog(ctx, t, logs, "MACHINE LOSS")
	waitLog(ctx, t, logs, "provisioned the shard's keys and state")
	// The chain lists the new enclave besides the old registration, which
	// stays until it expires.
	encls, _, err := c.EnclavesOf(ctx, shard)
	if err != nil || len(encls) != 4 {
		t.Fatalf("registrations %+v, %v: want three workers' and the lost enclave's", encls, err)
	}
	// The shard goes on: a later transfer reaches every worker; the lost
	// enclave, which keeps alive no more, falls silent after the liveness
	// period and leaves the group, where the fresh one took its place.
	transfer(100, 1)
	waitBalances(ctx, t, tcs, aliceI, bobI, 600, 400)
	oldSigner, err := tx.ParseAddress(old.Signer)
	if err != nil {
		t.Fatal(err)
	}
	waitSilent(ctx, t, c, oldSigner)
	waitVoters(ctx, t, tcs, 3)
	transfer(50, 2)
	waitBalances(ctx, t, tcs, aliceI, bobI, 550, 450)
}

// waitSilent waits until the chain no longer counts enclave signer as
// active: no keep_alive for the liveness period.
func waitSilent(ctx context.Context, t *testing.T, c *client.Client, signer tx.Address) {
	t.Helper()
	p, _, err := c.Policy(ctx)
	if err != nil || p.Liveness() == 0 {
		t.Fatalf("policy %+v, %v: want a liveness period", p, err)
	}
	for {
		reg, _, err := c.Enclave(ctx, signer)
		// Block time follows the clock here; a second's margin.
		if err == nil && time.Now().After(reg.LastSeen().Add(p.Liveness()+time.Second)) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("enclave %s: %+v, %v; want it silent", signer, reg, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// TestMachineLossTwoWorkers is the acceptance's letter: of two workers,
// the one that loses its sealing secret is re-provisioned from the other
// and serves the same balances. The lost enclave was a voter of a group of
// two, which has no quorum left: once the chain counts it silent (no
// keep_alive for the liveness period), the survivor takes the group over,
// adds the fresh enclave, and both serve direct calls again.
func TestMachineLossTwoWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := &logBuffer{}
	n, err := localnet.Start(ctx, localnet.Config{Workers: 2, EnclaveBinary: bins.enclave, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	shard := types.Hash(n.Shard)
	c, err := client.New(ctx, n.NodeRPC(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ws := n.Workers()
	tcs := make([]*trusted.Client, len(ws))
	for i, w := range ws {
		if tcs[i], err = trusted.Dial(ctx, w.RPCAddr(), c, trusted.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	aliceI, bobI := incognito("two workers alice"), incognito("two workers bob")
	aliceA, bobA := tx.AddressOf(aliceI.Public().(ed25519.PublicKey)), tx.AddressOf(bobI.Public().(ed25519.PublicKey))
	recipient, err := shielding.Encrypt(tcs[0].ShieldingKey(), shielding.InfoShieldRecipient, aliceA[:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShieldFunds(ctx, accounts.DevKey("Alice"), shard, 1000, recipient); err != nil {
		t.Fatal(err)
	}
	call, err := tcs[0].EncryptCall(aliceI, stf.Call{Transfer: &stf.Transfer{From: aliceA, To: bobA, Amount: 300}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invoke(ctx, accounts.DevKey("Bob"), shard, call); err != nil {
		t.Fatal(err)
	}
	waitBalances(ctx, t, tcs, aliceI, bobI, 700, 300)
	waitVoters(ctx, t, tcs, 2)

	if err := ws[1].Stop(); err != nil {
		t.Fatal(err)
	}
	w1, err := n.RestartWorkerSealing(ctx, 1, bytes.Repeat([]byte{0xa7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if tcs[1], err = trusted.Dial(ctx, w1.RPCAddr(), c, trusted.Options{}); err != nil {
		t.Fatal(err)
	}
	waitBalances(ctx, t, tcs, aliceI, bobI, 700, 300)
	waitLog(ctx, t, logs, "MACHINE LOSS")
	waitLog(ctx, t, logs, "taking the shard's group over")
	waitVoters(ctx, t, tcs, 2)
	// A direct call to the fresh enclave, seen on the survivor. Until the
	// group it took over has passed its first read barrier the worker
	// answers stale, and the client refuses to sign with such a nonce:
	// under load that can outlast the logs waited for above, so the call
	// waits for a fresh answer (nothing was sent before it).
	for {
		_, err := tcs[1].Transfer(ctx, aliceI, bobA, 50)
		if err == nil {
			break
		}
		if !errors.Is(err, trusted.ErrStaleAnswer) {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no fresh answer before the test's deadline: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	waitBalances(ctx, t, tcs, aliceI, bobI, 650, 350)
}

// waitVoters waits until every worker sees a group of n voters.
func waitVoters(ctx context.Context, t *testing.T, tcs []*trusted.Client, n int) {
	t.Helper()
	for i, tc := range tcs {
		for {
			h, err := tc.Health(ctx)
			if err == nil && h.Voters == n {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("worker %d: health %+v, %v; want %d voters", i, h, err, n)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// TestSingleWorkerMachineLoss: with one worker, the shard's keys exist on
// one machine only. The worker warns in its log and system_health; when
// its sealed keys no longer open, it stops with a clear error and leaves
// its store untouched, and with the old sealing secret back it starts as
// before.
func TestSingleWorkerMachineLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := &logBuffer{}
	n, err := localnet.Start(ctx, localnet.Config{Workers: 1, EnclaveBinary: bins.enclave, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	c, err := client.New(ctx, n.NodeRPC(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := n.Workers()[0]
	waitLog(ctx, t, logs, "SINGLE ENCLAVE")
	tc, err := trusted.Dial(ctx, w.RPCAddr(), c, trusted.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := tc.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Enclaves != 1 || !containsAll(h.Warnings, "single live enclave") {
		t.Fatalf("health %+v: want one enclave and the single-enclave warning", h)
	}
	before := w.Identity()
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(w.DataDir, "worker.db")
	was := storeContents(t, db)
	// Another enclave release (one more byte changes the sim measurement)
	// does not open the store either, since sealing is bound to the
	// measurement: that is an upgrade, not a machine loss.
	bin, err := os.ReadFile(bins.enclave)
	if err != nil {
		t.Fatal(err)
	}
	release2 := filepath.Join(t.TempDir(), "integritee-enclave")
	if err := os.WriteFile(release2, append(bin, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	restartRelease2 := func() error {
		_, err := n.RestartWorkerWith(ctx, 0, func(cfg *worker.Config) {
			cfg.Enclave = worker.ProcessFactory(worker.ProcessConfig{Path: release2, Args: []string{"--tee", "sim"}})
		})
		return err
	}
	if err := restartRelease2(); !errors.Is(err, worker.ErrReleaseChanged) {
		t.Fatalf("restart with another release: %v, want ErrReleaseChanged", err)
	}
	if now := storeContents(t, db); now != was {
		t.Fatalf("the store changed under another release")
	}
	// The same after a move aside that was cut off once enclave.json had
	// moved: the moved enclave.json still tells the store's release.
	ident := filepath.Join(w.DataDir, "enclave.json")
	if err := os.Rename(ident, ident+".unsealable-20260101T000000Z"); err != nil {
		t.Fatal(err)
	}
	if err := restartRelease2(); !errors.Is(err, worker.ErrReleaseChanged) {
		t.Fatalf("restart with another release after an interrupted move: %v, want ErrReleaseChanged", err)
	}
	if now := storeContents(t, db); now != was {
		t.Fatalf("the store changed under another release")
	}
	if err := os.Rename(ident+".unsealable-20260101T000000Z", ident); err != nil {
		t.Fatal(err)
	}
	_, err = n.RestartWorkerSealing(ctx, 0, bytes.Repeat([]byte{0x5e}, 32))
	if !errors.Is(err, worker.ErrSealBroken) {
		t.Fatalf("restart on another TEE: %v, want ErrSealBroken", err)
	}
	if now := storeContents(t, db); now != was {
		t.Fatalf("the store changed although no other enclave could provision the worker")
	}
	if kept, _ := filepath.Glob(db + ".unsealable-*"); len(kept) != 0 {
		t.Fatalf("stores moved aside: %q", kept)
	}
	// The old TEE is back: the worker starts as it was.
	w, err = n.RestartWorker(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Identity(); got.Signer != before.Signer {
		t.Fatalf("signer %s after the restart, want %s", got.Signer, before.Signer)
	}
	// The disk is gone: the only live registration is the worker's own
	// earlier one, so it neither waits for itself to provision it nor
	// founds the shard anew with other keys.
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	lost := w.DataDir + ".lost"
	if err := os.Rename(w.DataDir, lost); err != nil {
		t.Fatal(err)
	}
	if _, err := n.RestartWorker(ctx, 0); !errors.Is(err, worker.ErrKeysLost) {
		t.Fatalf("restart without a data directory: %v, want ErrKeysLost", err)
	}
	if err := os.RemoveAll(w.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(lost, w.DataDir); err != nil {
		t.Fatal(err)
	}
	if w, err = n.RestartWorker(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := w.Identity(); got.Signer != before.Signer {
		t.Fatalf("signer %s with the data directory back, want %s", got.Signer, before.Signer)
	}
}

// waitBalances waits until every client answers the private getters with
// alice's and bob's balances.
func waitBalances(ctx context.Context, t *testing.T, tcs []*trusted.Client, alice, bob ed25519.PrivateKey, wantA, wantB uint64) {
	t.Helper()
	for i, tc := range tcs {
		for {
			a, err1 := tc.Balance(ctx, alice)
			b, err2 := tc.Balance(ctx, bob)
			if err1 == nil && err2 == nil && a == wantA && b == wantB {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("client %d: alice %d bob %d (%v, %v), want %d %d", i, a, b, err1, err2, wantA, wantB)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

func containsAll(list []string, subs ...string) bool {
	for _, s := range subs {
		found := false
		for _, l := range list {
			found = found || strings.Contains(l, s)
		}
		if !found {
			return false
		}
	}
	return true
}

// storeContents is what a worker's store holds of its keys and state: its
// sealed keys, checkpoint and entry count.
func storeContents(t *testing.T, path string) string {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := st.SealedKeys()
	if err != nil || keys == nil {
		t.Fatalf("sealed keys %v, %v", keys, err)
	}
	cp, _, err := st.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	n, err := st.EntryCount()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x %x %x %d %x %d", keys.Signer, keys.Shielding, keys.State, cp.Height, cp.Sealed, n)
}
