package main

import "testing"

func TestGCPercent(t *testing.T) {
	tests := []struct {
		live uint64
		want int
	}{
		{0, 100},
		{64 << 20, 100},
		{gcHeadroom, 100},
		{256 << 20, 50},
		{300 << 20, 42},
		{512 << 20, 25},
		{4 << 30, 25},
	}
	for _, tt := range tests {
		if got := gcPercent(tt.live); got != tt.want {
			t.Errorf("gcPercent(%d MiB) = %d, want %d", tt.live>>20, got, tt.want)
		}
	}
}
