package worker

import (
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/teerex"
)

// TestKeepAliveDue: a keep_alive is due a third of the liveness period
// after the latest registration or keep_alive, never without a period.
func TestKeepAliveDue(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	reg := &teerex.Enclave{AttestedAt: t0.UnixNano()}
	alive := &teerex.Enclave{AttestedAt: t0.UnixNano(), AliveAt: t0.Add(time.Minute).UnixNano()}
	for _, c := range []struct {
		name string
		reg  *teerex.Enclave
		d    time.Duration
		now  time.Time
		due  bool
	}{
		{"no liveness period", reg, 0, t0.Add(time.Hour), false},
		{"just registered", reg, time.Minute, t0.Add(10 * time.Second), false},
		{"a third passed", reg, time.Minute, t0.Add(20 * time.Second), true},
		{"silent already", reg, time.Minute, t0.Add(2 * time.Minute), true},
		{"kept alive since", alive, time.Minute, t0.Add(70 * time.Second), false},
		{"a third after the keep_alive", alive, time.Minute, t0.Add(81 * time.Second), true},
	} {
		if got := keepAliveDue(c.reg, c.d, c.now); got != c.due {
			t.Errorf("%s: due %v, want %v", c.name, got, c.due)
		}
	}
}
