package chain

import (
	"encoding/binary"
	"testing"
)

func hashOf(i int) [32]byte {
	var h [32]byte
	binary.BigEndian.PutUint64(h[:], uint64(i))
	return h
}

// TestVerifiedTxsBounded: the set keeps exactly the last cap hashes added,
// forgetting the oldest first, and a repeated add does not evict.
func TestVerifiedTxsBounded(t *testing.T) {
	const capacity = 4
	v := newVerifiedTxs(capacity)
	if v.has(hashOf(1)) {
		t.Fatal("empty set has a hash")
	}
	for i := 1; i <= capacity; i++ {
		v.add(hashOf(i))
	}
	v.add(hashOf(1)) // again: still one entry, nothing evicted
	for i := 1; i <= capacity; i++ {
		if !v.has(hashOf(i)) {
			t.Fatalf("hash %d forgotten before the set was full", i)
		}
	}
	for i := capacity + 1; i <= 3*capacity+1; i++ {
		v.add(hashOf(i))
		if len(v.set) != capacity || len(v.ring) != capacity {
			t.Fatalf("after %d adds: %d hashes, ring %d", i, len(v.set), len(v.ring))
		}
		for k := 1; k <= i; k++ {
			if want := k > i-capacity; v.has(hashOf(k)) != want {
				t.Fatalf("after adding %d: has(%d) = %v, want %v", i, k, !want, want)
			}
		}
	}
}
