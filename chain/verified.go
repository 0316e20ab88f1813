package chain

import "sync"

// verifiedTxs remembers the hashes of the last transactions whose
// signatures verified, so that a transaction's signature is checked once
// on this node rather than at each of CheckTx, the mempool's recheck after
// every block, PrepareProposal, ProcessProposal and FinalizeBlock (before,
// four to five ed25519 verifications per transfer took 40% of a
// validator's CPU). The hash is of the whole wire transaction, signature
// included, and verification is a pure function of those bytes, so a hit
// gives the same verdict a verification would: nothing about consensus
// changes. Only successes are kept, and only the last verifiedCap of them
// (a ring: the oldest goes first), a few MiB at most.
type verifiedTxs struct {
	mu   sync.Mutex
	set  map[[32]byte]struct{}
	ring [][32]byte
	next int
}

// verifiedCap bounds verifiedTxs: well above a full mempool (5,000 by
// default) plus a block being proposed and executed.
const verifiedCap = 1 << 15

func newVerifiedTxs(capacity int) *verifiedTxs {
	return &verifiedTxs{set: make(map[[32]byte]struct{}, capacity), ring: make([][32]byte, 0, capacity)}
}

// has reports whether the transaction of hash h verified before.
func (v *verifiedTxs) has(h [32]byte) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.set[h]
	return ok
}

// add records that the transaction of hash h verified.
func (v *verifiedTxs) add(h [32]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.set[h]; ok {
		return
	}
	if len(v.ring) < cap(v.ring) {
		v.ring = append(v.ring, h)
	} else {
		delete(v.set, v.ring[v.next])
		v.ring[v.next] = h
		v.next = (v.next + 1) % len(v.ring)
	}
	v.set[h] = struct{}{}
}
