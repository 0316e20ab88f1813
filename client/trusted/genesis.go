package trusted

import (
	"context"
	"fmt"

	"github.com/integritee-go/integritee/chain/teerex"
)

// initialHeight is the first block of the chains genesisFromLight can
// name: the light client's default root is block 1.
const initialHeight = 1

// genesisFromLight returns the ID of the chain reg follows
// (teerex.GenesisID) from what its light client verifies: the chain ID and
// the validators of the header at the initial height, which has no parent.
// With client.Client's default options that header is its root, trusted on
// first use. It stands in for the chain's own proved record of its genesis
// ID, which will replace it.
func genesisFromLight(ctx context.Context, reg Registry) (teerex.Hash, error) {
	h, err := reg.VerifiedHeader(ctx, initialHeight)
	if err != nil {
		return teerex.Hash{}, fmt.Errorf("trusted: genesis ID: %w", err)
	}
	if h.Height != initialHeight || h.ChainID != reg.ChainID() || !h.LastBlockID.IsZero() {
		return teerex.Hash{}, fmt.Errorf("trusted: genesis ID: block %d of chain %q (parent %v) is not the first block of chain %q",
			h.Height, h.ChainID, h.LastBlockID, reg.ChainID())
	}
	return teerex.GenesisID(h.ChainID, initialHeight, h.ValidatorsHash), nil
}
