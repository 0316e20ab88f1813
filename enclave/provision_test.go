package enclave_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/attestation/ratls"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/smt"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/tee/sim"
)

// simPeers trusts the dev PKI of b, as the sim enclave binary does.
func simPeers(b *sim.Backend) *enclave.PeerAttestation {
	p := b.PKI()
	return &enclave.PeerAttestation{
		Roots:      []*x509.Certificate{p.Root()},
		Collateral: func([6]byte) (*pcs.Collateral, error) { return p.Collateral(time.Now()) },
	}
}

// startPeers is host.start with peer attestation configured.
func startPeers(h *host, peers *enclave.PeerAttestation) {
	h.t.Helper()
	h.peers = peers
	h.start()
}

// registryProofs are the provider host's proofs of signer's registration,
// the policy, the allowlist and the shard's record at height
// (protocol.ProvisionServe).
func registryProofs(t *testing.T, c *chainSim, signer tx.Address, shard [32]byte, height int64) []protocol.ProvedValue {
	t.Helper()
	var out []protocol.ProvedValue
	for _, q := range []struct {
		path string
		key  []byte
	}{
		{"/teerex/enclave/" + signer.String(), teerex.EnclaveKey(signer)},
		{"/teerex/policy", teerex.PolicyKey()},
		{"/teerex/allowlist", teerex.AllowlistKey()},
		{"/bridge/shard/" + types.Hash(shard).String(), bridge.ShardKey(types.Hash(shard))},
	} {
		res, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: q.path, Height: height, Prove: true})
		if err != nil || res.Code != 0 {
			t.Fatalf("query %s at %d: %v %+v", q.path, height, err, res)
		}
		p, err := smt.ProofFromOps(res.ProofOps, q.key)
		if err != nil {
			t.Fatal(err)
		}
		v := res.Value
		if len(v) == 0 {
			v = nil
		}
		out = append(out, protocol.ProvedValue{Key: q.key, Value: v, Proof: *p})
	}
	return out
}

// tamper changes relayed bytes: toProvider is true for the requester's
// bytes, step counts the relays in that direction from 0.
type tamper func(toProvider bool, step int, b []byte) []byte

// relay plays both hosts of a provisioning: it starts req as a requester
// and carries its TLS bytes to prov and back until the requester is done.
func relay(t *testing.T, c *chainSim, req, prov *host, tm tamper) (*protocol.ProvisionResult, error) {
	t.Helper()
	ctx := context.Background()
	initReq := req.initRequest(c)
	initReq.SealedKeys, initReq.Checkpoint = nil, nil
	ir, err := protocol.CallAs[*protocol.ProvisionInitReply](ctx, req.c, &protocol.ProvisionInit{Init: *initReq, Collateral: req.collateral})
	if err != nil {
		return nil, err
	}
	out := ir.Out
	var session uint64
	for i := 0; i < 8; i++ {
		if tm != nil {
			out = tm(true, i, out)
		}
		serve := &protocol.ProvisionServe{Session: session, In: out}
		if session == 0 {
			serve.Collateral = prov.collateral
		}
		sr, err := protocol.CallAs[*protocol.ProvisionServeReply](ctx, prov.c, serve)
		if err != nil {
			return nil, err
		}
		session = sr.Session
		in := sr.Out
		if sr.NeedCheckpoint {
			// The requester is attested: now the host takes its snapshot.
			prov.snapshots++
			give := &protocol.ProvisionServe{Session: session, Checkpoint: prov.checkpoint,
				Registry: registryProofs(t, c, prov.signer, prov.shard, prov.height-1)}
			if prov.alterRegistry != nil {
				give.Registry = prov.alterRegistry(give.Registry)
			}
			if sr, err = protocol.CallAs[*protocol.ProvisionServeReply](ctx, prov.c, give); err != nil {
				return nil, err
			}
			in = append(in, sr.Out...)
		}
		if tm != nil {
			in = tm(false, i, in)
		}
		st, err := protocol.CallAs[*protocol.ProvisionStepReply](ctx, req.c, &protocol.ProvisionStep{In: in})
		if err != nil {
			return nil, err
		}
		if st.Done {
			if st.Result == nil {
				t.Fatal("done without a result")
			}
			return st.Result, nil
		}
		if sr.Done {
			t.Fatal("provider done, requester not")
		}
		out = st.Out
	}
	t.Fatal("provisioning did not finish in 8 round trips")
	return nil, nil
}

// provisionFixture is a chain with a provider enclave that processed
// blocks 1..2 (Alice shields 1000 to her incognito account, then sends
// 300 to Bob's).
type provisionFixture struct {
	c              *chainSim
	shard          [32]byte
	prov           *host
	provInit       *protocol.InitReply
	aliceI, bobI   ed25519.PrivateKey
	shieldingPub   []byte
	providerHeight int64
}

func newProvisionFixture(t *testing.T) *provisionFixture {
	t.Helper()
	return newProvisionFixtureAt(t, time.Time{})
}

// newProvisionFixtureAt is newProvisionFixture on a chain whose genesis is
// at start (zero: about now).
func newProvisionFixtureAt(t *testing.T, start time.Time) *provisionFixture {
	t.Helper()
	return newProvisionFixtureWith(t, start, true)
}

// newProvisionFixtureWith is newProvisionFixtureAt whose provider is
// registered on chain only if register.
func newProvisionFixtureWith(t *testing.T, start time.Time, register bool) *provisionFixture {
	t.Helper()
	return newProvisionFixtureBuild(t, start, register, nil)
}

// newProvisionFixtureBuild is newProvisionFixtureWith whose provider host
// setup changes before its enclave starts.
func newProvisionFixtureBuild(t *testing.T, start time.Time, register bool, setup func(*host)) *provisionFixture {
	t.Helper()
	ctx := context.Background()
	f := &provisionFixture{c: newChainSimAt(t, "e2e validators", start), shard: sha256Of("integritee provisioning enclave v1"),
		aliceI: key("alice incognito"), bobI: key("bob incognito")}
	f.prov = newHost(t, f.shard)
	if setup != nil {
		setup(f.prov)
	}
	startPeers(f.prov, simPeers(f.prov.backend))
	rep, err := protocol.CallAs[*protocol.InitReply](ctx, f.prov.c, f.prov.initRequest(f.c))
	if err != nil {
		t.Fatal(err)
	}
	sk := rep.SealedKeys
	f.prov.sealed, f.provInit, f.shieldingPub = &sk, rep, rep.ShieldingPublic
	f.prov.signer = tx.AddressOf(ed25519.PublicKey(rep.SignerPublic))

	alice := accounts.DevKey("Alice")
	// The provider is a registered enclave (block 1), as a requester checks.
	reg, err := protocol.CallAs[*protocol.SignedTxs](ctx, f.prov.c, &protocol.SignRegistration{
		Params: protocol.TxParams{ChainID: chainID, BaseFee: accounts.DevBaseFee, PerByteFee: accounts.DevPerByteFee}, WorkerURL: "ws://127.0.0.1:2000"})
	if err != nil {
		t.Fatal(err)
	}
	fund := f.c.tx(alice, accounts.Name, accounts.MethodTransfer, accounts.Transfer{To: f.prov.signer, Amount: accounts.Unit})
	recipient, err := shielding.Encrypt(f.shieldingPub, shielding.InfoShieldRecipient, func() []byte { a := addr(f.aliceI); return a[:] }())
	if err != nil {
		t.Fatal(err)
	}
	first := [][]byte{fund, reg.Txs[0]}
	if !register {
		first = first[:1]
	}
	for i, r := range f.c.block(append(first, f.c.tx(alice, bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: types.Hash(f.shard), Amount: 1000, EncryptedRecipient: recipient}))...) {
		if r.Code != 0 {
			t.Fatalf("block 1 tx %d: %s/%d %s", i, r.Codespace, r.Code, r.Log)
		}
	}
	f.c.block(invoke(t, f.c, alice, f.shieldingPub, f.shard,
		trustedCall(t, f.aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(f.aliceI), To: addr(f.bobI), Amount: 300}}, 0, f.c.target(f.shard, f.shard))))
	// Block 3 (after provisioning): Bob sends 50 back.
	f.c.block(invoke(t, f.c, alice, f.shieldingPub, f.shard,
		trustedCall(t, f.bobI, stf.Call{Transfer: &stf.Transfer{From: addr(f.bobI), To: addr(f.aliceI), Amount: 50}}, 0, f.c.target(f.shard, f.shard))))
	f.c.block()
	for hgt := int64(1); hgt <= 2; hgt++ {
		if _, err := f.prov.process(f.c, hgt); err != nil {
			t.Fatalf("provider block %d: %v", hgt, err)
		}
	}
	f.providerHeight = 2
	return f
}

func TestProvisioning(t *testing.T) {
	ctx := context.Background()
	f := newProvisionFixture(t)
	req := newHost(t, f.shard)
	startPeers(req, simPeers(req.backend))

	res, err := relay(t, f.c, req, f.prov, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.prov.snapshots != 1 {
		t.Fatalf("the provider asked for %d checkpoints, want 1", f.prov.snapshots)
	}
	if !bytes.Equal(res.ShieldingPublic, f.shieldingPub) || res.Height != 2 || res.StateRoot != f.prov.root() ||
		res.Entries != uint64(len(f.prov.entries)) {
		t.Fatalf("result %+v; provider at 2 root %x with %d entries", res, f.prov.root(), len(f.prov.entries))
	}
	// The requester waits for the snapshot's entries, like a restart.
	if _, err := req.c.Call(ctx, &protocol.ProcessBlock{}); !errors.Is(err, protocol.ErrNotInitialized) {
		t.Fatalf("block before the entries: %v", err)
	}
	snapshot := f.prov.allEntries()
	if err := req.load(snapshot, 2); err != nil {
		t.Fatal(err)
	}
	resumed, err := protocol.CallAs[*protocol.ResumeReply](ctx, req.c, &protocol.Resume{})
	if err != nil || resumed.Height != 2 || resumed.StateRoot != res.StateRoot {
		t.Fatalf("resume %+v %v", resumed, err)
	}
	// The host persists what it got, as after a block.
	sk := res.SealedKeys
	req.sealed, req.checkpoint, req.height = &sk, res.Checkpoint, res.Height
	for _, e := range snapshot {
		req.entries[e.Key] = e.Value
	}

	// Both process block 3, whose call is encrypted to the shared key, to
	// the same state; the signers differ.
	pr, err := f.prov.process(f.c, 3)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := req.process(f.c, 3)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Stats.Applied != 1 || rr.Stats != pr.Stats || rr.StateRoot != pr.StateRoot || !equalEntries(rr.Changes, pr.Changes) {
		t.Fatalf("block 3: provider %+v root %x, requester %+v root %x", pr.Stats, pr.StateRoot, rr.Stats, rr.StateRoot)
	}
	for _, h := range []*host{f.prov, req} {
		if a, b := privateBalance(t, f.c, h, f.shieldingPub, f.aliceI), privateBalance(t, f.c, h, f.shieldingPub, f.bobI); a != 750 || b != 250 {
			t.Fatalf("balances alice %d bob %d, want 750 250", a, b)
		}
	}
	// The requester's outgoing confirmation is signed by its own signer.
	signed, err := protocol.CallAs[*protocol.SignedTxs](ctx, req.c, &protocol.SignOutgoing{Calls: rr.Outgoing,
		Params: protocol.TxParams{ChainID: chainID, BaseFee: accounts.DevBaseFee, PerByteFee: accounts.DevPerByteFee}})
	if err != nil || len(signed.Txs) != len(rr.Outgoing) {
		t.Fatalf("sign outgoing: %v", err)
	}

	// A restart of the requester restores the provisioned keys: the same
	// shielding key, and its own signer, not the provider's.
	again := req.boot(f.c)
	if again.Created || !bytes.Equal(again.ShieldingPublic, f.shieldingPub) || bytes.Equal(again.SignerPublic, f.provInit.SignerPublic) ||
		again.Height != 3 || again.StateRoot != pr.StateRoot {
		t.Fatalf("restart after provisioning %+v", again)
	}
	assertNoKeyMaterial(t, req)
	assertNoKeyMaterial(t, f.prov)
	assertNoPlaintextState(t, req, addr(f.aliceI), addr(f.bobI))
	assertNoPlaintextState(t, f.prov, addr(f.aliceI), addr(f.bobI))
}

func TestProvisioningRefusesPeers(t *testing.T) {
	f := newProvisionFixture(t)
	other := sha256Of("another enclave")
	foreign, err := sim.NewPKI([]byte("a foreign dev root"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// provider serves the shard's keys from this backend.
		backend func(t *testing.T) *sim.Backend
		want    string
	}{
		{"provider with another MRENCLAVE", func(t *testing.T) *sim.Backend {
			b, err := sim.New(sim.Config{Measurement: &other})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, "older release"},
		{"provider under a foreign root", func(t *testing.T) *sim.Backend {
			b, err := sim.New(sim.Config{Measurement: &f.shard, PKI: foreign})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, "trusted root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prov := newHost(t, f.shard)
			prov.backend = tc.backend(t)
			startPeers(prov, simPeers(prov.backend))
			rep, err := protocol.CallAs[*protocol.InitReply](context.Background(), prov.c, prov.initRequest(f.c))
			if err != nil {
				t.Fatal(err)
			}
			sk := rep.SealedKeys
			prov.sealed = &sk
			if _, err := prov.process(f.c, 1); err != nil {
				t.Fatal(err)
			}
			req := newHost(t, f.shard)
			startPeers(req, simPeers(req.backend))
			res, err := relay(t, f.c, req, prov, nil)
			if !errors.Is(err, protocol.ErrVerification) || !strings.Contains(err.Error(), tc.want) || res != nil {
				t.Fatalf("got %v, %v; want a verification error about %q", res, err, tc.want)
			}
			// The refused requester stays unusable until restarted.
			if _, err := req.c.Call(context.Background(), &protocol.Attest{}); err == nil {
				t.Fatal("refused requester answers")
			}
		})
	}
}

// TestProvisioningTamperedRelay flips one byte of each relayed flight in
// turn: provisioning fails, it never completes with other keys.
func TestProvisioningTamperedRelay(t *testing.T) {
	f := newProvisionFixture(t)
	cases := 0
	for _, toProvider := range []bool{true, false} {
		for step := 0; step < 3; step++ {
			req := newHost(t, f.shard)
			startPeers(req, simPeers(req.backend))
			tampered := false
			res, err := relay(t, f.c, req, f.prov, func(tp bool, i int, b []byte) []byte {
				if tp != toProvider || i != step || len(b) == 0 {
					return b
				}
				tampered = true
				b = bytes.Clone(b)
				b[len(b)/2] ^= 0x01
				return b
			})
			if !tampered {
				// Fewer flights in this direction: nothing to tamper with.
				if err != nil {
					t.Fatalf("untampered relay failed: %v", err)
				}
				continue
			}
			cases++
			if err == nil || res != nil {
				t.Fatalf("to provider %v, flight %d tampered: provisioning succeeded", toProvider, step)
			}
			if !errors.Is(err, protocol.ErrVerification) {
				t.Fatalf("to provider %v, flight %d: %v, want a verification error", toProvider, step, err)
			}
		}
	}
	// Requester: hello, certificate flight with request; provider: its
	// handshake flight, the keys.
	if cases != 4 {
		t.Fatalf("tampered %d flights, want 4", cases)
	}
}

// serveConn is a TLS client's connection straight to a provider enclave,
// for a requester that is not an enclave of the shard.
type serveConn struct {
	c       *protocol.Client
	cp      []byte
	session uint64
	w, r    []byte
	// asked counts the enclave's requests for the checkpoint.
	asked int
}

func (s *serveConn) Write(b []byte) (int, error) { s.w = append(s.w, b...); return len(b), nil }

func (s *serveConn) Read(b []byte) (int, error) {
	for len(s.r) == 0 {
		req := &protocol.ProvisionServe{Session: s.session, In: s.w}
		s.w = nil
		rep, err := protocol.CallAs[*protocol.ProvisionServeReply](context.Background(), s.c, req)
		if err != nil {
			return 0, err
		}
		s.session, s.r = rep.Session, rep.Out
		if rep.NeedCheckpoint {
			s.asked++
			if rep, err = protocol.CallAs[*protocol.ProvisionServeReply](context.Background(), s.c,
				&protocol.ProvisionServe{Session: s.session, Checkpoint: s.cp}); err != nil {
				return 0, err
			}
			s.r = append(s.r, rep.Out...)
		}
		if rep.Done && len(s.r) == 0 {
			return 0, io.EOF
		}
	}
	n := copy(b, s.r)
	s.r = s.r[n:]
	return n, nil
}

func (s *serveConn) Close() error                     { return nil }
func (s *serveConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *serveConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s *serveConn) SetDeadline(time.Time) error      { return nil }
func (s *serveConn) SetReadDeadline(time.Time) error  { return nil }
func (s *serveConn) SetWriteDeadline(time.Time) error { return nil }

// TestProvisioningProviderRefusesRequester: a requester with another
// MRENCLAVE (that itself accepts the provider) gets no keys.
// TestProvisioningChecksRegistry: a requester takes keys only from an
// active registered enclave of its measurement, as the chain's state at
// the provider's checkpoint shows through Merkle proofs that the provider's
// host supplies; a host that withholds them, alters them, or proves the
// registration of another signer gets nothing.
func TestProvisioningChecksRegistry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		alter func([]protocol.ProvedValue) []protocol.ProvedValue
		want  string
	}{
		{"withheld", func([]protocol.ProvedValue) []protocol.ProvedValue { return nil }, "no proof of"},
		{"altered registration", func(p []protocol.ProvedValue) []protocol.ProvedValue {
			p[0].Value = bytes.Clone(p[0].Value)
			p[0].Value[len(p[0].Value)-1] ^= 1
			return p
		}, "invalid merkle proof"},
		{"registration proved absent", func(p []protocol.ProvedValue) []protocol.ProvedValue {
			p[0].Value = nil
			return p
		}, "invalid merkle proof"},
		{"another signer's proof", func(p []protocol.ProvedValue) []protocol.ProvedValue {
			p[0].Key = teerex.EnclaveKey(addr(key("someone else")))
			return p
		}, "invalid merkle proof"},
		{"unregistered provider", nil, "not registered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Without alteration: a provider that never registered, whose
			// host's proofs validly show it absent from the registry.
			f := newProvisionFixtureWith(t, time.Time{}, tc.alter != nil)
			f.prov.alterRegistry = tc.alter
			req := newHost(t, f.shard)
			startPeers(req, simPeers(req.backend))
			_, err := relay(t, f.c, req, f.prov, nil)
			if !errors.Is(err, protocol.ErrVerification) || !strings.Contains(err.Error(), "not an active registered enclave") ||
				!strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if req.sealed != nil {
				t.Fatal("the requester holds keys")
			}
		})
	}
}

// TestProvisioningDebugPeers: a production build gives no keys to a debug
// enclave of its own measurement (whose memory its host can read); a dev
// build does.
func TestProvisioningDebugPeers(t *testing.T) {
	for _, dev := range []bool{false, true} {
		t.Run(map[bool]string{false: "production provider", true: "dev provider"}[dev], func(t *testing.T) {
			f := newProvisionFixture(t)
			f.prov.dev = dev
			f.prov.peers = simPeers(f.prov.backend)
			f.prov.boot(f.c)
			req := newHost(t, f.shard)
			b, err := sim.New(sim.Config{Measurement: &f.shard, Debug: true})
			if err != nil {
				t.Fatal(err)
			}
			req.backend, req.dev = b, dev
			startPeers(req, simPeers(req.backend))
			_, err = relay(t, f.c, req, f.prov, nil)
			if dev {
				if err != nil {
					t.Fatalf("dev build refused a debug peer: %v", err)
				}
				return
			}
			if !errors.Is(err, protocol.ErrVerification) || !strings.Contains(err.Error(), "debug") || f.prov.snapshots != 0 {
				t.Fatalf("debug requester: %v (%d snapshots)", err, f.prov.snapshots)
			}
		})
	}
}

// TestProvisioningJudgedAtChainTime: a provider attests and judges at the
// time of its latest verified block, not at the host's clock. Here the
// chain is two days behind the clock: the provider's certificate is issued
// at the chain's time, so the two sides' times disagree by two days and
// the session is refused; on a chain at the clock's time the same peers
// are served (TestProvisioning).
func TestProvisioningJudgedAtChainTime(t *testing.T) {
	start := time.Now().Add(-48 * time.Hour)
	f := newProvisionFixtureAt(t, start)
	req := newHost(t, f.shard)
	startPeers(req, simPeers(req.backend))
	_, err := relay(t, f.c, req, f.prov, nil)
	if !errors.Is(err, protocol.ErrVerification) || !strings.Contains(err.Error(), "invalid RA-TLS certificate: valid "+start.UTC().Format("2006-01-02")) {
		t.Fatalf("provider attested at the host's clock? %v", err)
	}
}

// TestProvisioningHostCollateral: an enclave built to take its peers'
// collateral from the host (Gramine: Intel's root compiled in, collateral
// from the chain's policy) provisions with the chain's collateral, refuses
// without it, and refuses collateral the host altered.
func TestProvisioningHostCollateral(t *testing.T) {
	g, err := devnet.TeerexGenesis(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	good := g.Policy.Collateral()
	tampered := good
	tampered.TCBInfos = slices.Clone(good.TCBInfos)
	env := bytes.Clone(tampered.TCBInfos[0].Envelope)
	env[bytes.Index(env, []byte(`"tcbEvaluationDataNumber"`))+27]++ // a digit of the signed body
	tampered.TCBInfos[0].Envelope = env
	for _, tc := range []struct {
		name       string
		collateral *teerex.Collateral
		want       error
		wantText   string
	}{
		{"chain's collateral", &good, nil, ""},
		{"none", nil, protocol.ErrForbidden, "none came"},
		{"altered", &tampered, protocol.ErrVerification, "TCB info"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newProvisionFixture(t)
			hostCollateral := func(h *host) *enclave.PeerAttestation {
				return &enclave.PeerAttestation{Roots: []*x509.Certificate{h.backend.PKI().Root()}}
			}
			f.prov.collateral = tc.collateral
			f.prov.peers = hostCollateral(f.prov)
			f.prov.boot(f.c)
			req := newHost(t, f.shard)
			req.collateral = tc.collateral
			startPeers(req, hostCollateral(req))
			_, err := relay(t, f.c, req, f.prov, nil)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("provisioning with the chain's collateral: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("%s: %v, want %v (%q)", tc.name, err, tc.want, tc.wantText)
			}
		})
	}
}

func TestProvisioningProviderRefusesRequester(t *testing.T) {
	f := newProvisionFixture(t)
	other := sha256Of("another enclave")
	b, err := sim.New(sim.Config{Measurement: &other})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ratls.NewCertificate(b, ratls.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := b.PKI()
	anyEnclave := &ratls.Verifier{
		Policy:     attestation.Policy{DCAPRoots: []*x509.Certificate{p.Root()}, AcceptedTCBStatuses: []attestation.TCBStatus{attestation.StatusUpToDate}},
		Collateral: func([6]byte) (*pcs.Collateral, error) { return p.Collateral(time.Now()) },
	}
	cfg, err := ratls.ClientConfig(cert, anyEnclave)
	if err != nil {
		t.Fatal(err)
	}
	sc := &serveConn{c: f.prov.c, cp: f.prov.checkpoint}
	conn := tls.Client(sc, cfg)
	if err := conn.Handshake(); err != nil {
		t.Fatalf("client side of the handshake: %v", err)
	}
	// The request, framed as an enclave's; the provider checks the client
	// certificate with the client's Finished and refuses.
	msg := []byte{0xa2, 0x65, 's', 'h', 'a', 'r', 'd', 0x40, 0x68, 'c', 'h', 'a', 'i', 'n', '_', 'i', 'd', 0x60}
	conn.Write(binary.BigEndian.AppendUint32(nil, uint32(len(msg))))
	conn.Write(msg)
	got, err := io.ReadAll(conn)
	if !errors.Is(err, protocol.ErrVerification) || !strings.Contains(err.Error(), "MRENCLAVE not allowed") || len(got) != 0 {
		t.Fatalf("read %d bytes, %v; want a verification error about the MRENCLAVE", len(got), err)
	}
	// The host was never asked for its state (issue 9: an unattested peer
	// costs the provider host no snapshot).
	if sc.asked != 0 {
		t.Fatalf("the provider asked for the checkpoint %d times for a refused peer", sc.asked)
	}
}

// untilCheckpoint runs a provisioning session with a fresh attested
// requester until the provider asks for the checkpoint, and returns the
// provider's session.
func untilCheckpoint(t *testing.T, f *provisionFixture) uint64 {
	t.Helper()
	ctx := context.Background()
	req := newHost(t, f.shard)
	startPeers(req, simPeers(req.backend))
	init := req.initRequest(f.c)
	init.SealedKeys, init.Checkpoint = nil, nil
	ir, err := protocol.CallAs[*protocol.ProvisionInitReply](ctx, req.c, &protocol.ProvisionInit{Init: *init})
	if err != nil {
		t.Fatal(err)
	}
	out, session := ir.Out, uint64(0)
	for range 4 {
		sr, err := protocol.CallAs[*protocol.ProvisionServeReply](ctx, f.prov.c, &protocol.ProvisionServe{Session: session, In: out})
		if err != nil {
			t.Fatal(err)
		}
		if session = sr.Session; sr.NeedCheckpoint {
			return session
		}
		st, err := protocol.CallAs[*protocol.ProvisionStepReply](ctx, req.c, &protocol.ProvisionStep{In: sr.Out})
		if err != nil {
			t.Fatal(err)
		}
		out = st.Out
	}
	t.Fatal("the provider never asked for the checkpoint")
	return 0
}

func TestProvisioningRequests(t *testing.T) {
	ctx := context.Background()
	f := newProvisionFixture(t)
	init := f.prov.initRequest(f.c)

	noPeers := newHost(t, f.shard)
	noPeers.start()
	init.SealedKeys, init.Checkpoint = nil, nil
	if _, err := noPeers.c.Call(ctx, &protocol.ProvisionInit{Init: *init}); !errors.Is(err, protocol.ErrForbidden) {
		t.Fatalf("requester without peer attestation: %v", err)
	}

	req := newHost(t, f.shard)
	startPeers(req, simPeers(req.backend))
	withKeys := *init
	withKeys.SealedKeys = f.prov.sealed
	if _, err := req.c.Call(ctx, &protocol.ProvisionInit{Init: withKeys}); !errors.Is(err, protocol.ErrInvalidInput) {
		t.Fatalf("requester with keys: %v", err)
	}
	if _, err := req.c.Call(ctx, &protocol.ProvisionStep{In: []byte("x")}); !errors.Is(err, protocol.ErrInvalidInput) {
		t.Fatalf("step before provision_init: %v", err)
	}
	if _, err := req.c.Call(ctx, &protocol.ProvisionServe{Checkpoint: f.prov.checkpoint}); !errors.Is(err, protocol.ErrNotInitialized) {
		t.Fatalf("serve before init: %v", err)
	}

	// A checkpoint before the session asks for it (before the requester
	// is attested) is refused.
	if _, err := f.prov.c.Call(ctx, &protocol.ProvisionServe{Checkpoint: f.prov.checkpoint, In: []byte("hello")}); !errors.Is(err, protocol.ErrInvalidInput) {
		t.Fatalf("checkpoint with the first flight: %v", err)
	}
	// A provider refuses checkpoints that are not its own.
	for name, cp := range map[string][]byte{"garbage": []byte("garbage checkpoint"), "truncated": f.prov.checkpoint[:20]} {
		session := untilCheckpoint(t, f)
		if _, err := f.prov.c.Call(ctx, &protocol.ProvisionServe{Session: session, Checkpoint: cp}); !errors.Is(err, protocol.ErrSealing) {
			t.Fatalf("checkpoint %s: %v", name, err)
		}
	}
	if _, err := f.prov.c.Call(ctx, &protocol.ProvisionServe{Session: 99, In: []byte("x")}); !errors.Is(err, protocol.ErrInvalidInput) {
		t.Fatalf("unknown session: %v", err)
	}
	// Garbage instead of a ClientHello ends the session.
	if _, err := f.prov.c.Call(ctx, &protocol.ProvisionServe{In: []byte("GET / HTTP/1.1\r\n\r\n")}); !errors.Is(err, protocol.ErrVerification) {
		t.Fatalf("garbage client hello: %v", err)
	}
	// The provider still serves blocks.
	if _, err := f.prov.process(f.c, 3); err != nil {
		t.Fatal(err)
	}
}
