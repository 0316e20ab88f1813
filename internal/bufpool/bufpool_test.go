package bufpool

import (
	"bytes"
	"testing"
)

// TestPool: a buffer comes back empty, and one past the bound is not kept.
func TestPool(t *testing.T) {
	p := New(64)
	b := p.Get()
	b.WriteString("left over")
	p.Put(b)
	if got := p.Get(); got.Len() != 0 {
		t.Fatalf("buffer from the pool holds %q", got.String())
	}
	big := bytes.NewBuffer(make([]byte, 0, 128))
	p.Put(big)
	for range 100 {
		if p.Get() == big {
			t.Fatal("a buffer past the bound was kept")
		}
	}
}
