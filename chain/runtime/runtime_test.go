package runtime_test

import (
	"bytes"
	"testing"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
)

// BlockHash answers from the state for the window of blocks before the
// current one and says "unknown" outside it, even where the state still has
// a value.
func TestContextBlockHash(t *testing.T) {
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	const w = runtime.BlockHashWindow
	now := int64(w + 10)
	kv := store.NewCache(st)
	val := func(h int64) []byte { return bytes.Repeat([]byte{byte(h)}, 32) }
	for _, h := range []int64{9, 10, 11, now - 1, now} {
		kv.Set(runtime.BlockHashKey(h), val(h))
	}
	ctx := &runtime.Context{Store: kv, Height: now}
	for _, tc := range []struct {
		h  int64
		ok bool
	}{
		{0, false},
		{9, false}, // before the window
		{10, true}, // its oldest block
		{11, true},
		{12, false}, // in the window but never recorded
		{now - 1, true},
		{now, false}, // the current block
		{now + 1, false},
	} {
		got, ok, err := ctx.BlockHash(tc.h)
		if err != nil {
			t.Fatal(err)
		}
		if ok != tc.ok || ok && !bytes.Equal(got, val(tc.h)) || !ok && got != nil {
			t.Errorf("BlockHash(%d) = %X, %v; want known=%v", tc.h, got, ok, tc.ok)
		}
	}
}
