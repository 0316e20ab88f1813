package keeper

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// length returns the number of signers in the list.
func (l list) length(r store.Reader) (uint64, error) {
	var n uint64
	_, err := runtime.Get(r, l.CountKey(), &n)
	return n, err
}

// at returns the signer in slot i, which must be below the length.
func (l list) at(r store.Reader, i uint64) (tx.Address, error) {
	var s tx.Address
	ok, err := runtime.Get(r, l.SlotKey(i), &s)
	if err == nil && !ok {
		err = fmt.Errorf("teerex: index %q has no slot %d", l.Prefix(), i)
	}
	return s, err
}

// pos returns the slot of s, if s is in the list.
func (l list) pos(r store.Reader, s tx.Address) (uint64, bool, error) {
	var i uint64
	ok, err := runtime.Get(r, l.PosKey(s), &i)
	return i, ok, err
}

// add appends s unless it is in the list already.
func (l list) add(kv store.KV, s tx.Address) error {
	if _, ok, err := l.pos(kv, s); err != nil || ok {
		return err
	}
	n, err := l.length(kv)
	if err != nil {
		return err
	}
	if err := runtime.Put(kv, l.SlotKey(n), s); err != nil {
		return err
	}
	if err := runtime.Put(kv, l.PosKey(s), n); err != nil {
		return err
	}
	return runtime.Put(kv, l.CountKey(), n+1)
}

// remove takes s out of the list, if it is in it, moving the last signer
// into its slot. An empty list has no keys left.
func (l list) remove(kv store.KV, s tx.Address) error {
	i, ok, err := l.pos(kv, s)
	if err != nil || !ok {
		return err
	}
	n, err := l.length(kv)
	if err != nil {
		return err
	}
	if i >= n {
		return fmt.Errorf("teerex: index %q puts %s in slot %d of %d", l.Prefix(), s, i, n)
	}
	last := n - 1
	if i != last {
		moved, err := l.at(kv, last)
		if err != nil {
			return err
		}
		if err := runtime.Put(kv, l.SlotKey(i), moved); err != nil {
			return err
		}
		if err := runtime.Put(kv, l.PosKey(moved), i); err != nil {
			return err
		}
	}
	kv.Delete(l.SlotKey(last))
	kv.Delete(l.PosKey(s))
	if last == 0 {
		kv.Delete(l.CountKey())
		return nil
	}
	return runtime.Put(kv, l.CountKey(), last)
}

// each calls fn with the signers in slot order until fn returns false.
func (l list) each(r store.Reader, fn func(tx.Address) (bool, error)) error {
	n, err := l.length(r)
	if err != nil {
		return err
	}
	for i := range n {
		s, err := l.at(r, i)
		if err != nil {
			return err
		}
		if more, err := fn(s); err != nil || !more {
			return err
		}
	}
	return nil
}

// expiryKey is the pruning index entry of a registration attested at
// attestedAt (Unix nanoseconds): the time with its sign bit flipped, so
// that byte order is time order, then the signer.
func expiryKey(attestedAt int64, s tx.Address) []byte {
	k := binary.BigEndian.AppendUint64(slices.Clone(keyExpiryPrefix), uint64(attestedAt)^(1<<63))
	return append(k, s[:]...)
}

// ExpiredRetention is how long an expired registration stays in the state,
// readable and refused with ErrExpired, before EndBlock removes it: time
// for its operator to notice and for tools to say why it stopped.
const ExpiredRetention = 7 * 24 * time.Hour

// MaxPrunedPerBlock bounds the registrations one block removes, so that
// pruning never makes a block slow; a backlog is worked off oldest first
// over the following blocks.
const MaxPrunedPerBlock = 100

// prune removes up to MaxPrunedPerBlock registrations that expired more
// than ExpiredRetention before the block time under the current policy,
// oldest first.
func (k Keeper) prune(ctx *runtime.Context) error {
	p, err := k.Policy(ctx.Store)
	if err != nil {
		return err
	}
	cutoff := ctx.Time.Add(-p.RenewalPeriod() - ExpiredRetention).UnixNano()
	var due []tx.Address
	var scanErr error
	err = ctx.Store.Iterate(keyExpiryPrefix, func(key, value []byte) bool {
		if len(key) != len(keyExpiryPrefix)+8+len(tx.Address{}) {
			scanErr = fmt.Errorf("teerex: malformed expiry index key %x", key)
			return false
		}
		at := int64(binary.BigEndian.Uint64(key[len(keyExpiryPrefix):]) ^ (1 << 63))
		if at >= cutoff {
			return false
		}
		due = append(due, tx.Address(key[len(key)-len(tx.Address{}):]))
		return len(due) < MaxPrunedPerBlock
	})
	if err != nil {
		return err
	}
	if scanErr != nil {
		return scanErr
	}
	for _, s := range due {
		e, err := k.remove(ctx.Store, s)
		if err != nil {
			return fmt.Errorf("prune %s: %w", s, err)
		}
		ctx.Emit(teerex.EventPruned, "signer", s.String(), "mrenclave", e.MRENCLAVE.String())
	}
	return nil
}

var (
	allEnclaves = list{teerex.AllEnclaves}
	// keyExpiryPrefix orders registrations by attestation time for
	// pruning: teerex/x/<8-byte time><signer>.
	keyExpiryPrefix = []byte(teerex.Name + "/x/")
)

// list keeps the teerex.Index layout in the state.
type list struct{ teerex.Index }

func enclavesOf(m types.Hash) list { return list{teerex.EnclavesOf(m)} }
