package protocol

import (
	"fmt"

	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmttypes "github.com/cometbft/cometbft/types"
)

// EncodeSignedHeader returns the CometBFT protobuf bytes of sh, as Header
// carries them.
func EncodeSignedHeader(sh *cmttypes.SignedHeader) ([]byte, error) {
	if sh == nil {
		return nil, fmt.Errorf("encode signed header: nil")
	}
	b, err := sh.ToProto().Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode signed header: %w", err)
	}
	return b, nil
}

// EncodeValidatorSet returns the CometBFT protobuf bytes of vs.
func EncodeValidatorSet(vs *cmttypes.ValidatorSet) ([]byte, error) {
	p, err := vs.ToProto()
	if err != nil {
		return nil, fmt.Errorf("encode validator set: %w", err)
	}
	b, err := p.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode validator set: %w", err)
	}
	return b, nil
}

// DecodeSignedHeader parses and checks the basic validity of a signed
// header of chainID.
func DecodeSignedHeader(b []byte, chainID string) (*cmttypes.SignedHeader, error) {
	var p cmtproto.SignedHeader
	if err := p.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("decode signed header: %w", err)
	}
	sh, err := cmttypes.SignedHeaderFromProto(&p)
	if err != nil {
		return nil, fmt.Errorf("decode signed header: %w", err)
	}
	if err := sh.ValidateBasic(chainID); err != nil {
		return nil, fmt.Errorf("signed header: %w", err)
	}
	return sh, nil
}

// DecodeValidatorSet parses and checks the basic validity of a validator
// set.
func DecodeValidatorSet(b []byte) (*cmttypes.ValidatorSet, error) {
	var p cmtproto.ValidatorSet
	if err := p.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("decode validator set: %w", err)
	}
	vs, err := cmttypes.ValidatorSetFromProto(&p)
	if err != nil {
		return nil, fmt.Errorf("decode validator set: %w", err)
	}
	if err := vs.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("validator set: %w", err)
	}
	return vs, nil
}
