package node

import (
	"testing"

	dbm "github.com/cometbft/cometbft-db"
)

// Reads after Close answer "absent", never an error CometBFT would panic on.
func TestCloseTolerantDB(t *testing.T) {
	db := &closeTolerantDB{DB: dbm.NewMemDB()}
	if err := db.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get before Close = %q, %v", v, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get([]byte("k")); err != nil || v != nil {
		t.Fatalf("Get after Close = %q, %v; want absent", v, err)
	}
	if ok, err := db.Has([]byte("k")); err != nil || ok {
		t.Fatalf("Has after Close = %v, %v; want false", ok, err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
