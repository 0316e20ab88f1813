package keeper

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/types"
)

// InitGenesis implements runtime.Genesis. Without an entry (raw == nil) a
// chain gets teerex.ProductionGenesis, a dev chain the dev policy the
// module was made with (see New), if any.
func (m *Module) InitGenesis(ctx *runtime.Context, raw []byte) error {
	var g teerex.GenesisState
	if raw == nil {
		g = teerex.ProductionGenesis()
		if ctx.Dev && m.devPolicy != nil {
			g.Policy = *m.devPolicy
		}
	} else if err := json.Unmarshal(raw, &g); err != nil {
		return fmt.Errorf("teerex genesis: %w", err)
	}
	if err := g.Policy.Validate(ctx.Dev, ctx.Time); err != nil {
		return fmt.Errorf("teerex genesis: %w", err)
	}
	if err := m.Keeper.SetPolicy(ctx.Store, g.Policy); err != nil {
		return err
	}
	l := slices.Clone(g.Allowlist)
	slices.SortFunc(l, types.Hash.Compare)
	if len(slices.Compact(l)) != len(g.Allowlist) {
		return errors.New("teerex genesis: allowlist has duplicates")
	}
	return m.Keeper.setAllowlist(ctx.Store, l)
}
