// Package keeper is the sidechain module's state machine: it confirms each
// shard's one chain of blocks (calls of package sidechain) in the chain's
// state, taking membership from teerex and measurements from the bridge.
package keeper

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Registry reports whether an enclave may act, and which enclaves of a
// measurement vote on a block (teerexkeeper.Keeper).
type Registry interface {
	Active(r store.Reader, signer tx.Address, now time.Time) (teerex.Enclave, error)
	ActiveOf(r store.Reader, m types.Hash, now time.Time) ([]teerex.Enclave, error)
}

// Shards returns a shard's record, with the measurement serving it
// (*bridgekeeper.Module).
type Shards interface {
	Shard(r store.Reader, id types.Hash) (bridge.Shard, error)
}

// Module is the sidechain module.
type Module struct {
	registry Registry
	shards   Shards
}

var _ runtime.Module = (*Module)(nil)

// New returns the module on its dependencies, both required (New(nil, nil)
// serves DecodeCall and QueryKey only).
func New(registry Registry, shards Shards) *Module {
	return &Module{registry: registry, shards: shards}
}

// Name implements runtime.Module.
func (*Module) Name() string { return sidechain.Name }

// DecodeCall implements runtime.Module.
func (*Module) DecodeCall(call tx.Call) (runtime.Msg, error) {
	switch call.Method {
	case sidechain.MethodConfirmSidechainBlock:
		var m sidechain.ConfirmSidechainBlock
		if err := call.DecodeArgs(&m); err != nil {
			return nil, fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
		}
		if m.Header.Number == 0 {
			return nil, fmt.Errorf("%w: %s.%s: block numbers start at 1", types.ErrMalformedCall, sidechain.Name, call.Method)
		}
		return &m, nil
	case sidechain.MethodConfirmSidechainBlocks:
		var m sidechain.ConfirmSidechainBlocks
		if err := call.DecodeArgs(&m); err != nil {
			return nil, fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
		}
		if _, err := m.Check(); err != nil {
			return nil, fmt.Errorf("%w: %s.%s: %w", types.ErrMalformedCall, sidechain.Name, call.Method, err)
		}
		return &m, nil
	}
	return nil, fmt.Errorf("%w: %s.%s", types.ErrUnknownCall, sidechain.Name, call.Method)
}

// Execute implements runtime.Module.
func (m *Module) Execute(ctx *runtime.Context, msg runtime.Msg) error {
	if m.registry == nil || m.shards == nil {
		// A wiring mistake, not the transaction's fault: halt loudly.
		return errors.New("sidechain: module built without registry or shards")
	}
	switch c := msg.(type) {
	case *sidechain.ConfirmSidechainBlock:
		return m.confirm(ctx, c)
	case *sidechain.ConfirmSidechainBlocks:
		return m.confirmRun(ctx, c)
	}
	return fmt.Errorf("%w: sidechain cannot execute %T", types.ErrUnknownCall, msg)
}

// Latest returns the shard's latest confirmation, if any.
func (m *Module) Latest(r store.Reader, shard types.Hash) (sidechain.Confirmation, bool, error) {
	var c sidechain.Confirmation
	ok, err := runtime.Get(r, sidechain.ShardKey(shard), &c)
	if err == nil && ok && c.Shard != shard {
		return c, false, fmt.Errorf("%w: record of %s names %s", sidechain.ErrCorruptShardRecord, shard, c.Shard)
	}
	return c, ok, err
}

// Block returns the confirmation of a shard's block number, if any.
func (m *Module) Block(r store.Reader, shard types.Hash, number uint64) (sidechain.Confirmation, bool, error) {
	var c sidechain.Confirmation
	ok, err := runtime.Get(r, sidechain.BlockKey(shard, number), &c)
	return c, ok, err
}

// Votes returns the pending votes of a shard's block number, if any.
func (m *Module) Votes(r store.Reader, shard types.Hash, number uint64) (sidechain.Votes, bool, error) {
	var v sidechain.Votes
	ok, err := runtime.Get(r, sidechain.VotesKey(shard, number), &v)
	if err == nil && ok && (v.Shard != shard || v.Number != number) {
		return v, false, fmt.Errorf("%w: votes of %s/%d name %s/%d", sidechain.ErrCorruptShardRecord, shard, number, v.Shard, v.Number)
	}
	return v, ok, err
}

// height is the current block height; genesis and block heights are
// positive.
func height(ctx *runtime.Context) uint64 { return uint64(max(ctx.Height, 0)) }

// confirm records the sender's vote for a header of the shard's next
// block, or of a later number within sidechain.VoteWindow, and confirms
// the next block once a strict majority of its voting set voted for it;
// the same transaction then confirms the blocks after it whose recorded
// votes make a majority for a header extending it (cascade). The voting
// set is the enclaves of the shard's measurement that are active now and
// were first registered by the block's chain height: they all derive the
// same blocks (Raft orders their direct calls), while a lone enclave whose
// host rolled it back cannot get its fork confirmed without the others.
func (m *Module) confirm(ctx *runtime.Context, msg *sidechain.ConfirmSidechainBlock) error {
	h := &msg.Header
	e, el, err := m.electorate(ctx, h.Shard)
	if err != nil {
		return err
	}
	hash, err := h.Hash()
	if err != nil {
		return fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
	}
	last, confirmed, err := m.vote(ctx, e, el, h, hash)
	if err != nil || !confirmed {
		return err
	}
	ctx.SetData(sidechain.ConfirmedResult(h.Number, last.Number, last.HeaderHash))
	return nil
}

// confirmRun takes a confirm_sidechain_blocks as its headers' votes in
// order, in one transaction: a refused vote fails it whole, but a header
// already confirmed, or one the sender's vote is recorded for, is passed
// over, so that a run sent again (after a restart, or signed again with a
// new nonce) counts its new votes; with nothing new the run is refused with
// the first such header's error, which workers treat as done.
func (m *Module) confirmRun(ctx *runtime.Context, msg *sidechain.ConfirmSidechainBlocks) error {
	hashes, err := msg.Check()
	if err != nil {
		return fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
	}
	e, el, err := m.electorate(ctx, msg.Headers[0].Shard)
	if err != nil {
		return err
	}
	var (
		last      sidechain.Confirmation
		confirmed bool
		counted   int
		onChain   error
	)
	for i := range msg.Headers {
		h := &msg.Headers[i]
		l, ok, err := m.vote(ctx, e, el, h, hashes[i])
		switch {
		case errors.Is(err, sidechain.ErrAlreadyConfirmed) || errors.Is(err, sidechain.ErrAlreadyVoted):
			if onChain == nil {
				onChain = err
			}
			continue
		case err != nil:
			return fmt.Errorf("header %d of %d: %w", i, len(msg.Headers), err)
		}
		counted++
		if ok {
			last, confirmed = l, true
		}
	}
	if counted == 0 {
		return onChain
	}
	if confirmed {
		ctx.SetData(sidechain.ConfirmedResult(0, last.Number, last.HeaderHash))
	}
	return nil
}

// electorate returns the sender's registry entry and the electorate of
// the measurement serving shard at the current height, after checking that
// the sender is an active enclave of it.
func (m *Module) electorate(ctx *runtime.Context, shard types.Hash) (teerex.Enclave, *electorate, error) {
	e, err := m.registry.Active(ctx.Store, ctx.Sender, ctx.Time)
	if err != nil {
		var re *types.Error
		if errors.As(err, &re) {
			return e, nil, fmt.Errorf("%w: %w", sidechain.ErrNotActive, err)
		}
		return e, nil, err
	}
	s, err := m.shards.Shard(ctx.Store, shard)
	if err != nil {
		return e, nil, err
	}
	measurement := s.MRENCLAVEAt(height(ctx))
	if e.MRENCLAVE != measurement {
		return e, nil, fmt.Errorf("%w: %s runs %s, shard %s is served by %s", sidechain.ErrNotShardEnclave, ctx.Sender, e.MRENCLAVE, shard, measurement)
	}
	return e, &electorate{registry: m.registry, measurement: measurement}, nil
}

// vote records the sender's vote for header h (hash) of an enclave of
// el's measurement. confirmed reports that it gave the next block a majority:
// last is then the last block confirmed, that one or one after it from
// votes recorded early.
func (m *Module) vote(ctx *runtime.Context, e teerex.Enclave, el *electorate, h *sidechain.Header, hash types.Hash) (last sidechain.Confirmation, confirmed bool, err error) {
	latest, seen, err := m.Latest(ctx.Store, h.Shard)
	if err != nil {
		return last, false, err
	}
	if seen && h.Number <= latest.Number {
		have, _, err := m.Block(ctx.Store, h.Shard, h.Number)
		if err != nil {
			return last, false, err
		}
		if have.HeaderHash == hash {
			return last, false, fmt.Errorf("%w: block %d of shard %s", sidechain.ErrAlreadyConfirmed, h.Number, h.Shard)
		}
		return last, false, fmt.Errorf("%w: block %d %s, the shard confirmed %s (latest %d)", sidechain.ErrForkedBlock, h.Number, hash, have.HeaderHash, latest.Number)
	}
	var parent types.Hash
	var next uint64 = 1
	var minHeight int64
	if seen {
		parent, next, minHeight = latest.HeaderHash, latest.Number+1, latest.ChainHeight
	}
	// Votes are taken for the next number and a window after it, so that
	// a round of votes confirms many blocks while a shard has at most
	// VoteWindow+1 pending records. A later number is not refused for
	// good: its voter keeps it until the predecessors are confirmed.
	if h.Number-next > sidechain.VoteWindow {
		return last, false, fmt.Errorf("%w: block %d, the next is %d (votes are taken up to %d)", sidechain.ErrFutureBlock, h.Number, next, next+sidechain.VoteWindow)
	}
	// The parent is known only for the next number; a later one's parent
	// (and its chain height's lower bound) is checked when its predecessor
	// is confirmed (cascade), and its vote counts only then.
	early := h.Number > next
	if !early && h.ParentHash != parent {
		return last, false, fmt.Errorf("%w: block %d with parent %s, the next is %d with parent %s", sidechain.ErrForkedBlock, h.Number, h.ParentHash, next, parent)
	}
	// A block applies chain blocks that are committed, in chain order (a
	// later number's chain height is not before the latest's either).
	if h.ChainHeight < minHeight || h.ChainHeight >= ctx.Height {
		return last, false, fmt.Errorf("%w: %d, parent's %d, current block %d", sidechain.ErrChainHeight, h.ChainHeight, minHeight, ctx.Height)
	}
	members, err := el.voters(ctx, h.ChainHeight)
	if err != nil {
		return last, false, err
	}
	if !slices.Contains(members, ctx.Sender) {
		return last, false, fmt.Errorf("%w: %s registered at %d, block %d sits at chain height %d", sidechain.ErrRegisteredLater, ctx.Sender, e.RegisteredHeight, h.Number, h.ChainHeight)
	}
	v, _, err := m.Votes(ctx.Store, h.Shard, h.Number)
	if err != nil {
		return last, false, err
	}
	v.Shard, v.Number = h.Shard, h.Number
	cand, repeat := -1, false
	for i, c := range v.Candidates {
		if c.HeaderHash == hash {
			cand = i
		}
		if slices.Contains(c.Voters, ctx.Sender) {
			if c.HeaderHash != hash {
				return last, false, fmt.Errorf("%w: %s voted for %s at block %d, now %s", sidechain.ErrEquivocation, ctx.Sender, c.HeaderHash, h.Number, hash)
			}
			repeat = true
		}
	}
	if cand < 0 {
		hc := *h
		v.Candidates = append(v.Candidates, sidechain.Candidate{HeaderHash: hash, Header: &hc})
		cand = len(v.Candidates) - 1
	}
	if !repeat {
		v.Candidates[cand].Voters = append(v.Candidates[cand].Voters, ctx.Sender)
	}
	votes := count(v.Candidates[cand].Voters, members)
	needed := len(members)/2 + 1
	if early || votes < needed {
		if repeat {
			return last, false, fmt.Errorf("%w: %s, block %d %s has %d of %d votes", sidechain.ErrAlreadyVoted, ctx.Sender, h.Number, hash, votes, needed)
		}
		if err := runtime.Put(ctx.Store, sidechain.VotesKey(h.Shard, h.Number), v); err != nil {
			return last, false, err
		}
		ctx.Emit(sidechain.EventBlockVoted, "shard", h.Shard.String(), "number", strconv.FormatUint(h.Number, 10),
			"header_hash", hash.String(), "enclave", ctx.Sender.String(), "votes", strconv.Itoa(votes), "needed", strconv.Itoa(needed))
		return last, false, nil
	}
	// A majority (a repeated vote reaches one only if members left since:
	// it is then what confirms the block rather than a refusal).
	c, err := m.confirmBlock(ctx, h, hash, ctx.Sender)
	if err != nil {
		return last, false, err
	}
	if last, err = m.cascade(ctx, el, c); err != nil {
		return last, false, err
	}
	return last, true, nil
}

// count returns how many of voters are members.
func count(voters, members []tx.Address) int {
	n := 0
	for _, a := range voters {
		if slices.Contains(members, a) {
			n++
		}
	}
	return n
}

// confirmBlock records header h (hash) as its shard's latest confirmed
// block, decided by enclave's vote, and drops its votes.
func (m *Module) confirmBlock(ctx *runtime.Context, h *sidechain.Header, hash types.Hash, enclave tx.Address) (sidechain.Confirmation, error) {
	c := sidechain.Confirmation{
		Shard: h.Shard, Number: h.Number, HeaderHash: hash, ChainHeight: h.ChainHeight, StateHash: h.StateHash,
		UnshieldsRoot: h.UnshieldsRoot, Author: h.Author, Enclave: enclave, ConfirmedHeight: height(ctx),
	}
	if err := runtime.Put(ctx.Store, sidechain.ShardKey(h.Shard), c); err != nil {
		return c, err
	}
	if err := runtime.Put(ctx.Store, sidechain.BlockKey(h.Shard, h.Number), c); err != nil {
		return c, err
	}
	ctx.Store.Delete(sidechain.VotesKey(h.Shard, h.Number))
	ctx.Emit(sidechain.EventBlockConfirmed, "shard", h.Shard.String(), "number", strconv.FormatUint(h.Number, 10),
		"header_hash", hash.String(), "enclave", enclave.String())
	return c, nil
}

// cascade confirms, after block prev, the blocks whose votes were recorded
// early: for each next number, the candidates that do not extend the block
// just confirmed (another parent, or a chain height before its) are
// dropped uncounted, and one with a strict majority of its voting set is
// confirmed, naming the voter that completed the majority. It returns the
// last block confirmed (prev if none). At most VoteWindow records are
// read, each holding at most one vote per enclave.
func (m *Module) cascade(ctx *runtime.Context, el *electorate, prev sidechain.Confirmation) (sidechain.Confirmation, error) {
	for {
		v, ok, err := m.Votes(ctx.Store, prev.Shard, prev.Number+1)
		if err != nil || !ok {
			return prev, err
		}
		kept := v.Candidates[:0:0]
		var (
			win     sidechain.Candidate
			decider tx.Address
			found   bool
		)
		for _, c := range v.Candidates {
			if c.Header == nil || c.Header.ParentHash != prev.HeaderHash || c.Header.ChainHeight < prev.ChainHeight {
				ctx.Emit(sidechain.EventVotesDropped, "shard", v.Shard.String(), "number", strconv.FormatUint(v.Number, 10),
					"header_hash", c.HeaderHash.String(), "voters", strconv.Itoa(len(c.Voters)))
				continue
			}
			kept = append(kept, c)
			members, err := el.voters(ctx, c.Header.ChainHeight)
			if err != nil {
				return prev, err
			}
			needed, n := len(members)/2+1, 0
			for _, a := range c.Voters {
				if slices.Contains(members, a) {
					if n++; n == needed {
						win, decider, found = c, a, true
					}
				}
			}
		}
		if !found {
			if len(kept) == 0 {
				ctx.Store.Delete(sidechain.VotesKey(v.Shard, v.Number))
				return prev, nil
			}
			v.Candidates = kept
			return prev, runtime.Put(ctx.Store, sidechain.VotesKey(v.Shard, v.Number), v)
		}
		if prev, err = m.confirmBlock(ctx, win.Header, win.HeaderHash, decider); err != nil {
			return prev, err
		}
	}
}

// electorate is the enclaves of a measurement that vote in one
// transaction.
type electorate struct {
	registry    Registry
	measurement types.Hash
	active      []teerex.Enclave
	read        bool
}

// voters returns the voting set of a block of measurement m at chain
// height chainHeight: the active enclaves of m first registered at or
// before it. An enclave registered later got its state from a peer
// afterwards: it may never vote for the block (its checkpoint may hold it
// already), so counting it could freeze the shard. A block from before the
// earliest active enclave registered (the shard's calls before its first
// enclave, or after all its voters left) is voted on by the earliest ones,
// or it could never be confirmed. The registry is read whole once per
// transaction (bounded by its size; a sidechain call changes no
// registration): membership changes between transactions, and only votes
// of current members count.
func (el *electorate) voters(ctx *runtime.Context, chainHeight int64) ([]tx.Address, error) {
	if !el.read {
		active, err := el.registry.ActiveOf(ctx.Store, el.measurement, ctx.Time)
		if err != nil {
			return nil, err
		}
		el.active, el.read = active, true
	}
	active := el.active
	if len(active) == 0 {
		return nil, nil
	}
	by := chainHeight
	if first := slices.MinFunc(active, func(a, b teerex.Enclave) int { return cmp.Compare(a.RegisteredHeight, b.RegisteredHeight) }); first.RegisteredHeight > by {
		by = first.RegisteredHeight
	}
	var out []tx.Address
	for _, e := range active {
		if e.RegisteredHeight <= by {
			out = append(out, e.Signer)
		}
	}
	return out, nil
}

// UnshieldsRoot returns the unshields root of a confirmed block of the
// shard; ok is false if the shard has not confirmed that number
// (bridgekeeper.ShardBlocks).
func (m *Module) UnshieldsRoot(r store.Reader, shard types.Hash, number uint64) (types.Hash, bool, error) {
	c, ok, err := m.Block(r, shard, number)
	if err != nil || !ok {
		return types.Hash{}, false, err
	}
	if c.Shard != shard || c.Number != number {
		return types.Hash{}, false, fmt.Errorf("%w: record of %s/%d names %s/%d", sidechain.ErrCorruptShardRecord, shard, number, c.Shard, c.Number)
	}
	return c.UnshieldsRoot, true, nil
}

// QueryKey implements runtime.Module.
func (*Module) QueryKey(path []string) ([]byte, error) {
	bad := errors.New("query path: want /sidechain/shard/<hex shard>, /sidechain/block/<hex shard>/<number> or /sidechain/votes/<hex shard>/<number>")
	if len(path) < 2 {
		return nil, bad
	}
	shard, err := types.ParseHash(path[1])
	if err != nil {
		return nil, fmt.Errorf("query path: shard: %w", err)
	}
	switch {
	case path[0] == "shard" && len(path) == 2:
		return sidechain.ShardKey(shard), nil
	case (path[0] == "block" || path[0] == "votes") && len(path) == 3:
		n, err := strconv.ParseUint(path[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("query path: number: %w", err)
		}
		if path[0] == "votes" {
			return sidechain.VotesKey(shard, n), nil
		}
		return sidechain.BlockKey(shard, n), nil
	}
	return nil, bad
}
