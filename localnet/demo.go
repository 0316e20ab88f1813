package localnet

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
)

// ErrDemo means a check of the demo failed; the error says which.
var ErrDemo = errors.New("localnet: demo check failed")

// Demo amounts, in base units.
const (
	DemoShield   = 1000
	DemoTransfer = 300
	DemoUnshield = 100
	// DemoDirect is the direct transfer made when the shard has a single
	// worker.
	DemoDirect = 50
)

// DemoTimeout bounds a whole demo run.
const DemoTimeout = 3 * time.Minute

// Demo shows the running network at work and checks every result,
// writing one line per step to out: the workers' enclaves are registered
// with one shielding key; Alice shields DemoShield to Alice//incognito;
// Alice//incognito transfers DemoTransfer to Bob//incognito and
// Bob//incognito unshields DemoUnshield to Bob, both indirectly (through
// the chain); every worker's private getters give the same balances;
// Alice's and Bob's public balances changed by the amounts and the exact
// fees, the shard's vault by what stayed shielded; every enclave's latest
// confirmation on chain has the same state hash and the chain recorded no
// divergence. Then a direct transfer goes to each worker's JSON-RPC in
// turn: executed in a shard block, shown by every worker, confirmed on
// chain.
//
// Amounts are checked as changes, so the demo also passes on a network
// that ran it before (a reused Dir). It waits on the chain's and the
// workers' state, never for fixed times, and returns an error wrapping
// ErrDemo at the first failed check.
func (n *Net) Demo(ctx context.Context, out io.Writer) error {
	if len(n.workers) == 0 {
		return fmt.Errorf("%w: the network has no workers", ErrDemo)
	}
	ctx, cancel := context.WithTimeout(ctx, DemoTimeout)
	defer cancel()
	d := &demo{n: n, out: out, shard: types.Hash(n.Shard)}
	fmt.Fprintf(out, "demo: a validator and %s in simulated-TEE mode, shard %s\n", plural(len(n.workers), "worker"), short(n.Shard[:]))
	err := d.run(ctx)
	if err != nil {
		fmt.Fprintf(out, "demo FAILED: %v\n", err)
		return err
	}
	fmt.Fprintln(out, "demo passed")
	return nil
}

// demo is one run of Net.Demo.
type demo struct {
	n     *Net
	out   io.Writer
	shard types.Hash
	c     *client.Client
	tcs   []*trusted.Client

	alice, bob, aliceI, bobI ed25519.PrivateKey
	// Private balances of Alice//incognito and Bob//incognito expected on
	// every worker.
	wantA, wantB uint64
	// Public balances before the demo, the fees paid by Alice and Bob,
	// and the height by which the unshield was paid out.
	alice0, bob0, vault0 uint64
	aliceFees, bobFees   []uint64
	paidAt               int64
	// unshieldAt is the height of the unshield's invoke, which every
	// enclave confirms (a block with a call of the shard).
	unshieldAt int64
}

type demoStep struct {
	name string
	run  func(context.Context) (string, error)
}

func (d *demo) run(ctx context.Context) error {
	var err error
	if d.c, err = client.New(ctx, d.n.NodeRPC(), client.Options{}); err != nil {
		return fmt.Errorf("%w: connect to the node: %w", ErrDemo, err)
	}
	d.alice, d.bob = accounts.DevKey("Alice"), accounts.DevKey("Bob")
	d.aliceI, d.bobI = accounts.DevKey("Alice//incognito"), accounts.DevKey("Bob//incognito")
	steps := []demoStep{
		{"registered", d.registered},
		{"shield", d.shield},
		{"transfer", d.transfer},
		{"unshield", d.unshield},
	}
	steps = append(steps,
		demoStep{"private balances", d.privateBalances},
		demoStep{"public balances", d.publicBalances},
		demoStep{"confirmations", d.confirmations},
		demoStep{"direct transfers", d.directTransfers},
	)
	for _, s := range steps {
		msg, err := s.run(ctx)
		if err != nil {
			fmt.Fprintf(d.out, "  FAIL %-16s %v\n", s.name, err)
			return fmt.Errorf("%w: %s: %w", ErrDemo, s.name, err)
		}
		// Continuation lines line up under the first.
		msg = strings.ReplaceAll(msg, "\n", "\n"+strings.Repeat(" ", 24))
		fmt.Fprintf(d.out, "  ok   %-16s %s\n", s.name, msg)
	}
	return nil
}
func (d *demo) registered(ctx context.Context) (string, error) {
	st, err := d.c.Shard(ctx, d.shard)
	if err != nil {
		return "", err
	}
	m := st.Shard.MRENCLAVEAt(uint64(max(st.Height, 0)))
	encls, _, err := d.c.EnclavesOf(ctx, m)
	if err != nil {
		return "", err
	}
	byAddr := map[tx.Address]teerex.Enclave{}
	for _, e := range encls {
		byAddr[e.Signer] = e
	}
	var parts []string
	var keyHash types.Hash
	seen := map[tx.Address]bool{}
	for i, w := range d.n.workers {
		id := w.Identity()
		reg, ok := byAddr[w.Signer()]
		if ok && seen[reg.Signer] {
			return "", fmt.Errorf("workers share the signer %s: signers must be per enclave", reg.Signer)
		}
		seen[reg.Signer] = true
		if !ok {
			return "", fmt.Errorf("worker %d's enclave %s is not registered for MRENCLAVE %s", i, id.Signer, m)
		}
		pub, err := hex.DecodeString(id.ShieldingKey)
		if err != nil {
			return "", fmt.Errorf("worker %d's shielding key: %w", i, err)
		}
		if reg.ShieldingKeyHash != sha256.Sum256(pub) {
			return "", fmt.Errorf("worker %d registered shielding key hash %s, its key hashes to %x", i, reg.ShieldingKeyHash, sha256.Sum256(pub))
		}
		if i == 0 {
			keyHash = reg.ShieldingKeyHash
		} else if reg.ShieldingKeyHash != keyHash {
			return "", fmt.Errorf("worker %d registered shielding key hash %s, worker 0 %s: not one shard key", i, reg.ShieldingKeyHash, keyHash)
		}
		// trusted.Dial checks the worker's claims against the
		// registration, as every client does.
		tc, err := trusted.Dial(ctx, w.RPCAddr(), d.c, trusted.Options{})
		if err != nil {
			return "", fmt.Errorf("worker %d: %w", i, err)
		}
		d.tcs = append(d.tcs, tc)
		parts = append(parts, fmt.Sprintf("worker %d signer %s", i, short(reg.Signer[:])))
	}
	return fmt.Sprintf("%s of MRENCLAVE %s with one shielding key (sha256 %s)\n%s", plural(len(d.n.workers), "enclave"), short(m[:]), short(keyHash[:]), strings.Join(parts, ", ")), nil
}

func (d *demo) shield(ctx context.Context) (string, error) {
	// Where the accounts stand before (zero on a fresh network).
	var err error
	if d.wantA, d.wantB, err = d.balances(ctx, d.tcs[0]); err != nil {
		return "", err
	}
	if d.alice0, err = d.public(ctx, addrOf(d.alice)); err != nil {
		return "", err
	}
	if d.bob0, err = d.public(ctx, addrOf(d.bob)); err != nil {
		return "", err
	}
	st, err := d.c.Shard(ctx, d.shard)
	if err != nil {
		return "", err
	}
	d.vault0 = st.VaultBalance

	aliceI := addrOf(d.aliceI)
	recipient, err := shielding.Encrypt(d.tcs[0].ShieldingKey(), shielding.InfoShieldRecipient, aliceI[:])
	if err != nil {
		return "", err
	}
	sub, err := d.c.ShieldFunds(ctx, d.alice, d.shard, DemoShield, recipient)
	if err != nil {
		return "", fmt.Errorf("shield_funds: %w", err)
	}
	fee, err := feeOf(sub)
	if err != nil {
		return "", err
	}
	d.aliceFees = append(d.aliceFees, fee)
	d.wantA += DemoShield
	if err := d.processed(ctx, sub.Height); err != nil {
		return "", err
	}
	if err := d.expectBalances(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("Alice -> Alice//incognito %s (block %d, fee %s paid by Alice)", commas(DemoShield), sub.Height, commas(fee)), nil
}

func (d *demo) transfer(ctx context.Context) (string, error) {
	sub, fee, err := d.invoke(ctx, d.alice, d.aliceI, stf.Call{Transfer: &stf.Transfer{From: addrOf(d.aliceI), To: addrOf(d.bobI), Amount: DemoTransfer}})
	if err != nil {
		return "", err
	}
	d.aliceFees = append(d.aliceFees, fee)
	d.wantA -= DemoTransfer
	d.wantB += DemoTransfer
	if err := d.expectBalances(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("Alice//incognito -> Bob//incognito %s, indirect (invoke in block %d, fee %s paid by Alice)", commas(DemoTransfer), sub.Height, commas(fee)), nil
}

func (d *demo) unshield(ctx context.Context) (string, error) {
	bob := addrOf(d.bob)
	sub, fee, err := d.invoke(ctx, d.bob, d.bobI, stf.Call{Unshield: &stf.UnshieldTo{From: addrOf(d.bobI), Beneficiary: bob, Amount: DemoUnshield}})
	if err != nil {
		return "", err
	}
	d.bobFees = append(d.bobFees, fee)
	d.unshieldAt = sub.Height
	d.wantB -= DemoUnshield
	if err := d.expectBalances(ctx); err != nil {
		return "", err
	}
	// The enclaves submit unshield_funds; the chain pays it once.
	want := d.vault0 + DemoShield - DemoUnshield
	err = poll(ctx, "the unshield paid out of the vault", func() (bool, error) {
		st, err := d.c.Shard(ctx, d.shard)
		if err != nil {
			return false, err
		}
		d.paidAt = st.Height
		return st.VaultBalance <= want, nil
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Bob//incognito -> Bob %s, indirect (invoke in block %d, fee %s paid by Bob; paid out by block %d)", commas(DemoUnshield), sub.Height, commas(fee), d.paidAt), nil
}

func (d *demo) privateBalances(ctx context.Context) (string, error) {
	var parts []string
	for i, tc := range d.tcs {
		a, b, err := d.balances(ctx, tc)
		if err != nil {
			return "", fmt.Errorf("worker %d: %w", i, err)
		}
		if a != d.wantA || b != d.wantB {
			return "", fmt.Errorf("worker %d: Alice//incognito %s, Bob//incognito %s; want %s and %s", i, commas(a), commas(b), commas(d.wantA), commas(d.wantB))
		}
		parts = append(parts, fmt.Sprintf("worker %d: %s / %s", i, commas(a), commas(b)))
	}
	return "Alice//incognito / Bob//incognito: " + strings.Join(parts, "; "), nil
}

func (d *demo) publicBalances(ctx context.Context) (string, error) {
	alice, err := d.public(ctx, addrOf(d.alice))
	if err != nil {
		return "", err
	}
	bob, err := d.public(ctx, addrOf(d.bob))
	if err != nil {
		return "", err
	}
	st, err := d.c.Shard(ctx, d.shard)
	if err != nil {
		return "", err
	}
	wantAlice := d.alice0 - DemoShield - sum(d.aliceFees)
	wantBob := d.bob0 + DemoUnshield - sum(d.bobFees)
	wantVault := d.vault0 + DemoShield - DemoUnshield
	switch {
	case alice != wantAlice:
		return "", fmt.Errorf("public balance of Alice %s, want %s = %s - %s - fees %s", commas(alice), commas(wantAlice), commas(d.alice0), commas(DemoShield), joinCommas(d.aliceFees, " - "))
	case bob != wantBob:
		return "", fmt.Errorf("public balance of Bob %s, want %s = %s + %s - fee %s", commas(bob), commas(wantBob), commas(d.bob0), commas(DemoUnshield), joinCommas(d.bobFees, " - "))
	case st.VaultBalance != wantVault:
		return "", fmt.Errorf("the vault holds %s, want %s", commas(st.VaultBalance), commas(wantVault))
	}
	return fmt.Sprintf("Alice %s = %s - %s shielded - fees %s\nBob   %s = %s + %s unshielded - fee %s\nvault %s = %s + %s - %s",
		commas(alice), commas(d.alice0), commas(DemoShield), joinCommas(d.aliceFees, " - "),
		commas(bob), commas(d.bob0), commas(DemoUnshield), joinCommas(d.bobFees, " - "),
		commas(st.VaultBalance), commas(d.vault0), commas(DemoShield), commas(DemoUnshield)), nil
}

// confirmations waits until every enclave confirmed the unshield's block
// or a later one (enclaves confirm a block with calls of their shard at
// once, an idle shard only at the heartbeat) and their latest
// confirmations carry one state hash.
func (d *demo) confirmations(ctx context.Context) (string, error) {
	signers := make([]tx.Address, len(d.n.workers))
	for i, w := range d.n.workers {
		signers[i] = w.Signer()
	}
	var (
		line string
		divs uint64
	)
	err := poll(ctx, "every enclave's confirmation with one state hash", func() (bool, error) {
		st, err := d.c.Shard(ctx, d.shard)
		if err != nil {
			return false, err
		}
		divs = st.Shard.Divergences
		confs, err := d.c.Confirmations(ctx, d.shard, signers, st.Height)
		if err != nil {
			return false, err
		}
		parts := make([]string, len(signers))
		for i, s := range signers {
			c, ok := confs[s]
			if !ok || c.Height < uint64(d.unshieldAt) || c.StateHash != confs[signers[0]].StateHash {
				return false, nil
			}
			parts[i] = fmt.Sprintf("worker %d at height %d state %s", i, c.Height, short(c.StateHash[:]))
		}
		line = strings.Join(parts, ", ")
		return true, nil
	})
	if err != nil {
		return "", err
	}
	if divs != 0 {
		return "", fmt.Errorf("the chain recorded %d state divergences", divs)
	}
	return line + "; 0 divergences on chain", nil
}

// directTransfers sends a transfer straight to each worker's JSON-RPC in
// turn: each comes back executed in a shard block, every other worker
// shows its effect (the shard's enclaves ordered it in one log), and the
// chain confirms the block with the header hash the client verified.
func (d *demo) directTransfers(ctx context.Context) (string, error) {
	// A worker provisioned a moment ago joins the shard's group once the
	// leader saw its registration.
	if err := poll(ctx, "every worker in the shard's group", func() (bool, error) {
		for _, tc := range d.tcs {
			if h, err := tc.Health(ctx); err != nil || h.Leader == "" || h.Voters != len(d.tcs) {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return "", err
	}
	var lines []string
	for i, tc := range d.tcs {
		r, err := tc.Transfer(ctx, d.aliceI, addrOf(d.bobI), DemoDirect)
		if err != nil {
			return "", fmt.Errorf("worker %d: %w", i, err)
		}
		if !r.Success {
			return "", fmt.Errorf("worker %d executed it unsuccessfully: %s", i, r.Error)
		}
		d.wantA -= DemoDirect
		d.wantB += DemoDirect
		if err := poll(ctx, "every worker shows the direct transfer", func() (bool, error) {
			return d.expectBalances(ctx) == nil, nil
		}); err != nil {
			return "", fmt.Errorf("after the transfer to worker %d: %w", i, d.expectBalances(ctx))
		}
		var confirmedAt uint64
		err = poll(ctx, fmt.Sprintf("shard block %d confirmed on chain", r.Block.Number), func() (bool, error) {
			c, _, err := d.c.SidechainBlock(ctx, d.shard, r.Block.Number)
			if err != nil || c == nil {
				return false, err
			}
			if c.HeaderHash != r.HeaderHash {
				return false, fmt.Errorf("chain confirmed shard block %d with header %s, worker %d executed it in %s", r.Block.Number, c.HeaderHash, i, r.HeaderHash)
			}
			confirmedAt = c.ConfirmedHeight
			return true, nil
		})
		if err != nil {
			return "", err
		}
		lines = append(lines, fmt.Sprintf("%s to worker %d: executed in shard block %d, confirmed on chain at height %d",
			commas(DemoDirect), i, r.Block.Number, confirmedAt))
	}
	return fmt.Sprintf("Alice//incognito -> Bob//incognito via each worker's JSON-RPC, every worker agrees:\n%s\nbalances now %s / %s",
		strings.Join(lines, "\n"), commas(d.wantA), commas(d.wantB)), nil
}

// invoke sends call, signed by the incognito key, encrypted inside a
// bridge invoke paid by payer, and waits until every worker processed its
// block. It returns the invoke and its fee.
func (d *demo) invoke(ctx context.Context, payer, key ed25519.PrivateKey, call stf.Call) (*client.Submitted, uint64, error) {
	nonce, err := d.tcs[0].Nonce(ctx, key)
	if err != nil {
		return nil, 0, fmt.Errorf("trusted nonce: %w", err)
	}
	ct, err := d.tcs[0].EncryptCall(key, call, nonce)
	if err != nil {
		return nil, 0, err
	}
	sub, err := d.c.Invoke(ctx, payer, d.shard, ct)
	if err != nil {
		return nil, 0, fmt.Errorf("invoke: %w", err)
	}
	fee, err := feeOf(sub)
	if err != nil {
		return nil, 0, err
	}
	return sub, fee, d.processed(ctx, sub.Height)
}

// processed waits until every worker has processed chain height h.
func (d *demo) processed(ctx context.Context, h int64) error {
	return poll(ctx, fmt.Sprintf("every worker processed block %d", h), func() (bool, error) {
		for _, w := range d.n.workers {
			if got, _ := w.Processed(); got < h {
				return false, nil
			}
		}
		return true, nil
	})
}

// expectBalances checks the incognito balances on every worker.
func (d *demo) expectBalances(ctx context.Context) error {
	for i, tc := range d.tcs {
		a, b, err := d.balances(ctx, tc)
		if err != nil {
			return fmt.Errorf("worker %d: %w", i, err)
		}
		if a != d.wantA || b != d.wantB {
			return fmt.Errorf("worker %d: Alice//incognito %s, Bob//incognito %s; want %s and %s", i, commas(a), commas(b), commas(d.wantA), commas(d.wantB))
		}
	}
	return nil
}

func (d *demo) balances(ctx context.Context, tc *trusted.Client) (a, b uint64, err error) {
	if a, err = tc.Balance(ctx, d.aliceI); err != nil {
		return 0, 0, fmt.Errorf("balance of Alice//incognito: %w", err)
	}
	if b, err = tc.Balance(ctx, d.bobI); err != nil {
		return 0, 0, fmt.Errorf("balance of Bob//incognito: %w", err)
	}
	return a, b, nil
}

func (d *demo) public(ctx context.Context, a tx.Address) (uint64, error) {
	acc, err := d.c.Account(ctx, a)
	if err != nil {
		return 0, fmt.Errorf("account %s: %w", a, err)
	}
	return acc.Balance, nil
}

// feeOf is the fee a transaction paid (its accounts.fee event).
func feeOf(s *client.Submitted) (uint64, error) {
	for _, e := range s.Events {
		if e.Type == accounts.EventFee {
			return strconv.ParseUint(e.Attrs["amount"], 10, 64)
		}
	}
	return 0, fmt.Errorf("transaction %x has no %s event", s.Hash, accounts.EventFee)
}

// poll checks cond until it holds or ctx is done; an error from cond is
// retried (the node or a worker may be busy) and reported at the end.
func poll(ctx context.Context, what string, cond func() (bool, error)) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		ok, err := cond()
		if err == nil && ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last error: %w)", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func addrOf(k ed25519.PrivateKey) tx.Address { return tx.AddressOf(k.Public().(ed25519.PublicKey)) }

func sum(xs []uint64) uint64 {
	var s uint64
	for _, x := range xs {
		s += x
	}
	return s
}

// short is the first 8 hex digits of b, for humans.
func short(b []byte) string { return hex.EncodeToString(b[:min(len(b), 4)]) + "…" }

// commas writes n with thousands separators.
func commas(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func joinCommas(xs []uint64, sep string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = commas(x)
	}
	return strings.Join(parts, sep)
}
