package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/internal/atomicfile"
)

// Errors of the trusted root. Each is errors.Is-able; the messages say
// which header was trusted and why it no longer serves.
var (
	// ErrTrustExpired means the trusted header (stored, or set in
	// Options) is older than the trusting period: the validators that
	// signed it may have left and could sign anything now, so nothing is
	// verified from it. Set a recent block you trust (TrustHeight and
	// TrustHash), or drop the stored record to trust the node anew.
	ErrTrustExpired = errors.New("client: the trusted header is older than the trusting period")
	// ErrChainMismatch means the node's chain is not the trusted one: its
	// blocks do not follow from the trusted header under the light-client
	// rules, the hash of the trusted height differs, or its genesis ID is
	// not the one stored with the header (a chain restarted under the same
	// chain ID, or a node of another chain).
	ErrChainMismatch = errors.New("client: the node's chain is not the trusted one")
	// ErrTrustRecord means a trust store record cannot be read or does not
	// check out (truncated, edited, of another chain). It is never taken
	// for "no record": the node is not trusted instead.
	ErrTrustRecord = errors.New("client: unusable trusted header record")
)

// TrustStore keeps, per chain ID, the newest header a client verified, so
// that the next client verifies forward from it instead of trusting the
// node again. The client saves to it after each proved query that verified
// a newer header.
type TrustStore interface {
	// Load returns the record of chainID, nil if there is none. A record
	// that exists but cannot be used must be an error (ErrTrustRecord).
	Load(chainID string) (*TrustedHeader, error)
	// Save replaces the record of chainID.
	Save(chainID string, t *TrustedHeader) error
}

// TrustedHeader is a verified header with the validator set of its height
// and the genesis ID (teerex.GenesisID, proved) of its chain.
type TrustedHeader struct {
	Header     *cmttypes.SignedHeader
	Validators *cmttypes.ValidatorSet
	GenesisID  types.Hash
	// Source says where the record was loaded from, for messages (e.g. a
	// file's path); not saved.
	Source string
}

// check verifies that t is a header of chainID signed by more than 2/3 of
// its validator set: what a record must be before it is trusted.
func (t *TrustedHeader) check(chainID string) error {
	if t.Header == nil || t.Validators == nil {
		return errors.New("no header or validator set")
	}
	lb := cmttypes.LightBlock{SignedHeader: t.Header, ValidatorSet: t.Validators}
	if err := lb.ValidateBasic(chainID); err != nil {
		return err
	}
	return t.Validators.VerifyCommitLight(chainID, t.Header.Commit.BlockID, t.Header.Height, t.Header.Commit)
}

// FileTrustStore keeps one JSON file per chain in Dir, named after the
// chain ID (see Path). A file is replaced atomically (written, synced and
// renamed), so a crash leaves the old record or the new one.
type FileTrustStore struct {
	Dir string
}

// trustFileVersion is the format of a trust file.
const trustFileVersion = 1

// trustFile is a trust store record on disk. Height, Hash and Time repeat
// what LightBlock holds, for people reading the file; Load checks they
// agree.
type trustFile struct {
	Version   int        `json:"version"`
	ChainID   string     `json:"chain_id"`
	GenesisID types.Hash `json:"genesis_id"`
	Height    int64      `json:"height"`
	Hash      string     `json:"hash"`
	Time      time.Time  `json:"time"`
	// LightBlock is the signed header and its validator set, as the
	// protobuf encoding of CometBFT's LightBlock.
	LightBlock []byte `json:"light_block"`
}

var safeChainID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Path is the file of chainID: <Dir>/<chain ID>.json, or for a chain ID
// unfit for a file name <Dir>/chain-<sha256 prefix>.json.
func (s FileTrustStore) Path(chainID string) string {
	name := chainID
	if !safeChainID.MatchString(chainID) || strings.Contains(chainID, "..") {
		sum := sha256.Sum256([]byte(chainID))
		name = "chain-" + hex.EncodeToString(sum[:12])
	}
	return filepath.Join(s.Dir, name+".json")
}

// Load reads and checks the record of chainID.
func (s FileTrustStore) Load(chainID string) (*TrustedHeader, error) {
	path := s.Path(chainID)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trust store: %w", err)
	}
	t, err := decodeTrustFile(b, chainID)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrTrustRecord, path, err)
	}
	t.Source = path
	return t, nil
}

func decodeTrustFile(b []byte, chainID string) (*TrustedHeader, error) {
	var f trustFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data")
	}
	if f.Version != trustFileVersion {
		return nil, fmt.Errorf("version %d, want %d", f.Version, trustFileVersion)
	}
	if f.ChainID != chainID {
		return nil, fmt.Errorf("record of chain %q, want %q", f.ChainID, chainID)
	}
	var pb cmtproto.LightBlock
	if err := pb.Unmarshal(f.LightBlock); err != nil {
		return nil, fmt.Errorf("light block: %w", err)
	}
	lb, err := cmttypes.LightBlockFromProto(&pb)
	if err != nil {
		return nil, fmt.Errorf("light block: %w", err)
	}
	t := &TrustedHeader{Header: lb.SignedHeader, Validators: lb.ValidatorSet, GenesisID: f.GenesisID}
	if err := t.check(chainID); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if t.Header.Height != f.Height || !strings.EqualFold(t.Header.Hash().String(), f.Hash) || !t.Header.Time.Equal(f.Time) {
		return nil, fmt.Errorf("height, hash or time disagree with the header (%d %s %s)", t.Header.Height, t.Header.Hash(), t.Header.Time.Format(time.RFC3339))
	}
	return t, nil
}

// Save writes the record of chainID atomically: a temporary file in Dir is
// written and synced, then renamed over the old record, and Dir is synced.
func (s FileTrustStore) Save(chainID string, t *TrustedHeader) error {
	pb, err := (&cmttypes.LightBlock{SignedHeader: t.Header, ValidatorSet: t.Validators}).ToProto()
	if err != nil {
		return fmt.Errorf("trust store: %w", err)
	}
	lb, err := pb.Marshal()
	if err != nil {
		return fmt.Errorf("trust store: %w", err)
	}
	b, err := json.MarshalIndent(trustFile{
		Version: trustFileVersion, ChainID: chainID, GenesisID: t.GenesisID,
		Height: t.Header.Height, Hash: t.Header.Hash().String(), Time: t.Header.Time, LightBlock: lb,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("trust store: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.Path(chainID)), 0o700); err != nil {
		return fmt.Errorf("trust store: %w", err)
	}
	if err := atomicfile.WriteFile(s.Path(chainID), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("trust store: %w", err)
	}
	return nil
}
