package enclave

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/attestation/ratls"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/seal"
)

// PeerAttestation says which peer enclaves this enclave trusts with the
// shard's keys. It must come from the enclave's own trusted configuration
// (compiled in, or derived from the TEE backend), never from the host.
type PeerAttestation struct {
	// Roots anchor peers' PCK chains and collateral: Intel's SGX Root CA
	// in production, the sim backend's dev root in development.
	Roots []*x509.Certificate
	// Collateral supplies DCAP collateral (TCB info, QE identity, CRLs) per
	// FMSPC. It may come from an untrusted source: it is verified under
	// Roots. Nil means the host supplies it with the provisioning request
	// (ProvisionInit, ProvisionServe: the chain's policy collateral, which
	// Intel signs).
	Collateral ratls.CollateralFunc
	// AcceptedTCBStatuses lists the platform TCB statuses that pass; empty
	// means UpToDate and SWHardeningNeeded.
	AcceptedTCBStatuses []attestation.TCBStatus
}

// Provisioning errors, wrapped in the *protocol.Error the host gets (code
// CodeVerification for a refused peer or a broken session).
var (
	// ErrNoPeerAttestation means the enclave was built without a peer
	// attestation configuration, so it can neither request nor serve keys.
	ErrNoPeerAttestation = errors.New("provisioning: no peer attestation configured")
	// ErrProvisionPayload means the provider's payload is malformed or for
	// another shard or chain.
	ErrProvisionPayload = errors.New("provisioning: bad payload")
)

// Bounds of provisioning.
const (
	// maxProvisionSessions bounds a provider's open sessions; a new one
	// evicts the oldest, so abandoned sessions cannot block provisioning.
	maxProvisionSessions = 4
	// maxProvisionMessage bounds a message inside the TLS session.
	maxProvisionMessage = 4 << 20
)

// provisionRequest is what the requester asks for, inside TLS.
type provisionRequest struct {
	Shard   [32]byte `cbor:"shard"`
	ChainID string   `cbor:"chain_id"`
	// Genesis is the requester's genesis ID: a provider gives keys only to
	// a peer that follows the same chain.
	Genesis [32]byte `cbor:"genesis"`
	// Release is the requester's (Config.Release; 0 from builds before
	// releases, meaning 1). Its attested measurement vouches for it.
	Release uint64 `cbor:"release,omitempty"`
}

// provisionPayload is the provider's answer, inside TLS.
type provisionPayload struct {
	Shard   [32]byte `cbor:"shard"`
	ChainID string   `cbor:"chain_id"`
	Genesis [32]byte `cbor:"genesis"`
	// Signer is the provider's chain account, and Registry its host's
	// proofs of its registration (protocol.ProvisionServe.Registry).
	Signer     tx.Address             `cbor:"signer"`
	Registry   []protocol.ProvedValue `cbor:"registry"`
	Shielding  []byte                 `cbor:"shielding"`
	State      []byte                 `cbor:"state"`
	Checkpoint checkpoint             `cbor:"checkpoint"`
	// Release is the provider's (as provisionRequest.Release).
	Release uint64 `cbor:"release,omitempty"`
}

// provisioning is the enclave's provisioning state.
type provisioning struct {
	// requester side (phaseProvisioning)
	init    *protocol.Init
	signer  []byte // the new signer, sealed
	client  *pump
	payload *provisionPayload // set by the session when it received one

	// provider side
	sessions map[uint64]*pump
	order    []uint64 // session IDs, oldest first
	next     uint64
}

// verifier returns the RA-TLS verifier for peers: a measurement of
// allowed (any if empty: the caller checks it after the handshake), under
// the configured roots; debug peers only in a dev build; quotes,
// collateral and certificates judged at time at.
func (e *Enclave) peerVerifier(at time.Time, host *teerex.Collateral, allowed [][32]byte) (*ratls.Verifier, error) {
	p := e.cfg.Peers
	if p == nil || len(p.Roots) == 0 {
		return nil, ErrNoPeerAttestation
	}
	var forQuote func([]byte) (*pcs.Collateral, error)
	if p.Collateral == nil {
		if host == nil {
			return nil, fmt.Errorf("%w: this build takes the peers' collateral from the host, and none came", ErrNoPeerAttestation)
		}
		forQuote = host.ForQuote
	}
	statuses := p.AcceptedTCBStatuses
	if len(statuses) == 0 {
		statuses = []attestation.TCBStatus{attestation.StatusUpToDate, attestation.StatusSWHardeningNeeded}
	}
	return &ratls.Verifier{
		Policy: attestation.Policy{
			DCAPRoots:           p.Roots,
			AllowedMRENCLAVE:    allowed,
			AllowDebug:          e.cfg.Dev,
			AcceptedTCBStatuses: statuses,
		},
		Collateral:         p.Collateral,
		CollateralForQuote: forQuote,
		Now:                func() time.Time { return at },
	}, nil
}

// tlsConfig builds this side's RA-TLS configuration with a fresh
// certificate (a fresh key and quote per session), verifying the peer at
// time at against allowed (peerVerifier), and returns the verifier too.
func (e *Enclave) tlsConfig(server bool, at time.Time, host *teerex.Collateral, allowed [][32]byte) (*tls.Config, *ratls.Verifier, error) {
	v, err := e.peerVerifier(at, host, allowed)
	if err != nil {
		return nil, nil, err
	}
	opts := ratls.CertOptions{CommonName: "integritee-provisioning", Validity: time.Hour, Now: at}
	cert, err := ratls.NewCertificate(e.cfg.Backend, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("provisioning: %w", err)
	}
	var cfg *tls.Config
	if server {
		cfg, err = ratls.ServerConfig(cert, v)
	} else {
		cfg, err = ratls.ClientConfig(cert, v)
	}
	return cfg, v, err
}

// provisionInit starts a requester (see protocol.ProvisionInit).
func (e *Enclave) provisionInit(r *protocol.ProvisionInit) (protocol.Reply, error) {
	if e.phase != phaseNew {
		return nil, protocol.Errorf(protocol.CodeAlreadyInitialized, "init was already sent")
	}
	in := r.Init
	if in.ChainID == "" {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "empty chain ID")
	}
	if in.SealedKeys != nil || len(in.Checkpoint) > 0 {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "a provisioning requester starts without keys and checkpoint")
	}
	// A fresh enclave has verified no block, so it has no time of its own
	// for the handshake: it takes the clock's, then judges the provider
	// again at the time of the checkpoint header it receives (below). Any
	// measurement passes the handshake: a provider of another one (an
	// earlier release) is checked against the shard's configuration once
	// its payload names the chain state to check it in (checkProvider).
	cfg, _, err := e.tlsConfig(false, time.Now(), r.Collateral, nil)
	if errors.Is(err, ErrNoPeerAttestation) {
		return nil, protocol.Errorf(protocol.CodeForbidden, "%v", err)
	}
	if err != nil {
		return nil, err
	}
	// The signer is this enclave's own: created here, never provisioned.
	k, err := keys.Generate()
	if err != nil {
		return nil, fmt.Errorf("generate signer: %w", err)
	}
	_, genesis, err := genesisOf(&in)
	if err != nil {
		return nil, err
	}
	sealed, err := k.Seal(e.cfg.Backend, SealScope(in.Shard, genesis))
	if err != nil {
		return nil, fmt.Errorf("seal signer: %w", err)
	}
	req := provisionRequest{Shard: in.Shard, ChainID: in.ChainID, Genesis: genesis, Release: e.release()}
	p := newPump(protocol.MaxProvisionRecord)
	e.prov = provisioning{init: &in, signer: sealed.Signer, client: p}
	got := &e.prov
	p.run(func(conn net.Conn) error {
		c := tls.Client(conn, cfg)
		if err := c.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake with the provider: %w", err)
		}
		if err := writeMessage(c, req); err != nil {
			return err
		}
		var pl provisionPayload
		if err := readMessage(c, &pl); err != nil {
			return err
		}
		// The clock is the host's: judge the provider again at the time of
		// the chain block it says it is at, so that a host that turns the
		// clock back cannot pass off a platform whose TCB was revoked or
		// whose collateral had expired by then.
		hdr, err := protocol.DecodeSignedHeader(pl.Checkpoint.Header, in.ChainID)
		if err != nil {
			return fmt.Errorf("%w: checkpoint header: %w", ErrProvisionPayload, err)
		}
		v, err := e.peerVerifier(hdr.Time, r.Collateral, nil)
		if err != nil {
			return err
		}
		res, err := v.VerifyCertificate(c.ConnectionState().PeerCertificates[0])
		if err != nil {
			return fmt.Errorf("provider at the time of its checkpoint (%v): %w", hdr.Time, err)
		}
		// And the chain state as of the checkpoint header: the provider
		// must be an active enclave of its measurement, and that must be
		// this one or the shard's release before it.
		st, err := provedAt(hdr, pl.Registry)
		if err != nil {
			return err
		}
		if err := e.checkProvider(&in, hdr, st, &pl, res.MRENCLAVE); err != nil {
			return err
		}
		if err := checkProviderRegistered(hdr, st, &pl, res.MRENCLAVE); err != nil {
			return err
		}
		got.payload = &pl
		// Our close_notify is left in the output; the provider is done.
		return c.Close()
	})
	out, ended, err := p.step(nil)
	if err == nil && ended {
		err = errors.New("session ended before the handshake")
	}
	if err != nil {
		e.prov = provisioning{}
		return nil, protocol.Errorf(protocol.CodeVerification, "provisioning: %v", err)
	}
	e.phase = phaseProvisioning
	e.log.Info("provisioning requested", "shard", fmt.Sprintf("%x", in.Shard))
	return &protocol.ProvisionInitReply{MRENCLAVE: e.mrenclave, SignerPublic: k.SignerPublic(), Out: out}, nil
}

// ErrProviderNotRegistered means the provider is not an active registered
// enclave of this measurement as the chain's state at its checkpoint
// shows, or its host's proofs of that do not verify.
var ErrProviderNotRegistered = errors.New("provisioning: provider is not an active registered enclave")

// provedAt verifies the provider host's proofs against the app hash of
// the checkpoint header (the state after the block before it).
func provedAt(hdr *cmttypes.SignedHeader, proved []protocol.ProvedValue) (provedState, error) {
	st := provedState{}
	for _, v := range proved {
		if err := v.Proof.Verify(hdr.AppHash, v.Key, v.Value); err != nil {
			return nil, fmt.Errorf("%w: proof of %q at height %d: %w", ErrProviderNotRegistered, v.Key, hdr.Height-1, err)
		}
		st[string(v.Key)] = v.Value
	}
	return st, nil
}

// checkProviderRegistered checks the provider's registration, of
// measurement m, in the proved state: the state teerex's own Active reads.
func checkProviderRegistered(hdr *cmttypes.SignedHeader, st provedState, pl *provisionPayload, m [32]byte) error {
	enc, err := st.active(pl.Signer, hdr.Time)
	if err != nil {
		return fmt.Errorf("%w: %s at height %d: %w", ErrProviderNotRegistered, pl.Signer, hdr.Height-1, err)
	}
	if [32]byte(enc.MRENCLAVE) != m {
		return fmt.Errorf("%w: %s is registered with MRENCLAVE %s, attested %x", ErrProviderNotRegistered, pl.Signer, enc.MRENCLAVE, m)
	}
	return nil
}

// provedState is chain state read from values proved against an app hash;
// a key without a proof is an error, never an absent value.
type provedState map[string][]byte

// get decodes the proved value of key into v; found is false for a value
// proved absent.
func (s provedState) get(key []byte, v any) (found bool, err error) {
	b, ok := s[string(key)]
	if !ok {
		return false, fmt.Errorf("%w: no proof of %q", ErrProviderNotRegistered, key)
	}
	if b == nil {
		return false, nil
	}
	if err := codec.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%w: decode %q: %w", ErrProviderNotRegistered, key, err)
	}
	return true, nil
}

// active applies teerex's rule for an active registration (the one the
// chain applies, teerex.Enclave.CheckActive) to the proved registration of
// signer, the policy and the allowlist.
func (s provedState) active(signer tx.Address, now time.Time) (teerex.Enclave, error) {
	var (
		e teerex.Enclave
		p teerex.Policy
		l teerex.MRENCLAVEs
	)
	if ok, err := s.get(teerex.EnclaveKey(signer), &e); err != nil {
		return e, err
	} else if !ok {
		return e, fmt.Errorf("%w: %s", teerex.ErrNotRegistered, signer)
	}
	if ok, err := s.get(teerex.PolicyKey(), &p); err != nil {
		return e, err
	} else if !ok {
		return e, errors.New("teerex: attestation policy missing from state")
	}
	if !p.AllowAnyMRENCLAVE {
		if _, err := s.get(teerex.AllowlistKey(), &l); err != nil {
			return e, err
		}
	}
	return e, e.CheckActive(&p, l, now)
}

// provisionStep feeds the requester's session.
func (e *Enclave) provisionStep(r *protocol.ProvisionStep) (protocol.Reply, error) {
	if e.phase != phaseProvisioning {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "not provisioning")
	}
	out, ended, err := e.prov.client.step(r.In)
	if err != nil {
		// A refused peer or a tampered record: this enclave cannot start
		// over with the same signer; the host starts a fresh one.
		e.prov.client.close()
		e.phase = phaseFailed
		return nil, protocol.Errorf(protocol.CodeVerification, "provisioning: %v (restart required)", err)
	}
	if !ended {
		return &protocol.ProvisionStepReply{Out: out}, nil
	}
	res, err := e.finishProvisioning()
	if err != nil {
		e.phase = phaseFailed
		return nil, err
	}
	return &protocol.ProvisionStepReply{Out: out, Done: true, Result: res}, nil
}

// finishProvisioning seals what the provider sent as this enclave's own
// and initialises from it like a restart from a checkpoint.
func (e *Enclave) finishProvisioning() (*protocol.ProvisionResult, error) {
	in, pl := e.prov.init, e.prov.payload
	if pl == nil {
		return nil, protocol.Errorf(protocol.CodeVerification, "provisioning: session ended without keys")
	}
	_, genesis, err := genesisOf(in)
	if err != nil {
		return nil, err
	}
	if pl.Shard != in.Shard || pl.ChainID != in.ChainID || pl.Checkpoint.ChainID != in.ChainID || pl.Genesis != genesis {
		return nil, protocol.Errorf(protocol.CodeVerification, "%v: for shard %x on %q (genesis %x), want %x on %q (genesis %x)",
			ErrProvisionPayload, pl.Shard, pl.ChainID, pl.Genesis, in.Shard, in.ChainID, genesis)
	}
	scope := SealScope(in.Shard, genesis)
	hdr, err := protocol.DecodeSignedHeader(pl.Checkpoint.Header, in.ChainID)
	if err != nil || hdr.Height != pl.Checkpoint.Height {
		return nil, protocol.Errorf(protocol.CodeVerification, "%v: checkpoint header: %v", ErrProvisionPayload, err)
	}
	b := e.cfg.Backend
	sealed := keys.Sealed{Signer: e.prov.signer}
	if sealed.Shielding, err = seal.Seal(b, keys.LabelShielding, scope, pl.Shielding); err != nil {
		return nil, err
	}
	if sealed.State, err = seal.Seal(b, keys.LabelState, scope, pl.State); err != nil {
		return nil, err
	}
	// Unseal validates the keys (a bad shielding key or state key size is
	// refused) and gives us our signer's public key.
	k, err := keys.Unseal(b, scope, sealed)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeVerification, "%v: %v", ErrProvisionPayload, err)
	}
	cp := pl.Checkpoint
	cp.Signer = tx.AddressOf(k.SignerPublic())
	cp.Joined = true
	cp.Records = nil // the provider's records, not this enclave's
	cpb, err := protocol.Marshal(&cp)
	if err != nil {
		return nil, err
	}
	sealedCP, err := seal.Seal(b, labelCheckpoint, scope, cpb)
	if err != nil {
		return nil, err
	}
	init := *in
	init.SealedKeys = &protocol.SealedKeys{Signer: sealed.Signer, Shielding: sealed.Shielding, State: sealed.State}
	init.Checkpoint = sealedCP
	e.prov = provisioning{}
	e.phase = phaseNew
	rep, err := e.init(&init)
	if err != nil {
		return nil, err
	}
	ir := rep.(*protocol.InitReply)
	e.log.Info("provisioned", "height", cp.Height, "entries", cp.Entries)
	return &protocol.ProvisionResult{
		ShieldingPublic: ir.ShieldingPublic,
		SealedKeys:      ir.SealedKeys,
		Checkpoint:      sealedCP,
		Height:          cp.Height,
		StateRoot:       cp.Root,
		Entries:         cp.Entries,
	}, nil
}

// provisionServe runs a provider session (see protocol.ProvisionServe).
func (e *Enclave) provisionServe(r *protocol.ProvisionServe) (protocol.Reply, error) {
	if r.Abort {
		e.dropSession(r.Session)
		return &protocol.ProvisionServeReply{Session: r.Session, Done: true}, nil
	}
	id := r.Session
	if id == 0 {
		var err error
		if id, err = e.openSession(r.Collateral); err != nil {
			return nil, err
		}
	}
	p, ok := e.prov.sessions[id]
	if !ok {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "no provisioning session %d", id)
	}
	if len(r.Checkpoint) > 0 {
		if !p.awaits() {
			return nil, protocol.Errorf(protocol.CodeInvalidInput, "provisioning session %d does not want a checkpoint now", id)
		}
		pl, err := e.payloadFor(r.Checkpoint, r.Registry)
		if err != nil {
			e.dropSession(id)
			return nil, err
		}
		p.deliver(pl)
	}
	out, ended, err := p.step(r.In)
	if err != nil {
		e.dropSession(id)
		return nil, protocol.Errorf(protocol.CodeVerification, "provisioning session %d: %v", id, err)
	}
	if ended {
		e.dropSession(id)
	}
	return &protocol.ProvisionServeReply{Session: id, Out: out, Done: ended, NeedCheckpoint: !ended && p.awaits()}, nil
}

// openSession starts a provider session: the TLS handshake, which
// attests the requester, and its request. Only then does the session ask
// the host for the checkpoint to serve (NeedCheckpoint, deliverCheckpoint),
// so that no state is copied for a peer that is not attested.
func (e *Enclave) openSession(host *teerex.Collateral) (uint64, error) {
	// Peers are judged at the time of the latest block the light client
	// verified, never at the host's clock.
	trusted := e.lc.Trusted()
	if trusted == nil {
		return 0, protocol.Errorf(protocol.CodeNotInitialized, "no chain block verified yet: no time to judge a peer at")
	}
	// Peers of this measurement, or of the one the shard's configuration
	// (as the blocks this light client verified set it) names as current
	// or next; the release order is checked on the request.
	allowed := [][32]byte{e.mrenclave}
	for _, m := range []*bridge.Config{&e.config.Current, e.config.Next} {
		if m != nil && [32]byte(m.MRENCLAVE) != e.mrenclave {
			allowed = append(allowed, [32]byte(m.MRENCLAVE))
		}
	}
	cfg, v, err := e.tlsConfig(true, trusted.Time, host, allowed)
	if errors.Is(err, ErrNoPeerAttestation) {
		return 0, protocol.Errorf(protocol.CodeForbidden, "%v", err)
	}
	if err != nil {
		return 0, err
	}
	shard, chainID, genesis, self, release := e.shard, e.chainID, e.genesis, e.mrenclave, e.release()
	p := newPump(protocol.MaxProvisionRecord)
	p.run(func(conn net.Conn) error {
		c := tls.Server(conn, cfg)
		if err := c.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake with the requester: %w", err)
		}
		var req provisionRequest
		if err := readMessage(c, &req); err != nil {
			return err
		}
		if req.Shard != shard || req.ChainID != chainID || req.Genesis != genesis {
			return fmt.Errorf("%w: requester asks for shard %x on %q (genesis %x)", ErrProvisionPayload, req.Shard, req.ChainID, req.Genesis)
		}
		res, err := v.VerifyCertificate(c.ConnectionState().PeerCertificates[0])
		if err != nil {
			return err
		}
		if err := checkRequester(self, release, res.MRENCLAVE, max(req.Release, 1)); err != nil {
			return err
		}
		pl, err := p.await()
		if err != nil {
			return err
		}
		if err := writeMessage(c, pl); err != nil {
			return err
		}
		return c.Close()
	})
	if e.prov.sessions == nil {
		e.prov.sessions = map[uint64]*pump{}
	}
	for len(e.prov.order) >= maxProvisionSessions {
		e.dropSession(e.prov.order[0])
	}
	e.prov.next++
	id := e.prov.next
	e.prov.sessions[id] = p
	e.prov.order = append(e.prov.order, id)
	e.log.Info("provisioning session opened", "session", id)
	return id, nil
}

// payloadFor builds what a session serves: the keys and the host's
// checkpoint, which must be this enclave's, of its chain, and not ahead of
// it.
func (e *Enclave) payloadFor(sealedCP []byte, registry []protocol.ProvedValue) (*provisionPayload, error) {
	cp, err := openCheckpoint(e.cfg.Backend, e.scope, sealedCP)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeSealing, "%v", err)
	}
	if cp.ChainID != e.chainID || cp.Signer != e.signerAddress() {
		return nil, protocol.Errorf(protocol.CodeSealing, "checkpoint of chain %q or another enclave", cp.ChainID)
	}
	if cp.Height > e.lc.Height() {
		return nil, protocol.Errorf(protocol.CodeState, "checkpoint at %d is ahead of the enclave at %d", cp.Height, e.lc.Height())
	}
	// The keys package hands out no key bytes; sealing and opening again
	// yields the shielding key's serialisation.
	sealed, err := e.keys.Seal(e.cfg.Backend, e.scope)
	if err != nil {
		return nil, err
	}
	shieldingKey, err := seal.Open(e.cfg.Backend, keys.LabelShielding, e.scope, sealed.Shielding)
	if err != nil {
		return nil, err
	}
	return &provisionPayload{
		Shard: e.shard, ChainID: e.chainID, Genesis: e.genesis, Signer: e.signerAddress(), Registry: registry,
		Shielding: shieldingKey, State: e.keys.StateKey(), Checkpoint: *cp, Release: e.release(),
	}, nil
}

func (e *Enclave) dropSession(id uint64) {
	if p, ok := e.prov.sessions[id]; ok {
		p.close()
		delete(e.prov.sessions, id)
	}
	for i, s := range e.prov.order {
		if s == id {
			e.prov.order = append(e.prov.order[:i], e.prov.order[i+1:]...)
			break
		}
	}
}

// writeMessage writes v as a length-prefixed CBOR message.
func writeMessage(w io.Writer, v any) error {
	b, err := protocol.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxProvisionMessage {
		return fmt.Errorf("provisioning message of %d bytes, limit %d", len(b), maxProvisionMessage)
	}
	_, err = w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
	if err == nil {
		_, err = w.Write(b)
	}
	return err
}

// readMessage reads a length-prefixed CBOR message into v.
func readMessage(r io.Reader, v any) error {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return fmt.Errorf("read provisioning message: %w", err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > maxProvisionMessage {
		return fmt.Errorf("%w: message of %d bytes", ErrProvisionPayload, size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("read provisioning message: %w", err)
	}
	if err := protocol.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %w", ErrProvisionPayload, err)
	}
	return nil
}
