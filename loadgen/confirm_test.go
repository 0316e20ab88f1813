package loadgen

import (
	"maps"
	"testing"
	"time"
)

// TestFirstConfirmed: a block is confirmed at the first poll at or past
// its number that came after its first answer, whatever order the polls
// were recorded in; a poll before the answer does not count, and a block
// no poll reached is left out.
func TestFirstConfirmed(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	seen := []confirmSeen{{at(0), 4}, {at(200), 5}, {at(600), 9}, {at(400), 7}, {at(800), 9}}
	firstAt := map[uint64]time.Time{
		3:  at(100), // confirmed before its answer was seen: the next poll counts
		5:  at(150),
		6:  at(150),
		7:  at(500), // the poll at 400 saw 7 before the answer
		9:  at(50),
		10: at(50), // never seen confirmed
	}
	want := map[uint64]time.Time{3: at(200), 5: at(200), 6: at(400), 7: at(600), 9: at(600)}
	if got := firstConfirmed(seen, firstAt); !maps.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}
