package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/integritee-go/integritee/chain/sidechain"
)

// A Step is one transition a replicated enclave applied (the shard's Raft
// log, docs/sidechain.md): a chain block (Direct nil; its checkpoint's
// height follows the last, and Batch.Block is its shard block if any) or a
// direct shard block (Direct set; the checkpoint's height stays the last).
type Step struct {
	Batch  Batch
	Direct *sidechain.SignedHeader
}

// CommitSteps writes the Raft records of one enclave reply and the steps
// it applied in ONE transaction, in order, with the same checks as Commit
// and CommitShardBlock. Steps may be empty (records only).
func (s *Store) CommitSteps(recs Records, steps []Step) error {
	if err := checkRecords(recs.Data); err != nil {
		return err
	}
	encs := make([]*encodedBatch, len(steps))
	for i, st := range steps {
		if len(st.Batch.Records.Data) > 0 {
			return fmt.Errorf("store: step %d carries its own records", i)
		}
		var err error
		if encs[i], err = encodeBatch(st.Batch); err != nil {
			return err
		}
	}
	changes, size := 0, 0
	for _, st := range steps {
		changes += len(st.Batch.Changes)
		size += changesSize(st.Batch.Changes)
	}
	return s.update(changes, size, func(tx *bolt.Tx) error {
		if err := putRecords(tx, recs); err != nil {
			return err
		}
		for i, st := range steps {
			prev, ok, err := checkpoint(tx)
			if err != nil {
				return err
			}
			h := st.Batch.Checkpoint.Height
			switch {
			case st.Direct != nil:
				if !ok || h != prev.Height {
					return fmt.Errorf("%w: step %d: shard block %d at height %d, last chain block %d (stored: %v)",
						ErrShardBlockGap, i, st.Direct.Header.Number, h, prev.Height, ok)
				}
				if err := putShardBlock(tx, *st.Direct); err != nil {
					return err
				}
			default:
				if ok && h != prev.Height+1 {
					return fmt.Errorf("%w: step %d: height %d after %d", ErrHeightGap, i, h, prev.Height)
				}
				if st.Batch.Block != nil {
					if err := putShardBlock(tx, *st.Batch.Block); err != nil {
						return err
					}
				}
			}
			if err := encs[i].write(tx); err != nil {
				return err
			}
		}
		return nil
	})
}
