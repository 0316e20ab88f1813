package localnet_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/localnet"
)

// bins holds the enclave and worker executables, built once.
var bins struct{ enclave, worker string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "localnet-bins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := context.Background()
	if bins.enclave, err = localnet.BuildEnclave(ctx, dir); err == nil {
		bins.worker, err = localnet.Build(ctx, dir, "github.com/integritee-go/integritee/cmd/integritee-worker", "integritee-worker")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func testLogger() *slog.Logger {
	if os.Getenv("LOCALNET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// shardClient is a user's view of one shard: the chain client and the
// worker's RPC through the SDK, which accepts the worker's shielding key
// only as the chain recorded it for the worker's enclave.
type shardClient struct {
	t      *testing.T
	c      *client.Client
	tc     *trusted.Client
	shard  [32]byte
	pub    []byte
	params accounts.Params
}

func newShardClient(t *testing.T, ctx context.Context, nodeRPC, workerRPC string, shard [32]byte) *shardClient {
	t.Helper()
	c, err := client.New(ctx, nodeRPC, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := trusted.Dial(ctx, workerRPC, c, trusted.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tc.Shard() != shard {
		t.Fatalf("worker serves shard %x, want %x", tc.Shard(), shard)
	}
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &shardClient{t: t, c: c, tc: tc, shard: shard, pub: tc.ShieldingKey(), params: params}
}

func addr(k ed25519.PrivateKey) tx.Address { return tx.AddressOf(k.Public().(ed25519.PublicKey)) }

func ab(k ed25519.PrivateKey) []byte { a := addr(k); return a[:] }

// target is what calls are signed for: the chain the client verified,
// the enclave measurement mrenclave and shard.
func (s *shardClient) target(mrenclave, shard [32]byte) stf.Target {
	return stf.Target{Genesis: s.tc.Genesis(), MRENCLAVE: mrenclave, Shard: shard}
}

// trustedCall signs call for (mrenclave, shard) of the client's chain and
// returns the signed plaintext and its encryption to the shielding key.
func (s *shardClient) trustedCall(key ed25519.PrivateKey, call stf.Call, nonce uint64, mrenclave, shard [32]byte) (plain, ct []byte) {
	s.t.Helper()
	enc, err := stf.EncodeCall(call)
	if err != nil {
		s.t.Fatal(err)
	}
	if plain, err = stf.SignCall(key, enc, nonce, s.target(mrenclave, shard)); err != nil {
		s.t.Fatal(err)
	}
	if ct, err = shielding.Encrypt(s.pub, shielding.InfoTrustedCall, plain); err != nil {
		s.t.Fatal(err)
	}
	return plain, ct
}

// send broadcasts a bridge call of from with an explicit nonce and
// returns its hash.
func (s *shardClient) send(ctx context.Context, from ed25519.PrivateKey, nonce uint64, method string, args any) [32]byte {
	s.t.Helper()
	call, err := tx.NewCall(bridge.Name, method, args)
	if err != nil {
		s.t.Fatal(err)
	}
	wire, err := s.c.BuildMinFee(from, nonce, s.params, call)
	if err != nil {
		s.t.Fatal(err)
	}
	h, err := s.c.Broadcast(ctx, wire)
	if err != nil {
		s.t.Fatalf("broadcast %s: %v", method, err)
	}
	return h
}

// included waits for a transaction and returns its height and exact fee,
// checking that the fee is the minimum for its size.
func (s *shardClient) included(ctx context.Context, h [32]byte) (int64, uint64) {
	s.t.Helper()
	res, err := s.c.WaitTx(ctx, h)
	if err != nil {
		s.t.Fatal(err)
	}
	raw, err := s.c.RPC().Tx(ctx, h[:], false)
	if err != nil {
		s.t.Fatal(err)
	}
	stx, err := tx.Decode(raw.Tx)
	if err != nil {
		s.t.Fatal(err)
	}
	if want := s.params.MinFee(len(raw.Tx)); stx.Body.Fee != want {
		s.t.Fatalf("fee %d, minimum %d", stx.Body.Fee, want)
	}
	return res.Height, stx.Body.Fee
}

// balance runs the private balance getter of key's own account through the
// worker, encrypted both ways.
func (s *shardClient) balance(ctx context.Context, key ed25519.PrivateKey) uint64 {
	s.t.Helper()
	v, err := s.tc.Balance(ctx, key)
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}

func (s *shardClient) nonce(ctx context.Context, key ed25519.PrivateKey) uint64 {
	s.t.Helper()
	v, err := s.tc.Nonce(ctx, key)
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}

// health returns the worker's processed height and state root.
func (s *shardClient) health(ctx context.Context) (int64, [32]byte, error) {
	h, err := s.tc.Health(ctx)
	if err != nil {
		return 0, [32]byte{}, err
	}
	root, err := hex.DecodeString(h.StateRoot)
	if err != nil || len(root) != 32 {
		return 0, [32]byte{}, fmt.Errorf("health state root %q: %v", h.StateRoot, err)
	}
	return h.Height, [32]byte(root), nil
}

func (s *shardClient) public(ctx context.Context, a tx.Address) uint64 {
	s.t.Helper()
	acc, err := s.c.Account(ctx, a)
	if err != nil {
		s.t.Fatal(err)
	}
	return acc.Balance
}

// synced waits until the worker has processed height h and the chain
// holds its confirmation of a height at or above h; it returns the
// worker's state root.
func (s *shardClient) synced(ctx context.Context, h int64) [32]byte {
	s.t.Helper()
	for {
		height, root, err := s.health(ctx)
		if err == nil && height >= h {
			sh, err := s.c.Shard(ctx, s.shard)
			if err == nil && sh.Shard.Latest != nil && int64(sh.Shard.Latest.Height) >= h {
				return root
			}
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("worker did not sync to %d: %v", h, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// confirmedRoot returns the state hash of the shard's latest confirmation.
func (s *shardClient) confirmedRoot(ctx context.Context) [32]byte {
	s.t.Helper()
	sh, err := s.c.Shard(ctx, s.shard)
	if err != nil {
		s.t.Fatal(err)
	}
	if sh.Shard.Divergences != 0 {
		s.t.Errorf("shard records %d divergences", sh.Shard.Divergences)
	}
	return sh.Shard.Latest.StateHash
}

var (
	alice, bob          = accounts.DevKey("Alice"), accounts.DevKey("Bob")
	aliceInc, bobInc    = accounts.DevKey("Alice//incognito"), accounts.DevKey("Bob//incognito")
	charlie             = accounts.DevKey("Charlie")
	charlieInc, daveInc = accounts.DevKey("Charlie//incognito"), accounts.DevKey("Dave//incognito")
)

// TestIndirectInvocation is the acceptance scenario of issue 4 on a
// localnet with one worker: Alice shields 1,000 into the shard, transfers
// 300 confidentially to Bob's incognito account, Bob unshields 100 to his
// public account.
func TestIndirectInvocation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net, err := localnet.Start(ctx, localnet.Config{EnclaveBinary: bins.enclave, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	w := net.Workers()[0]
	s := newShardClient(t, ctx, net.NodeRPC(), w.RPCAddr(), net.Shard)
	shard := net.Shard
	vault := bridge.VaultAddress(shard)
	aliceBefore, bobBefore := s.public(ctx, addr(alice)), s.public(ctx, addr(bob))
	if v := s.public(ctx, vault); v != 0 {
		t.Fatalf("vault holds %d before any shield", v)
	}

	// Alice shields 1,000 to her incognito account.
	recipient, err := shielding.Encrypt(s.pub, shielding.InfoShieldRecipient, ab(aliceInc))
	if err != nil {
		t.Fatal(err)
	}
	aliceNonce := mustAccount(t, ctx, s.c, addr(alice)).Nonce
	hShield := s.send(ctx, alice, aliceNonce, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 1000, EncryptedRecipient: recipient})
	// ... transfers 300 to Bob's incognito account ...
	transferPlain, transferCT := s.trustedCall(aliceInc, stf.Call{Transfer: &stf.Transfer{From: addr(aliceInc), To: addr(bobInc), Amount: 300}}, 0, shard, shard)
	hTransfer := s.send(ctx, alice, aliceNonce+1, bridge.MethodInvoke, bridge.Invoke{Shard: shard, Ciphertext: transferCT})
	_, feeShield := s.included(ctx, hShield)
	_, feeTransfer := s.included(ctx, hTransfer)
	// ... and Bob unshields 100 to his public account.
	unshieldPlain, unshieldCT := s.trustedCall(bobInc, stf.Call{Unshield: &stf.UnshieldTo{From: addr(bobInc), Beneficiary: addr(bob), Amount: 100}}, 0, shard, shard)
	bobNonce := mustAccount(t, ctx, s.c, addr(bob)).Nonce
	hUnshield := s.send(ctx, bob, bobNonce, bridge.MethodInvoke, bridge.Invoke{Shard: shard, Ciphertext: unshieldCT})
	unshieldHeight, feeUnshield := s.included(ctx, hUnshield)

	root := s.synced(ctx, unshieldHeight)
	for s.public(ctx, addr(bob)) != bobBefore-feeUnshield+100 {
		select {
		case <-ctx.Done():
			t.Fatalf("Bob's unshield never paid: balance %d, want %d", s.public(ctx, addr(bob)), bobBefore-feeUnshield+100)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if got, want := s.public(ctx, addr(alice)), aliceBefore-1000-feeShield-feeTransfer; got != want {
		t.Errorf("Alice public %d, want %d (before %d - 1000 - fees %d + %d)", got, want, aliceBefore, feeShield, feeTransfer)
	}
	if got := s.public(ctx, vault); got != 900 {
		t.Errorf("vault holds %d, want 900", got)
	}
	if got := s.balance(ctx, aliceInc); got != 700 {
		t.Errorf("Alice incognito %d, want 700", got)
	}
	if got := s.balance(ctx, bobInc); got != 200 {
		t.Errorf("Bob incognito %d, want 200", got)
	}
	if got := s.confirmedRoot(ctx); got != root {
		t.Errorf("confirmed state hash %x, enclave's %x", got, root)
	}
	info, err := w.StateInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.StateRoot != root {
		t.Errorf("enclave state root %x, health says %x", info.StateRoot, root)
	}

	// Replays, calls for another shard or enclave, and garbage change
	// nothing.
	otherShard := sha256.Sum256([]byte("other shard"))
	_, freshReplay := s.trustedCall(aliceInc, stf.Call{Transfer: &stf.Transfer{From: addr(aliceInc), To: addr(bobInc), Amount: 300}}, 0, shard, shard)
	_, wrongShard := s.trustedCall(aliceInc, stf.Call{Transfer: &stf.Transfer{From: addr(aliceInc), To: addr(bobInc), Amount: 1}}, 1, shard, otherShard)
	_, wrongEnclave := s.trustedCall(aliceInc, stf.Call{Transfer: &stf.Transfer{From: addr(aliceInc), To: addr(bobInc), Amount: 1}}, 1, otherShard, shard)
	garbage := make([]byte, len(transferCT))
	rand.Read(garbage)
	bad := [][]byte{transferCT, freshReplay, unshieldCT, wrongShard, wrongEnclave, garbage, garbage[:10]}
	aliceNonce += 2
	for _, ct := range bad {
		s.send(ctx, alice, aliceNonce, bridge.MethodInvoke, bridge.Invoke{Shard: shard, Ciphertext: ct})
		aliceNonce++
	}
	// A valid call for another shard is not this shard's business (and,
	// as the last of the nonce sequence, lands after all the others).
	last := s.send(ctx, alice, aliceNonce, bridge.MethodInvoke, bridge.Invoke{Shard: otherShard, Ciphertext: wrongShard})
	h, _ := s.included(ctx, last)
	if got := s.synced(ctx, h); got != root {
		t.Errorf("state root changed from %x to %x by rejected calls", root, got)
	}
	if a, b, n := s.balance(ctx, aliceInc), s.balance(ctx, bobInc), s.nonce(ctx, aliceInc); a != 700 || b != 200 || n != 1 {
		t.Errorf("after rejected calls: Alice %d Bob %d nonce %d, want 700 200 1", a, b, n)
	}
	if got := s.public(ctx, vault); got != 900 {
		t.Errorf("vault holds %d after replays, want 900", got)
	}

	// The chain never saw a plaintext call nor an incognito account.
	latest, err := s.c.RPC().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{
		"transfer plaintext": transferPlain, "unshield plaintext": unshieldPlain,
		"Alice incognito": ab(aliceInc), "Bob incognito": ab(bobInc),
	}
	txs := 0
	for hgt := int64(1); hgt <= latest.SyncInfo.LatestBlockHeight; hgt++ {
		b, err := s.c.RPC().Block(ctx, &hgt)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range b.Block.Txs {
			txs++
			for what, secret := range secrets {
				if bytes.Contains(raw, secret) {
					t.Errorf("block %d carries the %s", hgt, what)
				}
			}
		}
	}
	if txs < 10 {
		t.Errorf("scanned only %d transactions", txs)
	}
}

func mustAccount(t *testing.T, ctx context.Context, c *client.Client, a tx.Address) accounts.Account {
	t.Helper()
	acc, err := c.Account(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

// workerProcess is integritee-worker running as a child process.
type workerProcess struct {
	cmd  *exec.Cmd
	logs string
}

func startWorkerProcess(t *testing.T, nodeRPC, dataDir, rpcAddr string, run int) *workerProcess {
	t.Helper()
	logs := fmt.Sprintf("%s-%d.log", dataDir, run)
	f, err := os.Create(logs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bins.worker, "--node", nodeRPC, "--enclave", bins.enclave, "--data", dataDir,
		"--rpc", rpcAddr, "--dev", "--log-level", "info")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &workerProcess{cmd: cmd, logs: logs}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

func (p *workerProcess) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
}

// interrupt stops the worker as Ctrl-C does and expects a clean exit.
func (p *workerProcess) interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			b, _ := os.ReadFile(p.logs)
			t.Errorf("worker exit after SIGINT: %v\n%s", err, tail(b))
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Error("worker did not stop within 30s of SIGINT")
	}
}

func tail(b []byte) []byte {
	if len(b) > 4000 {
		return b[len(b)-4000:]
	}
	return b
}

// waitShardClient waits until the worker at workerRPC serves and its
// enclave is registered on chain.
func waitShardClient(t *testing.T, ctx context.Context, p *workerProcess, nodeRPC, workerRPC string, shard [32]byte) *shardClient {
	t.Helper()
	c, err := client.New(ctx, nodeRPC, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		// Dial succeeds once the worker serves (it is ready) and its
		// enclave is registered.
		if _, err := trusted.Dial(ctx, workerRPC, c, trusted.Options{}); err == nil {
			return newShardClient(t, ctx, nodeRPC, workerRPC, shard)
		}
		select {
		case <-ctx.Done():
			b, _ := os.ReadFile(p.logs)
			t.Fatalf("worker never became ready: %v\n%s", ctx.Err(), tail(b))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestKillWorker kills the worker process with SIGKILL in the middle of a
// stream of 200 indirect calls and restarts it: the final state is exactly
// that of an uninterrupted run (every call applied once, in order).
func TestKillWorker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	net, err := localnet.Start(ctx, localnet.Config{EnclaveBinary: bins.enclave, NoWorkers: true, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	data := filepath.Join(t.TempDir(), "worker")
	rpcAddr, err := localnet.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	p := startWorkerProcess(t, net.NodeRPC(), data, rpcAddr, 0)
	s := waitShardClient(t, ctx, p, net.NodeRPC(), "http://"+rpcAddr, net.Shard)
	shard := net.Shard

	const shielded, calls, perRound = 10_000, 200, 10
	recipient, err := shielding.Encrypt(s.pub, shielding.InfoShieldRecipient, ab(charlieInc))
	if err != nil {
		t.Fatal(err)
	}
	nonce := mustAccount(t, ctx, s.c, addr(charlie)).Nonce
	s.included(ctx, s.send(ctx, charlie, nonce, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: shielded, EncryptedRecipient: recipient}))
	nonce++

	var sent uint64
	var last [32]byte
	for i := range calls {
		amount := uint64(i%5 + 1)
		sent += amount
		_, ct := s.trustedCall(charlieInc, stf.Call{Transfer: &stf.Transfer{From: addr(charlieInc), To: addr(daveInc), Amount: amount}}, uint64(i), shard, shard)
		last = s.send(ctx, charlie, nonce, bridge.MethodInvoke, bridge.Invoke{Shard: shard, Ciphertext: ct})
		nonce++
		if (i+1)%perRound != 0 {
			continue
		}
		h, _ := s.included(ctx, last)
		switch i + 1 {
		case 6 * perRound:
			// Kill while the worker is processing the stream.
			s.synced(ctx, h-1)
			p.kill9(t)
		case 12 * perRound:
			p = startWorkerProcess(t, net.NodeRPC(), data, rpcAddr, 1)
			waitShardClient(t, ctx, p, net.NodeRPC(), "http://"+rpcAddr, shard)
		case 16 * perRound:
			// And once more, right away.
			p.kill9(t)
			p = startWorkerProcess(t, net.NodeRPC(), data, rpcAddr, 2)
			waitShardClient(t, ctx, p, net.NodeRPC(), "http://"+rpcAddr, shard)
		}
	}
	h, _ := s.included(ctx, last)
	root := s.synced(ctx, h)
	if got, want := s.balance(ctx, charlieInc), uint64(shielded)-sent; got != want {
		t.Errorf("Charlie incognito %d, want %d", got, want)
	}
	if got := s.balance(ctx, daveInc); got != sent {
		t.Errorf("Dave incognito %d, want %d", got, sent)
	}
	if got := s.nonce(ctx, charlieInc); got != calls {
		t.Errorf("Charlie incognito nonce %d, want %d: calls skipped or repeated", got, calls)
	}
	if got := s.confirmedRoot(ctx); got != root {
		t.Errorf("confirmed state hash %x, enclave's %x", got, root)
	}
	if got := s.public(ctx, bridge.VaultAddress(shard)); got != shielded {
		t.Errorf("vault %d, want %d", got, shielded)
	}
	p.interrupt(t)
	for run := 1; run <= 2; run++ {
		b, err := os.ReadFile(fmt.Sprintf("%s-%d.log", data, run))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("enclave restored")) {
			t.Errorf("run %d did not restore the enclave from the store:\n%s", run, tail(b))
		}
	}
}
