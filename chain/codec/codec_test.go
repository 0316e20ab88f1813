package codec_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/integritee-go/integritee/chain/codec"
)

type record struct {
	A uint64 `cbor:"a"`
	B []byte `cbor:"b"`
	C string `cbor:"c,omitempty"`
}

// TestUnmarshalCanonical: what Marshal makes decodes; the same value in
// another valid CBOR encoding is refused, however the re-encode's buffer
// was used before (large, small, by other goroutines).
func TestUnmarshalCanonical(t *testing.T) {
	c, err := codec.New(codec.Limits{MaxArrayElements: 16, MaxMapPairs: 16})
	if err != nil {
		t.Fatal(err)
	}
	good, err := c.Marshal(record{A: 7, B: []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	big, err := c.Marshal(record{A: 1 << 40, B: bytes.Repeat([]byte{9}, 100<<10), C: "x"})
	if err != nil {
		t.Fatal(err)
	}
	// Non-canonical forms of good (a2 61 61 07 61 62 43 01 02 03):
	nonCanonical := map[string][]byte{
		"keys out of order":      {0xa2, 0x61, 0x62, 0x43, 1, 2, 3, 0x61, 0x61, 0x07},
		"integer not minimal":    {0xa2, 0x61, 0x61, 0x18, 0x07, 0x61, 0x62, 0x43, 1, 2, 3},
		"length not minimal":     {0xa2, 0x61, 0x61, 0x07, 0x61, 0x62, 0x58, 0x03, 1, 2, 3},
		"map length not minimal": {0xb8, 0x02, 0x61, 0x61, 0x07, 0x61, 0x62, 0x43, 1, 2, 3},
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				for _, in := range [][]byte{big, good} {
					var r record
					if err := c.Unmarshal(in, &r); err != nil {
						t.Errorf("canonical input refused: %v", err)
						return
					}
				}
				for name, in := range nonCanonical {
					var r record
					if err := c.Unmarshal(in, &r); !errors.Is(err, codec.ErrNonCanonical) {
						t.Errorf("%s: %v, want ErrNonCanonical", name, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	var r record
	if err := c.Unmarshal(good, &r); err != nil || r.A != 7 || !bytes.Equal(r.B, []byte{1, 2, 3}) {
		t.Fatalf("decoded %+v, %v", r, err)
	}
}
