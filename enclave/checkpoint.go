package enclave

import (
	"fmt"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/replica"
	"github.com/integritee-go/integritee/enclave/seal"
	"github.com/integritee-go/integritee/tee"
)

const labelCheckpoint = "integritee/enclave/v1/checkpoint"

// checkpoint is the enclave's bookkeeping after a block, sealed to the
// enclave and handed to the host with the block's state changes. It binds
// the state (root, number of entries) to the height and to the light
// client's trusted header, so a restarted enclave continues exactly there.
type checkpoint struct {
	ChainID string     `cbor:"chain_id"`
	Signer  tx.Address `cbor:"signer"`
	Height  int64      `cbor:"height"`
	Root    [32]byte   `cbor:"root"`
	Entries uint64     `cbor:"entries"`
	// Header is the signed header of Height (protobuf).
	Header []byte `cbor:"header"`
	// Pending are the calls since the last confirmation, Confirmed the
	// state hash it confirmed (zero in checkpoints from before it was
	// kept: the next block is confirmed).
	Pending   [][32]byte `cbor:"pending"`
	Confirmed [32]byte   `cbor:"confirmed"`
	// Sidechain is the shard's last block, if any; Recent are the blocks
	// the enclave produced and has not seen confirmed yet.
	Sidechain *sidechainHead  `cbor:"sidechain,omitempty"`
	Recent    []sidechainHead `cbor:"recent,omitempty"`
	// Applied is the index of the last replicated log entry applied (0
	// without replication, replicate.go); Joined marks a state that came
	// from a peer (provisioning), whose replica joins the shard's group
	// instead of founding one.
	Applied uint64 `cbor:"applied,omitempty"`
	Joined  bool   `cbor:"joined,omitempty"`
	// Position is the log's position at Applied (its term and the group's
	// configuration there): a replica provisioned with this state starts
	// its log at it (replica.Config.Join). Nil without replication and in
	// checkpoints of earlier builds.
	Position *replica.Position `cbor:"position,omitempty"`
	// Records is the head of this enclave's replica records when the
	// checkpoint was sealed: the host stores them in the same write, so a
	// restart with records that end before it is refused. Nil in a
	// provisioned checkpoint (the records were the provider's).
	Records *replica.Head `cbor:"records,omitempty"`
	// Config is the shard's configuration as the verified blocks up to
	// Height set it (upgrade.go); nil in checkpoints of earlier builds
	// means the default one.
	Config *shardConfig `cbor:"config,omitempty"`
}

func openCheckpoint(b tee.Backend, scope [32]byte, blob []byte) (*checkpoint, error) {
	pt, err := seal.Open(b, labelCheckpoint, scope, blob)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var c checkpoint
	if err := protocol.Unmarshal(pt, &c); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &c, nil
}
