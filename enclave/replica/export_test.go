package replica

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// LogState describes n's Raft storage (snapshot, hard state, entries), so
// that a test can compare a node replayed from stored records with the
// live one.
func LogState(n *Node) string {
	var b strings.Builder
	snap, _ := n.storage.Snapshot()
	md := snap.GetMetadata()
	fmt.Fprintf(&b, "snapshot %d/%d voters %v learners %v\n", md.GetIndex(), md.GetTerm(), md.GetConfState().GetVoters(), md.GetConfState().GetLearners())
	hs, _, _ := n.storage.InitialState()
	fmt.Fprintf(&b, "hard state %d/%d/%d\n", hs.GetTerm(), hs.GetVote(), hs.GetCommit())
	first, _ := n.storage.FirstIndex()
	last, _ := n.storage.LastIndex()
	if last >= first {
		ents, err := n.storage.Entries(first, last+1, 1<<62)
		if err != nil {
			return err.Error()
		}
		for _, e := range ents {
			fmt.Fprintf(&b, "%d/%d %v %x\n", e.GetIndex(), e.GetTerm(), e.GetType(), sha256.Sum256(e.GetData()))
		}
	}
	return b.String()
}

// LastIndex is the index of the last entry in n's log.
func LastIndex(n *Node) uint64 {
	last, _ := n.storage.LastIndex()
	return last
}
