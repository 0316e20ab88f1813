package worker

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/store"
)

// TestSupervisorProvision: the enclave that took the provider's state is
// kept as the running one (no second start, no second load) and holds
// exactly what the store then holds; nothing but the keys is persisted
// when the entries do not check out or the commit fails, and then, or
// after the kept enclave dies, the next request restores a fresh one from
// the store.
func TestSupervisorProvision(t *testing.T) {
	// The provider's state: calls "a" and "b" applied once, at height 5.
	provider := &ledger{entries: map[[32]byte][]byte{}}
	var entries []protocol.Entry
	for _, c := range []string{"a", "b"} {
		k := sha256.Sum256([]byte(c))
		v := binary.BigEndian.AppendUint64(nil, 1)
		provider.entries[k] = v
		entries = append(entries, protocol.Entry{Key: k, Value: v})
	}
	provider.height = 5
	checkpoint, root := provider.checkpoint(), provider.root()

	for _, tc := range []struct {
		name string
		// bad feeds one entry too many, which the enclave's Resume refuses.
		bad   bool
		fault fault
		// ok: Provision succeeds; persisted: the checkpoint and entries
		// are in the store.
		ok, persisted bool
	}{
		{name: "kept", ok: true, persisted: true},
		{name: "entries refused", bad: true},
		{name: "commit fails", fault: storeFails},
		{name: "dies after the commit", fault: dieAfterStore, ok: true, persisted: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(filepath.Join(t.TempDir(), "worker.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			shard := [32]byte{1}
			if err := st.Bind(shard, "test-chain"); err != nil {
				t.Fatal(err)
			}
			starts := 0
			var running *faulty
			fs := &faults{plan: map[string]fault{}}
			sup := newSupervisor(func(context.Context) (Enclave, error) {
				starts++
				l := &ledger{}
				running = &faulty{Enclave: Pipe(l), l: l, fs: fs}
				return running, nil
			}, st, protocol.Init{Shard: shard, ChainID: "test-chain", InitialHeight: 1}, slog.New(slog.DiscardHandler))
			defer sup.Stop()
			sup.commit = func(tr transition) error {
				if tc.fault == storeFails {
					return errors.New("injected store failure")
				}
				if err := sup.persist(tr); err != nil {
					return err
				}
				if tc.fault == dieAfterStore {
					running.Enclave.Close()
				}
				return nil
			}
			keys := protocol.SealedKeys{Signer: []byte("s"), Shielding: []byte("k"), State: []byte("x")}
			var id *protocol.InitReply
			err = sup.Provision(ctx, func(e Enclave) (*protocol.InitReply, *transition, error) {
				// As the enclave's finishProvisioning: Init with the sealed
				// keys and checkpoint, then the entries and Resume.
				init := sup.init
				init.SealedKeys, init.Checkpoint = &keys, checkpoint
				ir, err := callAs[*protocol.InitReply](ctx, e, &init)
				if err != nil {
					return nil, nil, err
				}
				feed := entries
				if tc.bad {
					feed = append(feed, protocol.Entry{Key: [32]byte{9}, Value: []byte{1}})
				}
				if _, err := callAs[*protocol.LoadEntriesReply](ctx, e, protocol.PackEntries(feed)); err != nil {
					return nil, nil, err
				}
				if _, err := callAs[*protocol.ResumeReply](ctx, e, &protocol.Resume{}); err != nil {
					return nil, nil, err
				}
				id = &protocol.InitReply{MRENCLAVE: ir.MRENCLAVE, SignerPublic: ir.SignerPublic, ShieldingPublic: ir.ShieldingPublic,
					SealedKeys: keys, Height: 5, StateRoot: root}
				return id, chainStep(store.Batch{Checkpoint: store.Checkpoint{Height: 5, StateRoot: root, Sealed: checkpoint}, Changes: entries}), nil
			})
			if (err == nil) != tc.ok {
				t.Fatalf("Provision: %v, want success %v", err, tc.ok)
			}
			cp, haveCP, err := st.Checkpoint()
			if err != nil || haveCP != tc.persisted {
				t.Fatalf("checkpoint %v, %v; want it %v", haveCP, err, tc.persisted)
			}
			n, err := st.EntryCount()
			if err != nil || (n == 2) != tc.persisted || (n == 0) == tc.persisted {
				t.Fatalf("%d entries stored, %v", n, err)
			}
			if stored, _ := st.SealedKeys(); tc.bad != (stored == nil) {
				t.Errorf("sealed keys stored: %v (keys are saved only after the entries checked out)", stored != nil)
			}
			if !tc.persisted {
				return
			}
			if cp.Height != 5 || cp.StateRoot != root {
				t.Errorf("store at %d root %x", cp.Height, cp.StateRoot)
			}
			if err := sup.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if tc.fault == 0 {
				if starts != 1 {
					t.Errorf("%d enclaves started, want the provisioning one kept", starts)
				}
				if got := sup.Identity(); got != id {
					t.Errorf("identity %+v, want the provisioning's", got)
				}
				if p := sup.Progress(); p != (Progress{Height: 5, StateRoot: root}) {
					t.Errorf("progress %+v", p)
				}
				// The kept enclave answers from the provisioned state.
				if info, err := callAs[*protocol.StateInfoReply](ctx, sup, &protocol.StateInfo{}); err != nil || info.StateRoot != root || info.Entries != 2 {
					t.Fatalf("state info %+v, %v", info, err)
				}
				// A restart restores the same state and identity from the
				// store (ErrIdentityChanged otherwise).
				running.Enclave.Close()
			}
			info, err := callAs[*protocol.StateInfoReply](ctx, sup, &protocol.StateInfo{})
			if err != nil || info.Height != 5 || info.StateRoot != root || info.Entries != 2 {
				t.Fatalf("after a restart: %+v, %v", info, err)
			}
			if starts != 2 {
				t.Errorf("%d enclaves started, want 2", starts)
			}
		})
	}
}
