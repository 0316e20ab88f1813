package keeper

import "github.com/integritee-go/integritee/chain/bridge"

// same reports whether c and o confirm the same result.
func same(c, o *bridge.Confirmation) bool {
	return c.BlockHash == o.BlockHash && c.CallsRoot == o.CallsRoot && c.StateHash == o.StateHash
}

// enact folds a pending change of s that is effective at height h.
func enact(s *bridge.Shard, h uint64) {
	if s.Pending != nil && h >= s.Pending.Since {
		s.Config, s.Pending = *s.Pending, nil
	}
}

// record notes c as the latest confirmation of s if it is the highest.
func record(s *bridge.Shard, c bridge.Confirmation) {
	if s.Latest == nil || c.Height > s.Latest.Height {
		cp := c
		s.Latest = &cp
	}
}
