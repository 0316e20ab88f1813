package worker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/internal/atomicfile"
	"github.com/integritee-go/integritee/worker/store"
)

// Machine loss (docs/operations-recovery.md). Sealed keys open only on
// the TEE that sealed them: after a mainboard swap, a new machine, or (sim
// backend) a changed sealing secret, the enclave refuses the store's keys
// (protocol.CodeSealing). If another enclave of the shard is live, the
// worker moves the store aside (kept, renamed with the time, for the day
// the old TEE comes back) and starts as a new worker: its fresh enclave
// has no keys and gets them only by provisioning over mutual RA-TLS from a
// registered peer, like any new worker. So nothing here trusts the host's
// word that the seal broke: at worst a host discards its own store, which
// it can always do. If no other enclave is live the keys exist nowhere
// else, and the worker stops with the store untouched.
//
// A shard with a single live enclave has its keys on one machine only: the
// worker warns in its log at every registration check and in
// system_health, and the CLI's shard show does too.

// Errors of machine loss.
var (
	// ErrSealBroken means the store's sealed keys do not open on this
	// machine's TEE and no other live enclave of the shard can provision
	// them: the operator must restore the machine (its sealing secret).
	ErrSealBroken = errors.New("worker: the sealed keys do not open on this machine's TEE")
	// ErrKeysLost means the store has no keys and the only live enclave
	// registered for the shard is this worker's own earlier one: its keys
	// went with its store, and creating new ones would fork the shard.
	ErrKeysLost = errors.New("worker: the shard's keys are lost with this worker's store")
	// ErrReleaseChanged means the store's keys do not open because the
	// enclave release changed, not the machine.
	ErrReleaseChanged = errors.New("worker: the store belongs to another enclave release")
)

// keptSuffix marks a store moved aside because its keys did not open.
const keptSuffix = ".unsealable-"

// singleEnclaveWarning is the warning while the shard has one live enclave.
const singleEnclaveWarning = "the shard has a single live enclave: its keys exist on this machine only; " +
	"start another worker of the shard (docs/operations-recovery.md)"

// recovery is what the worker reports of its machine-loss recoveries.
type recovery struct {
	mu sync.Mutex
	// kept are the stores moved aside in the data directory (this run's
	// and earlier ones).
	kept []string
	// at is when this run moved a store aside (zero: it did not).
	at time.Time
}

func (r *recovery) add(path string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kept = append(r.kept, path)
	r.at = at
}

func (r *recovery) snapshot() (kept []string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.kept), r.at
}

// sealBroken tells the enclave's refusal of the store's sealed blobs.
func sealBroken(err error) bool {
	var pe *protocol.Error
	return errors.As(err, &pe) && pe.Code == protocol.CodeSealing
}

// recoverSealed starts the enclave from the store when the store has keys;
// if they do not open on this TEE it moves the store aside for a fresh one
// and leaves the worker to be provisioned like a new one (provisionIfNeeded),
// provided another live enclave of the shard can provision it. It runs
// first in run, before anything else uses the store.
func (w *Worker) recoverSealed(ctx context.Context) error {
	defer w.findKept()
	keys, err := w.store.SealedKeys()
	if err != nil || keys == nil {
		return err
	}
	err = w.sup.Start(ctx)
	if err == nil || !sealBroken(err) {
		return err
	}
	cause := err
	if err := w.sameRelease(ctx); err != nil {
		return err
	}
	// A worker that never provisions (Provision.Disabled) would found a
	// separate deployment with new keys: not a recovery.
	var others []string
	if !w.cfg.Provision.Disabled {
		if err := retry(ctx, w.log, "look for the shard's other enclaves", func() error {
			var err error
			others, _, err = w.otherProviders(ctx)
			return err
		}); err != nil {
			return err
		}
	}
	path := filepath.Join(w.cfg.DataDir, storeFile)
	if len(others) == 0 {
		w.log.Error("sealed keys do not open on this TEE and no other live enclave of the shard holds them: "+
			"restore the machine's sealing secret; the store is left untouched", "store", path, "err", cause)
		return fmt.Errorf("%w (%v), and no other live enclave of the shard holds them: restore the machine's sealing secret; %s is left untouched (docs/operations-recovery.md)",
			ErrSealBroken, cause, path)
	}
	kept, err := w.moveStoreAside()
	if err != nil {
		return err
	}
	w.log.Error("MACHINE LOSS: sealed keys no longer open on this TEE (machine replaced or sealing secret changed); "+
		"store moved aside, provisioning a fresh enclave from the shard's other enclaves",
		"kept", kept, "providers", len(others), "err", cause)
	return nil
}

// sameRelease makes sure the store's keys fail to open because the
// machine changed, not the enclave release: sealing is bound to the
// measurement too, so another release's enclave never opens them, and
// that is an upgrade (keys handed over between releases), not a machine
// loss. It compares the measurement of the enclave.json the last run
// wrote with a fresh enclave's; without a readable enclave.json it cannot
// tell and assumes the machine changed. Both values are this host's own:
// the decision only routes the host, the enclave trusts none of it.
func (w *Worker) sameRelease(ctx context.Context) error {
	prev, err := ReadIdentity(w.cfg.DataDir)
	if errors.Is(err, os.ErrNotExist) {
		// A move aside cut off after enclave.json moved: that file is
		// still this store's.
		if stamp, ok := interruptedMove(w.cfg.DataDir); ok {
			prev, err = readIdentityFile(filepath.Join(w.cfg.DataDir, identityFile+stamp))
		}
	}
	if err != nil || prev.MRENCLAVE == "" {
		return nil
	}
	e, err := w.cfg.Enclave(ctx)
	if err != nil {
		return fmt.Errorf("start enclave: %w", err)
	}
	defer e.Close()
	info, err := callAs[*protocol.StateInfoReply](ctx, e, &protocol.StateInfo{})
	if err != nil {
		return err
	}
	if now := hex.EncodeToString(info.MRENCLAVE[:]); now != prev.MRENCLAVE {
		return fmt.Errorf("%w: the store was sealed by enclave release %s, this enclave is %s: another release never opens it; "+
			"run the new release in a new data directory (the store is left untouched)", ErrReleaseChanged, prev.MRENCLAVE, now)
	}
	return nil
}

// moveStoreAside closes the store, renames enclave.json and worker.db
// (with its state file) with the time, and opens a fresh store in their
// place. Nothing is deleted: with the old TEE back, renaming the files
// back restores the worker as it was. enclave.json goes first: a crash
// before the store has moved leaves the old store in place, which the
// next start finds unsealable again and moves aside (under a later
// stamp), while the other order would let the fresh worker overwrite
// the kept store's enclave.json. A crash inside the store's move is
// finished by store.Open.
//
// A move that a crash cut off between the two (enclave.json moved, the
// store not) is finished under its own stamp, so that the kept store and
// its enclave.json keep one name.
func (w *Worker) moveStoreAside() (string, error) {
	now := time.Now().UTC()
	stamp, ok := interruptedMove(w.cfg.DataDir)
	if !ok {
		stamp = keptSuffix + now.Format("20060102T150405Z")
	}
	path := filepath.Join(w.cfg.DataDir, storeFile)
	if err := w.store.Close(); err != nil {
		return "", fmt.Errorf("close the store: %w", err)
	}
	id := filepath.Join(w.cfg.DataDir, identityFile)
	if err := os.Rename(id, id+stamp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("move the identity aside: %w", err)
	}
	if err := atomicfile.SyncDir(w.cfg.DataDir); err != nil {
		return "", err
	}
	kept := path + stamp
	if err := store.Rename(path, kept); err != nil {
		return "", fmt.Errorf("move the store aside: %w", err)
	}
	st, err := store.Open(path)
	if err != nil {
		return "", err
	}
	if err := st.Bind(w.cfg.Shard, w.chainID); err != nil {
		st.Close()
		return "", err
	}
	w.store = st
	w.sup.setStore(st)
	w.recovery.add(kept, now)
	return kept, nil
}

// interruptedMove returns the stamp (keptSuffix and the time) of a move
// aside that stopped after enclave.json moved and before the store did:
// the newest enclave.json<stamp> without a worker.db<stamp>, while there
// is no enclave.json.
func interruptedMove(dir string) (string, bool) {
	if _, err := os.Lstat(filepath.Join(dir, identityFile)); !errors.Is(err, os.ErrNotExist) {
		return "", false
	}
	ids, _ := filepath.Glob(filepath.Join(dir, identityFile+keptSuffix+"*"))
	slices.Sort(ids)
	for _, id := range slices.Backward(ids) {
		stamp := strings.TrimPrefix(filepath.Base(id), identityFile)
		if _, err := os.Lstat(filepath.Join(dir, storeFile+stamp)); errors.Is(err, os.ErrNotExist) {
			return stamp, true
		}
	}
	return "", false
}

// findKept records the stores moved aside earlier, for system_health.
func (w *Worker) findKept() {
	m, _ := filepath.Glob(filepath.Join(w.cfg.DataDir, storeFile+keptSuffix+"*"))
	w.recovery.mu.Lock()
	defer w.recovery.mu.Unlock()
	for _, p := range m {
		if !slices.Contains(w.recovery.kept, p) {
			w.recovery.kept = append(w.recovery.kept, p)
		}
	}
	slices.Sort(w.recovery.kept)
}

// ownURL is the URL this worker registers, as far as it is known before
// its RPC listens: Config.WorkerURL, or the RPC address when its port is
// fixed; empty otherwise (a free port is never an earlier run's).
func (w *Worker) ownURL() string {
	if w.cfg.WorkerURL != "" {
		return httpURL(w.cfg.WorkerURL)
	}
	if a := w.RPCAddr(); a != "" {
		return a
	}
	if _, port, err := net.SplitHostPort(w.cfg.RPCListen); err == nil && port != "0" && port != "" {
		return "http://" + w.cfg.RPCListen
	}
	return ""
}

// otherProviders returns the provisioning URLs of the shard's live
// enclaves other than this worker's own (an earlier registration of this
// worker, whose keys went with its store), and whether that own one was
// among them.
func (w *Worker) otherProviders(ctx context.Context) (urls []string, self bool, err error) {
	all, err := w.providers(ctx)
	if err != nil {
		return nil, false, err
	}
	own := strings.TrimSuffix(w.ownURL(), "/")
	for _, u := range all {
		if own != "" && u == own {
			self = true
			continue
		}
		urls = append(urls, u)
	}
	return urls, self, nil
}

// warnings are the conditions an operator must act on, for system_health.
func (w *Worker) warnings() []string {
	var out []string
	if w.enclaves.get() == 1 {
		out = append(out, singleEnclaveWarning)
	}
	kept, at := w.recovery.snapshot()
	if !at.IsZero() {
		out = append(out, fmt.Sprintf("re-provisioned from the shard's other enclaves at %s: the sealed keys no longer opened on this TEE", at.Format(time.RFC3339)))
	}
	for _, k := range kept {
		out = append(out, "kept store whose sealed keys did not open on this TEE: "+k)
	}
	return out
}
