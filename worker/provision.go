package worker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/store"
)

// Key and state provisioning between the workers of a shard (design
// sections 5 and 6).
//
// A worker whose store has no keys yet asks the chain for the other
// active enclaves registered with the shard's measurement. If there are
// none it is the shard's first worker and its enclave creates the keys.
// Otherwise its enclave gets the shard's shielding and state keys and a
// checkpoint from one of theirs over mutual RA-TLS between the two
// enclaves (enclave/provision.go): this host and the provider's only
// relay the TLS records, so neither learns a key nor can substitute its
// own, and each enclave accepts only a peer whose quote verifies with the
// same MRENCLAVE. The provider host then streams the encrypted state
// entries of the same store snapshot as the checkpoint; the new enclave
// checks them against the checkpoint's state root (Resume), the host
// persists keys, entries and checkpoint, and the worker continues at the
// checkpoint's height + 1 like a restarted one.
//
// The provider side is an HTTP endpoint (ProvisionHandler), served on the
// worker's RPC address (the URL it registers on chain, where new workers
// find it) and, if configured, on a listener of its own
// (ProvisionConfig.Listen; both in listen.go):
//
//	POST /provision/session           TLS bytes -> TLS bytes; opens a session
//	                                  (Provision-Session header: its token)
//	POST /provision/session/{token}   TLS bytes -> TLS bytes
//	GET  /provision/snapshot/{token}  the session's entries: frames of
//	                                  u32 length || CBOR []protocol.Entry,
//	                                  ended by a zero length
//
// Direct invocation with several workers needs an order among them (a
// sidechain with rotating block production, a later milestone): a direct
// call reaches only the worker it is sent to, and the others do not
// follow it. Until then a worker refuses direct calls from the moment it
// takes a snapshot for an attested requester (its enclave asks for the
// checkpoint only after the handshake verified the requester, so a peer
// that merely connects copies no state and disables nothing), and while
// the chain lists more than one active enclave for the shard (direct.go;
// the chain itself confirms no direct block then); indirect calls (ordered
// by the chain) are safe with any number. A first flight is at most
// maxFirstFlight bytes.

// ProvisionConfig configures key provisioning.
type ProvisionConfig struct {
	// Listen is an extra address for the provisioning endpoint (host:port,
	// port 0 for a free one), besides the RPC address; empty: none.
	Listen string
	// From lists provisioning base URLs (http://host:port) of peer workers
	// to ask for the shard's keys. Empty means the worker URLs of the
	// active enclaves registered for the shard.
	From []string
	// Disabled makes the worker create its own keys even when other
	// enclaves serve the shard (a separate deployment of the same
	// measurement; their states diverge).
	Disabled bool
}

// Provisioning errors.
var (
	// ErrNoSnapshot means the provider has not processed a block yet.
	ErrNoSnapshot = errors.New("worker: provider has no state snapshot yet")
	// ErrProvisioning means a provisioning attempt failed; the worker
	// retries it.
	ErrProvisioning = errors.New("worker: provisioning failed")
)

// Bounds of the provisioning endpoint.
const (
	maxProvisionSessions = 4
	maxFirstFlight       = 64 << 10
	// A client IP may open maxProvisionOpens sessions per
	// provisionOpenWindow.
	maxProvisionOpens   = 16
	provisionOpenWindow = time.Minute
	provisionSessionTTL = 2 * time.Minute
	provisionChunk      = 1024 // entries per snapshot frame
	maxSnapshotFrame    = 16 << 20
	headerSession       = "Provision-Session"
	headerDone          = "Provision-Done"
)

// provisionSession is a provider host's record of one requester.
type provisionSession struct {
	enclave uint64 // the enclave's session ID
	entries []protocol.Entry
	created time.Time
	// counted is true from the snapshot until the session completes or is
	// dropped: while it is, direct calls are refused.
	counted bool
}

// provisionServer is the provider side's state. opened and ended tell
// the worker when a session starts and stops holding a snapshot
// (opened, ended), however it ends: completed,
// refused, evicted or expired.
type provisionServer struct {
	mu       sync.Mutex
	sessions map[string]*provisionSession
	opened   func()
	ended    func(completed bool)
	// opens are the recent session openings per client IP (allowOpen).
	opens map[string][]time.Time
	now   func() time.Time
}

// allowOpen rate-limits new sessions per client IP: provisioning is rare,
// and each opening costs the enclave a handshake with a fresh quote.
func (ps *provisionServer) allowOpen(ip string) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := ps.now()
	if ps.opens == nil {
		ps.opens = map[string][]time.Time{}
	}
	for k, ts := range ps.opens {
		// Forget openings older than the window.
		i := 0
		for i < len(ts) && now.Sub(ts[i]) >= provisionOpenWindow {
			i++
		}
		if ts = ts[i:]; len(ts) == 0 {
			delete(ps.opens, k)
		} else {
			ps.opens[k] = ts
		}
	}
	if len(ps.opens[ip]) >= maxProvisionOpens {
		return false
	}
	ps.opens[ip] = append(ps.opens[ip], now)
	return true
}

// ProvisionHandler serves the provisioning endpoint (see above). It
// answers 503 until the worker is ready.
func (w *Worker) ProvisionHandler() http.Handler {
	ps := &provisionServer{sessions: map[string]*provisionSession{}, opened: func() {}, ended: w.peerProvisioned, now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /provision/session", func(rw http.ResponseWriter, r *http.Request) { w.serveProvisionStep(ps, rw, r, "") })
	mux.HandleFunc("POST /provision/session/{token}", func(rw http.ResponseWriter, r *http.Request) {
		w.serveProvisionStep(ps, rw, r, r.PathValue("token"))
	})
	mux.HandleFunc("GET /provision/snapshot/{token}", func(rw http.ResponseWriter, r *http.Request) {
		w.serveSnapshot(ps, rw, r, r.PathValue("token"))
	})
	return mux
}

func (w *Worker) readyForPeers() bool {
	select {
	case <-w.ready:
		return true
	default:
		return false
	}
}

// registryProofs are the proofs of this enclave's registration, the
// attestation policy and the allowlist at height, which a requester
// checks before it takes the shard's keys from this worker; nil if the
// node cannot give them (the requester then refuses, and tries again).
func (w *Worker) registryProofs(ctx context.Context, height int64) []protocol.ProvedValue {
	if height < 1 {
		return nil
	}
	signer := w.Signer()
	queries := []struct {
		path string
		key  []byte
	}{
		{"/teerex/enclave/" + signer.String(), teerex.EnclaveKey(signer)},
		{"/teerex/policy", teerex.PolicyKey()},
		{"/teerex/allowlist", teerex.AllowlistKey()},
		// The shard's configuration, which a requester of a later release
		// checks names this measurement and its own.
		{"/bridge/shard/" + types.Hash(w.cfg.Shard).String(), bridge.ShardKey(types.Hash(w.cfg.Shard))},
	}
	out := make([]protocol.ProvedValue, 0, len(queries))
	for _, q := range queries {
		v, p, err := w.node.ProofAt(ctx, q.path, q.key, height)
		if err != nil {
			w.log.Warn("registry proof for provisioning", "path", q.path, "height", height, "err", err)
			return nil
		}
		out = append(out, protocol.ProvedValue{Key: q.key, Value: v, Proof: *p})
	}
	return out
}

// peerCollateral is the PCS collateral of the chain's attestation policy
// (a proved query), for an enclave that takes its peers' collateral from
// the host (Gramine builds); nil if the chain has none or cannot be read,
// in which case such an enclave refuses the peer.
func (w *Worker) peerCollateral(ctx context.Context) *teerex.Collateral {
	p, _, err := w.node.Policy(ctx)
	if err != nil {
		w.log.Warn("attestation collateral for provisioning", "err", err)
		return nil
	}
	if len(p.TCBInfos) == 0 || p.QEIdentity == nil {
		return nil
	}
	c := p.Collateral()
	return &c
}

func (w *Worker) serveProvisionStep(ps *provisionServer, rw http.ResponseWriter, r *http.Request, token string) {
	if !w.readyForPeers() {
		http.Error(rw, "worker not ready", http.StatusServiceUnavailable)
		return
	}
	limit := int64(protocol.MaxProvisionRecord)
	if token == "" {
		if ip, _, err := net.SplitHostPort(r.RemoteAddr); err != nil || !ps.allowOpen(ip) {
			http.Error(rw, "too many provisioning sessions from this address", http.StatusTooManyRequests)
			return
		}
		// A first flight is a ClientHello: a few hundred bytes.
		limit = maxFirstFlight
	}
	in, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, limit))
	if err != nil {
		http.Error(rw, "request body: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	req := &protocol.ProvisionServe{In: in}
	var s *provisionSession
	if token == "" {
		s = &provisionSession{created: time.Now()}
		req.Collateral = w.peerCollateral(r.Context())
	} else if s = ps.get(token); s == nil {
		http.Error(rw, "no such provisioning session", http.StatusNotFound)
		return
	} else {
		req.Session = s.enclave
	}
	rep, err := callAs[*protocol.ProvisionServeReply](r.Context(), w.sup, req)
	if err == nil && rep.NeedCheckpoint {
		// The requester is attested and asked for the shard: only now is
		// the state copied, and direct calls refused (direct.go), since
		// the snapshot must hold every one this worker accepted.
		rep, err = w.serveCheckpoint(r.Context(), ps, s, rep)
	}
	if err != nil {
		w.log.Warn("provisioning session refused", "err", err)
		if token != "" {
			ps.drop(token)
		}
		http.Error(rw, err.Error(), http.StatusForbidden)
		return
	}
	if token == "" {
		s.enclave = rep.Session
		if token, err = ps.add(s); err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		w.log.Info("provisioning session opened", "session", rep.Session)
	}
	rw.Header().Set(headerSession, token)
	if rep.Done {
		ps.complete(s)
		rw.Header().Set(headerDone, "1")
	}
	rw.Header().Set("Content-Type", "application/octet-stream")
	rw.Write(rep.Out)
}

// serveCheckpoint takes the snapshot a session serves and hands its
// checkpoint to the enclave, which answers with the payload; rep's output
// comes first.
func (w *Worker) serveCheckpoint(ctx context.Context, ps *provisionServer, s *provisionSession, rep *protocol.ProvisionServeReply) (*protocol.ProvisionServeReply, error) {
	ps.count(s)
	cp, entries, err := w.snapshot()
	if err != nil {
		return nil, err
	}
	s.entries = entries
	// The requester checks this enclave's registration against the
	// checkpoint header's app hash: the state after the block before.
	more, err := callAs[*protocol.ProvisionServeReply](ctx, w.sup, &protocol.ProvisionServe{
		Session: rep.Session, Checkpoint: cp.Sealed, Registry: w.registryProofs(ctx, cp.Height-1),
	})
	if err != nil {
		return nil, err
	}
	more.Out = append(rep.Out, more.Out...)
	return more, nil
}

func (w *Worker) serveSnapshot(ps *provisionServer, rw http.ResponseWriter, r *http.Request, token string) {
	s := ps.get(token)
	if s == nil {
		http.Error(rw, "no such provisioning session", http.StatusNotFound)
		return
	}
	// One download per session: the entries are not kept longer than
	// needed.
	ps.drop(token)
	rw.Header().Set("Content-Type", "application/octet-stream")
	for i := 0; i < len(s.entries); i += provisionChunk {
		if err := writeFrame(rw, s.entries[i:min(i+provisionChunk, len(s.entries))]); err != nil {
			return
		}
	}
	rw.Write([]byte{0, 0, 0, 0})
	w.log.Info("provisioning snapshot served", "entries", len(s.entries))
}

func writeFrame(w io.Writer, entries []protocol.Entry) error {
	b, err := protocol.Marshal(entries)
	if err != nil {
		return err
	}
	if _, err := w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b)))); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (ps *provisionServer) add(s *provisionSession) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b[:])
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.expire()
	for len(ps.sessions) >= maxProvisionSessions {
		oldest := ""
		for t, x := range ps.sessions {
			if oldest == "" || x.created.Before(ps.sessions[oldest].created) {
				oldest = t
			}
		}
		ps.uncount(ps.sessions[oldest], false)
		delete(ps.sessions, oldest)
	}
	ps.sessions[token] = s
	return token, nil
}

// count records that s holds a snapshot.
func (ps *provisionServer) count(s *provisionSession) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !s.counted {
		s.counted = true
		ps.opened()
	}
}

// complete records that s handed the keys over; it stays for the
// snapshot's download.
func (ps *provisionServer) complete(s *provisionSession) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.uncount(s, true)
}

// uncount ends s's count, with ps.mu held.
func (ps *provisionServer) uncount(s *provisionSession, completed bool) {
	if s != nil && s.counted {
		s.counted = false
		ps.ended(completed)
	}
}

func (ps *provisionServer) get(token string) *provisionSession {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.expire()
	return ps.sessions[token]
}

func (ps *provisionServer) drop(token string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.uncount(ps.sessions[token], false)
	delete(ps.sessions, token)
}

func (ps *provisionServer) expire() {
	for t, s := range ps.sessions {
		if time.Since(s.created) > provisionSessionTTL {
			ps.uncount(s, false)
			delete(ps.sessions, t)
		}
	}
}

// snapshot reads the persisted checkpoint and the entries of the same
// commit, from one view of the store: commits go on meanwhile.
func (w *Worker) snapshot() (store.Checkpoint, []protocol.Entry, error) {
	var entries []protocol.Entry
	cp, ok, err := w.store.Snapshot(func(e protocol.Entry) error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return cp, nil, err
	}
	if !ok {
		return cp, nil, ErrNoSnapshot
	}
	return cp, entries, nil
}

// startProvisioning serves the provisioning endpoint and, for a worker
// without keys in a shard that has other enclaves, provisions the keys
// and state (retrying until a provider answers or ctx is done). It runs
// before the enclave is started for good.
func (w *Worker) startProvisioning(ctx context.Context) (stop func(), err error) {
	stop, err = w.serveProvisioning()
	if err != nil {
		return nil, err
	}
	if err := w.provisionIfNeeded(ctx); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

func (w *Worker) provisionIfNeeded(ctx context.Context) error {
	if w.cfg.Provision.Disabled {
		return nil
	}
	keys, err := w.store.SealedKeys()
	if err != nil || keys != nil {
		return err
	}
	b := backoff{}
	for {
		urls, self, err := w.otherProviders(ctx)
		if err == nil && len(urls) == 0 && self {
			// This worker's own earlier registration, whose store is gone
			// (recover.go): new keys would fork the shard.
			return fmt.Errorf("%w: the only live enclave registered for the shard is this worker's earlier one (%s); its keys went with its store: restore the data directory (docs/operations-recovery.md)",
				ErrKeysLost, w.ownURL())
		}
		if err == nil && len(urls) == 0 {
			w.log.Info("no other enclave serves the shard: creating its keys")
			return nil
		}
		if err == nil {
			for _, u := range urls {
				if err = w.provisionFrom(ctx, u); err == nil {
					return nil
				}
				w.log.Warn("provisioning failed", "provider", u, "err", err)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.wait(ctx, w.log, "provisioning", err)
	}
}

// maxProviders bounds the peers a provisioning attempt tries, however
// many enclaves the shard's measurement has registered.
const maxProviders = 16

// providers returns the provisioning URLs to try, empty when no other
// active enclave is registered for the shard.
func (w *Worker) providers(ctx context.Context) ([]string, error) {
	st, err := w.node.Shard(ctx, types.Hash(w.cfg.Shard))
	if err != nil {
		return nil, fmt.Errorf("shard %x: %w", w.cfg.Shard, err)
	}
	pol, _, err := w.node.Policy(ctx)
	if err != nil {
		return nil, err
	}
	// The measurement serving now first; during an upgrade also the
	// shard's other configured one, and the shard's first (its ID): a new
	// release's first worker gets the keys from the old release's, before
	// or after the enactment height (docs/upgrades.md). Never none while
	// any of them has a live enclave, so that no worker creates new keys
	// for a shard that has some.
	ms := []types.Hash{st.Shard.MRENCLAVEAt(uint64(max(st.Height, 0)))}
	for _, c := range []*bridge.Config{&st.Shard.Config, st.Shard.Pending, {MRENCLAVE: types.Hash(w.cfg.Shard)}} {
		if c != nil && !slices.Contains(ms, c.MRENCLAVE) {
			ms = append(ms, c.MRENCLAVE)
		}
	}
	var urls []string
	for _, m := range ms {
		if _, _, err := w.node.EachEnclave(ctx, &m, func(e teerex.Enclave) bool {
			if e.WorkerURL != "" && !time.Now().After(e.ExpiresAt(pol.RenewalPeriod())) {
				urls = append(urls, httpURL(e.WorkerURL))
			}
			return len(urls) < maxProviders
		}); err != nil {
			return nil, fmt.Errorf("enclaves of %s: %w", m, err)
		}
	}
	if len(urls) > 0 && len(w.cfg.Provision.From) > 0 {
		urls = w.cfg.Provision.From
	}
	return urls, nil
}

// httpURL maps a registered ws(s):// worker URL to http(s)://.
func httpURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	switch p.Scheme {
	case "ws":
		p.Scheme = "http"
	case "wss":
		p.Scheme = "https"
	}
	return strings.TrimSuffix(p.String(), "/")
}

// provisionFrom provisions a fresh enclave from the provider at base and
// persists the result (supervisor.Provision), which keeps that enclave
// running: the worker's Start finds it and does not load the state again.
func (w *Worker) provisionFrom(ctx context.Context, base string) error {
	var res *protocol.ProvisionResult
	err := w.sup.Provision(ctx, func(e Enclave) (*protocol.InitReply, *transition, error) {
		var (
			id      *protocol.ProvisionInitReply
			entries []protocol.Entry
			err     error
		)
		if id, res, entries, err = w.takeShard(ctx, base, e); err != nil {
			return nil, nil, err
		}
		// The identity a restart from the store would report (Init with
		// these keys and checkpoint; the enclave's finishProvisioning ran
		// that Init): a later restart checks its signer and shielding key
		// against it (ErrIdentityChanged).
		return &protocol.InitReply{
				MRENCLAVE: id.MRENCLAVE, SignerPublic: id.SignerPublic, ShieldingPublic: res.ShieldingPublic,
				SealedKeys: res.SealedKeys, Height: res.Height, StateRoot: res.StateRoot,
			}, chainStep(store.Batch{
				Checkpoint: store.Checkpoint{Height: res.Height, StateRoot: res.StateRoot, Sealed: res.Checkpoint},
				Changes:    entries,
			}), nil
	})
	if err != nil {
		return err
	}
	w.log.Info("provisioned the shard's keys and state", "provider", base, "height", res.Height,
		"entries", res.Entries, "state_root", hex.EncodeToString(res.StateRoot[:]))
	return nil
}

// takeShard has e take the shard's keys, checkpoint and entries from the
// provider at base, and returns e's identity and them, once e resumed at
// the checkpoint.
func (w *Worker) takeShard(ctx context.Context, base string, e Enclave) (*protocol.ProvisionInitReply, *protocol.ProvisionResult, []protocol.Entry, error) {
	init := w.sup.init // no keys, no checkpoint
	ir, err := callAs[*protocol.ProvisionInitReply](ctx, e, &protocol.ProvisionInit{Init: init, Collateral: w.peerCollateral(ctx)})
	if err != nil {
		return nil, nil, nil, err
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	token, out, done, err := postStep(ctx, hc, base+"/provision/session", ir.Out)
	if err != nil {
		return nil, nil, nil, err
	}
	var res *protocol.ProvisionResult
	for range 16 {
		st, err := callAs[*protocol.ProvisionStepReply](ctx, e, &protocol.ProvisionStep{In: out})
		if err != nil {
			return nil, nil, nil, err
		}
		if st.Done {
			res = st.Result
			break
		}
		if done {
			return nil, nil, nil, fmt.Errorf("%w: the provider ended the session first", ErrProvisioning)
		}
		if _, out, done, err = postStep(ctx, hc, base+"/provision/session/"+token, st.Out); err != nil {
			return nil, nil, nil, err
		}
	}
	if res == nil {
		return nil, nil, nil, fmt.Errorf("%w: no result after 16 round trips", ErrProvisioning)
	}
	entries, err := w.loadSnapshot(ctx, hc, base+"/provision/snapshot/"+token, e, res.Entries)
	if err != nil {
		return nil, nil, nil, err
	}
	if res.Entries > 0 {
		// With no entries the enclave resumed by itself.
		rr, err := callAs[*protocol.ResumeReply](ctx, e, &protocol.Resume{})
		if err != nil {
			return nil, nil, nil, err
		}
		if rr.Height != res.Height || rr.StateRoot != res.StateRoot {
			return nil, nil, nil, fmt.Errorf("%w: resumed at %d root %x, provisioned %d root %x", ErrProvisioning, rr.Height, rr.StateRoot, res.Height, res.StateRoot)
		}
	} else if len(entries) > 0 {
		return nil, nil, nil, fmt.Errorf("%w: %d entries for an empty state", ErrProvisioning, len(entries))
	}
	return ir, res, entries, nil
}

func postStep(ctx context.Context, hc *http.Client, u string, body []byte) (token string, out []byte, done bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return "", nil, false, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return "", nil, false, fmt.Errorf("%w: %w", ErrProvisioning, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, protocol.MaxProvisionRecord+1))
	if err != nil {
		return "", nil, false, fmt.Errorf("%w: %w", ErrProvisioning, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && !strings.Contains(u, "/provision/session/"),
		resp.StatusCode == http.StatusMethodNotAllowed:
		return "", nil, false, fmt.Errorf("%w: %s serves no provisioning endpoint (%s): configure the provider's provisioning URL (--provision-from)",
			ErrProvisioning, u, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return "", nil, false, fmt.Errorf("%w: provider: %s: %s", ErrProvisioning, resp.Status, bytes.TrimSpace(b))
	}
	if len(b) > protocol.MaxProvisionRecord {
		return "", nil, false, fmt.Errorf("%w: provider step too large", ErrProvisioning)
	}
	return resp.Header.Get(headerSession), b, resp.Header.Get(headerDone) == "1", nil
}

// loadSnapshot downloads the session's entries, feeds them to the enclave
// and returns them for the store. want is the number of entries of the
// checkpoint, as the enclave reported it (a capacity hint only). The
// frames are read and decoded in a goroutine while the enclave loads the
// previous ones, and handed to it in chunks of the size a restart uses
// (loadChunkEntries, loadChunkBytes): on two cores the host's decoding
// and the enclave's loading overlap.
func (w *Worker) loadSnapshot(ctx context.Context, hc *http.Client, u string, e Enclave, want uint64) ([]protocol.Entry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: hc.Transport}).Do(req) // no overall timeout: the snapshot may be large
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot: %w", ErrProvisioning, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: snapshot: %s", ErrProvisioning, resp.Status)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan []protocol.Entry, 4)
	read := make(chan error, 1)
	go func() {
		defer close(chunks)
		var (
			chunk []protocol.Entry
			size  int
		)
		send := func() error {
			select {
			case chunks <- chunk:
				chunk, size = nil, 0
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := readSnapshot(resp.Body, func(frame []protocol.Entry) error {
			for _, en := range frame {
				chunk = append(chunk, en)
				size += len(en.Value) + 48
				if len(chunk) >= loadChunkEntries || size >= loadChunkBytes {
					if err := send(); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err == nil && len(chunk) > 0 {
			err = send()
		}
		read <- err
	}()
	all := make([]protocol.Entry, 0, min(want, maxSnapshotPrealloc))
	for chunk := range chunks {
		if _, err := callAs[*protocol.LoadEntriesReply](ctx, e, protocol.PackEntries(chunk)); err != nil {
			cancel()
			for range chunks { // let the reader end
			}
			<-read
			return nil, err
		}
		all = append(all, chunk...)
	}
	if err := <-read; err != nil {
		return nil, err
	}
	return all, nil
}

// maxSnapshotPrealloc bounds the entries loadSnapshot reserves room for
// up front: the count is the enclave's word on the provider's checkpoint,
// but a bound keeps a mistake cheap.
const maxSnapshotPrealloc = 8 << 20

// readSnapshot reads snapshot frames from r until the terminating empty
// frame and calls fn with each frame's entries. The stream comes from
// another host: every length is bounded and every frame strictly decoded.
func readSnapshot(r io.Reader, fn func([]protocol.Entry) error) error {
	for {
		var n [4]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return fmt.Errorf("%w: snapshot: %w", ErrProvisioning, err)
		}
		size := binary.BigEndian.Uint32(n[:])
		if size == 0 {
			return nil
		}
		if size > maxSnapshotFrame {
			return fmt.Errorf("%w: snapshot frame of %d bytes, limit %d", ErrProvisioning, size, maxSnapshotFrame)
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return fmt.Errorf("%w: snapshot: %w", ErrProvisioning, err)
		}
		var chunk []protocol.Entry
		if err := protocol.Unmarshal(b, &chunk); err != nil {
			return fmt.Errorf("%w: snapshot frame: %w", ErrProvisioning, err)
		}
		if len(chunk) == 0 {
			return fmt.Errorf("%w: empty snapshot frame", ErrProvisioning)
		}
		if err := fn(chunk); err != nil {
			return err
		}
	}
}

// peerProvisioned logs a provisioning session's end.
func (w *Worker) peerProvisioned(completed bool) {
	if completed {
		w.log.Info("provisioned another enclave of the shard; it joins the shard's group once it registered")
	}
}
