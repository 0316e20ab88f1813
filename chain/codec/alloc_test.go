//go:build !race

// The race detector's sync.Pool drops items at random, so allocations
// are counted without it.

package codec_test

import (
	"bytes"
	"testing"

	"github.com/integritee-go/integritee/chain/codec"
)

// TestUnmarshalCheckAllocates: the canonical check's re-encode uses a
// pooled buffer, so decoding a small record allocates only what the
// decoder does (the byte string), not a copy of the encoding.
func TestUnmarshalCheckAllocates(t *testing.T) {
	c, err := codec.New(codec.Limits{MaxArrayElements: 16, MaxMapPairs: 16})
	if err != nil {
		t.Fatal(err)
	}
	in, err := c.Marshal(record{A: 7, B: bytes.Repeat([]byte{1}, 200)})
	if err != nil {
		t.Fatal(err)
	}
	var r record
	if n := testing.AllocsPerRun(100, func() {
		r = record{}
		if err := c.Unmarshal(in, &r); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Errorf("Unmarshal of a record allocates %v times, want at most 1 (its byte string)", n)
	}
}
