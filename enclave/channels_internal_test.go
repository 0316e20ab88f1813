package enclave

import "testing"

// The channel table is bounded: the oldest channel is forgotten first, and
// a channel added twice (opened by two calls of one batch) takes one place.
func TestChannelsBounded(t *testing.T) {
	c := channels{max: 2}
	id := func(b byte) [16]byte { return [16]byte{b} }
	c.add(id(1), []byte{1})
	c.add(id(1), []byte{9})
	c.add(id(2), []byte{2})
	if k, ok := c.get(id(1)); !ok || k[0] != 1 {
		t.Fatalf("channel 1: %v %v, want its first key", k, ok)
	}
	c.add(id(3), []byte{3})
	if _, ok := c.get(id(1)); ok {
		t.Fatal("the oldest channel was kept past the bound")
	}
	for _, b := range []byte{2, 3} {
		if k, ok := c.get(id(b)); !ok || k[0] != b {
			t.Fatalf("channel %d: %v %v", b, k, ok)
		}
	}
	c.add(id(4), []byte{4})
	if _, ok := c.get(id(2)); ok || len(c.keys) != 2 {
		t.Fatalf("after a second eviction: %d channels, channel 2 kept %v", len(c.keys), ok)
	}
}
