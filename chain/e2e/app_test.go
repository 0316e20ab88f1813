package e2e_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	teerexkeeper "github.com/integritee-go/integritee/chain/teerex/keeper"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/internal/testvectors"
)

// t0 is the genesis time of the App-level dev chains.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func devTeerexGenesis(t testing.TB, at time.Time) teerex.GenesisState {
	t.Helper()
	g, err := devnet.TeerexGenesis(at)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// CheckTx checks calls at the last block's time (here a collateral
// refresh, whose documents are verified at that time). Before the first
// block that is the genesis time; after a restart it is unknown to a fresh
// App until the node restores it from the last header (the node does so
// after its handshake, see chain/node).
func TestCheckTxTimeAtGenesisAndAfterRestart(t *testing.T) {
	g := devTeerexGenesis(t, t0)
	c := newAppChain(t, true, t0, g)
	alice := accounts.DevKey("Alice")
	refresh := teerex.SetCollateral{TCBInfos: g.Policy.TCBInfos, QEIdentity: g.Policy.QEIdentity}
	if res := c.CheckTx(c.sign(alice, teerex.Name, teerex.MethodSetCollateral, refresh)); res.Code != 0 {
		t.Fatalf("collateral refresh before the first block: %s/%d %s", res.Codespace, res.Code, res.Log)
	}
	blockTime := t0.Add(time.Second)
	c.BlockAt(blockTime)

	c.Reopen()
	delete(c.Nonces, accounts.DevAddress("Alice")) // the checked call was never committed
	call := c.sign(alice, teerex.Name, teerex.MethodSetCollateral, refresh)
	res := c.CheckTx(call)
	wantCode(t, res.Codespace, res.Code, res.Log, teerex.ErrInvalidPolicy)
	c.ABCI.RestoreLastBlockTime(blockTime)
	if res := c.CheckTx(call); res.Code != 0 {
		t.Fatalf("collateral refresh after the time was restored: %s/%d %s", res.Codespace, res.Code, res.Log)
	}
	// A time from a finalized block is not overwritten.
	c.ABCI.RestoreLastBlockTime(t0.Add(-devnet.CollateralValidity))
	if res := c.CheckTx(c.sign(alice, teerex.Name, teerex.MethodSetCollateral, refresh)); res.Code != 0 {
		t.Fatalf("second refresh: %s/%d %s", res.Codespace, res.Code, res.Log)
	}
}

// qvlTime is the verification time SOURCES.md gives for dcap-qvl/sgx_quote:
// its collateral is valid in [2025-06-19T10:56:11Z, 2025-07-19T10:01:18Z).
var qvlTime = time.Date(2025, 7, 19, 10, 1, 17, 0, time.UTC)

// A real Intel DCAP quote on a production-policy chain: sudo installs the
// quote's collateral and allowlists its MRENCLAVE in a block at the
// vector's time, and the registration in that block passes verification
// (Intel root, signatures, collateral, TCB) and fails exactly at the signer
// binding, since its report data is "Hello, world!", not a commitment to
// the sender. It pays its fee and changes nothing else.
func TestIntelQuoteVerifiedOnChain(t *testing.T) {
	col, err := pcs.ParseQVLCollateral(testvectors.Read(t, "dcap-qvl/sgx_quote_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	var docs teerex.Policy
	if err := docs.AddCollateral(col); err != nil {
		t.Fatal(err)
	}
	mr, err := types.ParseHash("33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb")
	if err != nil {
		t.Fatal(err)
	}
	quote := teerex.Evidence{Kind: "dcap", Quote: testvectors.Read(t, "dcap-qvl/sgx_quote")}

	c := newAppChain(t, false, qvlTime.Add(-time.Hour), teerex.ProductionGenesis())
	alice, bob := accounts.DevKey("Alice"), accounts.DevAddress("Bob")
	reg := c.sign(accounts.DevKey("Bob"), teerex.Name, teerex.MethodRegisterEnclave,
		teerex.RegisterEnclave{Attestation: quote, ShieldingKey: []byte("k")})
	// CheckTx refuses it at once: what its report data claims (unverified
	// yet) does not bind the sender, and verifying cannot change that.
	res := c.CheckTx(reg)
	wantCode(t, res.Codespace, res.Code, res.Log, teerex.ErrSenderNotAttested)

	results := c.BlockAt(qvlTime,
		c.sign(alice, teerex.Name, teerex.MethodSetCollateral, teerex.SetCollateral{
			TCBInfos: docs.TCBInfos, QEIdentity: docs.QEIdentity, PCKCRLs: docs.PCKCRLs, RootCRL: docs.RootCRL}),
		c.sign(alice, teerex.Name, teerex.MethodAllowMRENCLAVE, teerex.AllowMRENCLAVE{MRENCLAVE: mr}),
	)
	wantOK(t, results)
	before := c.Account(bob)
	results = c.BlockAt(qvlTime, reg)
	wantCode(t, results[0].Codespace, results[0].Code, results[0].Log, teerex.ErrSenderNotAttested)
	if !strings.Contains(results[0].Log, hex.EncodeToString([]byte("Hello, world!"))) {
		t.Errorf("log does not show the quote's report data: %q", results[0].Log)
	}
	after := c.Account(bob)
	if after.Nonce != before.Nonce+1 || after.Balance != before.Balance-accounts.Unit/100 {
		t.Errorf("Bob %+v -> %+v: want only the fee charged and the nonce consumed", before, after)
	}
	var e teerex.Enclave
	if c.Query("/teerex/enclave/"+bob.String(), &e) {
		t.Fatalf("Bob registered: %+v", e)
	}
	var n uint64
	if c.Query("/teerex/enclaves", &n) {
		t.Fatalf("%d enclaves listed", n)
	}
	// Two seconds later the collateral has expired.
	results = c.BlockAt(qvlTime.Add(2*time.Second), c.sign(accounts.DevKey("Bob"), teerex.Name, teerex.MethodRegisterEnclave,
		teerex.RegisterEnclave{Attestation: quote, ShieldingKey: []byte("k")}))
	wantCode(t, results[0].Codespace, results[0].Code, results[0].Log, teerex.ErrInvalidCollateral)
}

// A registration older than the renewal period can neither confirm blocks
// nor unshield funds, even as a block it confirmed proves; renewing it
// restores both.
func TestExpiredRegistrationCannotConfirmOrUnshield(t *testing.T) {
	c := newAppChain(t, true, t0, devTeerexGenesis(t, t0))
	shard := measurement("v1")
	dave := newSimEnclave(t, "Dave", shard, c.Genesis)
	bob := accounts.DevAddress("Bob")
	registeredAt := t0.Add(time.Second)
	wantOK(t, c.BlockAt(registeredAt,
		c.sign(dave.key, teerex.Name, teerex.MethodRegisterEnclave, dave.register("wss://127.0.0.1:2000")),
		c.sign(accounts.DevKey("Bob"), bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 1000, EncryptedRecipient: []byte("r")}),
	))
	// Still active at the last instant of the renewal period.
	confirm, unshields := shardBlock(t, shard, 1, sidechain.Unshield{Beneficiary: bob, Amount: 100, CallHash: types.Hash{1}})
	wantOK(t, c.BlockAt(registeredAt.Add(teerex.DefaultRenewalPeriod),
		c.sign(dave.key, bridge.Name, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: 1, BlockHash: types.Hash(moduletest.BlockHash(1))}),
		c.Sign(dave.key, confirm)))

	expired := registeredAt.Add(teerex.DefaultRenewalPeriod + time.Second)
	vault := bridge.VaultAddress(shard)
	before := c.Account(vault).Balance
	results := c.BlockAt(expired,
		c.sign(dave.key, bridge.Name, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: shard, Height: 2, BlockHash: types.Hash(moduletest.BlockHash(2))}),
		c.Sign(dave.key, unshields[0]),
	)
	for _, r := range results {
		wantCode(t, r.Codespace, r.Code, r.Log, bridge.ErrNotActive)
		if !strings.Contains(r.Log, teerex.ErrExpired.Msg) {
			t.Errorf("log %q does not name the expiry", r.Log)
		}
	}
	var s bridge.Shard
	if !c.Query("/bridge/shard/"+shard.String(), &s) || s.Latest == nil || s.Latest.Height != 1 {
		t.Fatalf("shard after the refused confirmation: %+v", s)
	}
	if got := c.Account(vault).Balance; got != before {
		t.Fatalf("vault %d, was %d", got, before)
	}
	var u bridge.Unshielded
	if c.Query("/bridge/unshielded/"+shard.String()+"/"+types.Hash{1}.String(), &u) {
		t.Fatalf("refused unshield recorded: %+v", u)
	}

	// Renewal: the same evidence (DCAP quotes carry no time) registers again.
	wantOK(t, c.BlockAt(expired.Add(time.Second),
		c.sign(dave.key, teerex.Name, teerex.MethodRegisterEnclave, dave.register("wss://127.0.0.1:2000"))))
	wantOK(t, c.BlockAt(expired.Add(2*time.Second), c.Sign(dave.key, unshields[0])))
	if got := c.Account(vault).Balance; got != before-100 {
		t.Fatalf("vault %d after renewal, want %d", got, before-100)
	}
}

// A registration nobody renews is removed by the end of the first block
// after it has been expired for teerexkeeper.ExpiredRetention, with an event; the
// block's own transactions run first. Before pruning, expired
// registrations stayed for ever.
func TestLongExpiredRegistrationIsPruned(t *testing.T) {
	c := newAppChain(t, true, t0, devTeerexGenesis(t, t0))
	dave := newSimEnclave(t, "Dave", measurement("v1"), c.Genesis)
	registeredAt := t0.Add(time.Second)
	wantOK(t, c.BlockAt(registeredAt, c.sign(dave.key, teerex.Name, teerex.MethodRegisterEnclave, dave.register(""))))
	last := registeredAt.Add(teerex.DefaultRenewalPeriod + teerexkeeper.ExpiredRetention)
	c.BlockAt(last)
	var e teerex.Enclave
	if !c.Query("/teerex/enclave/"+dave.addr.String(), &e) || len(c.Events) != 0 {
		t.Fatalf("pruned at the last instant of the retention: events %v", c.Events)
	}
	c.BlockAt(last.Add(time.Second))
	if len(c.Events) != 1 || c.Events[0].Type != teerex.EventPruned || c.Events[0].Attributes[0].Value != dave.addr.String() {
		t.Fatalf("block events %v, want Dave pruned", c.Events)
	}
	var n uint64
	if c.Query("/teerex/enclave/"+dave.addr.String(), &e) || c.Query("/teerex/enclaves", &n) || c.Query("/teerex/enclaves/"+measurement("v1").String(), &n) {
		t.Fatalf("pruned registration still in the state (%d listed)", n)
	}
}

// Two enclaves of a shard submit the same unshield_funds, proved by the
// shard block the sidechain confirmed (with both their votes), and a
// faulty proposer puts both in one block: the first pays, the second fails
// with ErrAlreadyUnshielded and pays only its fee.
func TestDoubleUnshieldInOneBlockPaysOnce(t *testing.T) {
	c := newAppChain(t, true, t0, devTeerexGenesis(t, t0))
	shard := measurement("v1")
	dave, eve := newSimEnclave(t, "Dave", shard, c.Genesis), newSimEnclave(t, "Eve", shard, c.Genesis)
	wantOK(t, c.BlockAt(t0.Add(time.Second),
		c.sign(dave.key, teerex.Name, teerex.MethodRegisterEnclave, dave.register("")),
		c.sign(eve.key, teerex.Name, teerex.MethodRegisterEnclave, eve.register("")),
		c.sign(accounts.DevKey("Bob"), bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 1000, EncryptedRecipient: []byte("r")}),
	))
	ferdie := accounts.DevAddress("Ferdie")
	callHash := types.Hash(sha256.Sum256([]byte("trusted call 1")))
	confirm, unshields := shardBlock(t, shard, 1, sidechain.Unshield{Beneficiary: ferdie, Amount: 400, CallHash: callHash})
	wantOK(t, c.BlockAt(t0.Add(2*time.Second), c.Sign(dave.key, confirm), c.Sign(eve.key, confirm)))
	before, vaultBefore := c.Account(ferdie).Balance, c.Account(bridge.VaultAddress(shard)).Balance
	eveBefore := c.Account(eve.addr).Balance
	results := c.BlockAt(t0.Add(3*time.Second),
		c.Sign(dave.key, unshields[0]),
		c.Sign(eve.key, unshields[0]),
	)
	wantOK(t, results[:1])
	wantCode(t, results[1].Codespace, results[1].Code, results[1].Log, bridge.ErrAlreadyUnshielded)
	if got := c.Account(ferdie).Balance; got != before+400 {
		t.Errorf("beneficiary got %d, want 400 once", got-before)
	}
	if got := c.Account(bridge.VaultAddress(shard)).Balance; got != vaultBefore-400 {
		t.Errorf("vault %d, want %d", got, vaultBefore-400)
	}
	if got := c.Account(eve.addr).Balance; got != eveBefore-accounts.Unit/100 {
		t.Errorf("Eve paid %d, want only the fee %d", eveBefore-got, accounts.Unit/100)
	}
	var u bridge.Unshielded
	if !c.Query("/bridge/unshielded/"+shard.String()+"/"+callHash.String(), &u) || u.Enclave != dave.addr || u.Amount != 400 {
		t.Fatalf("unshield record %+v", u)
	}
}

// Attack 2 of issue 8: a host starts a fresh copy of the enclave binary,
// gives it the real chain ID but a validator set of its own, and registers
// it on the real chain with a genuine quote. That quote commits to the
// host's chain's genesis ID, so the registration is refused with
// ErrWrongChain (by CheckTx, and in a block, where only the fee is
// charged); the same enclave following the real chain registers.
func TestEnclaveOfAnotherChainCannotRegister(t *testing.T) {
	c := newAppChain(t, true, t0, devTeerexGenesis(t, t0))
	shard := measurement("v1")
	_, hostVals := moduletest.Validators("the host's own validators", 1)
	fake := teerex.GenesisID(appChainID, 1, hostVals)
	dave := newSimEnclave(t, "Dave", shard, fake)

	res := c.CheckTx(c.sign(dave.key, teerex.Name, teerex.MethodRegisterEnclave, dave.register("")))
	wantCode(t, res.Codespace, res.Code, res.Log, teerex.ErrWrongChain)
	delete(c.Nonces, dave.addr) // refused by CheckTx: the nonce is still free

	c.BlockAt(t0.Add(time.Second)) // commits genesis
	before := c.Account(dave.addr)
	results := c.BlockAt(t0.Add(2*time.Second), c.sign(dave.key, teerex.Name, teerex.MethodRegisterEnclave, dave.register("")))
	wantCode(t, results[0].Codespace, results[0].Code, results[0].Log, teerex.ErrWrongChain)
	var n uint64
	if c.Query("/teerex/enclaves", &n) {
		t.Fatalf("refused registration recorded: %d enclaves", n)
	}
	if after := c.Account(dave.addr); after.Nonce != before.Nonce+1 || before.Balance-after.Balance != accounts.Unit/100 {
		t.Fatalf("Dave %+v, was %+v: want only the fee charged", after, before)
	}

	genuine := newSimEnclave(t, "Dave", shard, c.Genesis)
	wantOK(t, c.BlockAt(t0.Add(3*time.Second), c.sign(genuine.key, teerex.Name, teerex.MethodRegisterEnclave, genuine.register(""))))
	var e teerex.Enclave
	if !c.Query("/teerex/enclave/"+dave.addr.String(), &e) || e.MRENCLAVE != shard {
		t.Fatalf("registration of the enclave following this chain: %+v", e)
	}
}
