package protocol_test

import (
	"slices"
	"testing"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// TestSpans: the host takes a reply's Covers only when it accounts for
// each call signed exactly once, in order.
func TestSpans(t *testing.T) {
	txs := func(n int) [][]byte { return make([][]byte, n) }
	for _, tc := range []struct {
		name  string
		reply protocol.SignedTxs
		calls int
		want  [][2]int // nil: refused
	}{
		{"one each", protocol.SignedTxs{Txs: txs(3)}, 3, [][2]int{{0, 1}, {1, 2}, {2, 3}}},
		{"covers", protocol.SignedTxs{Txs: txs(3), Covers: []uint32{2, 1, 4}}, 7, [][2]int{{0, 2}, {2, 3}, {3, 7}}},
		{"no calls", protocol.SignedTxs{}, 0, [][2]int{}},
		{"a transaction missing", protocol.SignedTxs{Txs: txs(2)}, 3, nil},
		{"a transaction too many", protocol.SignedTxs{Txs: txs(4)}, 3, nil},
		{"covers fewer", protocol.SignedTxs{Txs: txs(2), Covers: []uint32{2, 1}}, 4, nil},
		{"covers more", protocol.SignedTxs{Txs: txs(2), Covers: []uint32{2, 3}}, 4, nil},
		{"covers nothing", protocol.SignedTxs{Txs: txs(2), Covers: []uint32{0, 4}}, 4, nil},
		{"covers and transactions differ", protocol.SignedTxs{Txs: txs(1), Covers: []uint32{2, 2}}, 4, nil},
		{"covers overflow", protocol.SignedTxs{Txs: txs(2), Covers: []uint32{1, 1<<32 - 1}}, 4, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.reply.Spans(tc.calls)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("spans %v, want an error", got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("spans %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
