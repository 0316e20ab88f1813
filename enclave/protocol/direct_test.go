package protocol

import (
	"bytes"
	"context"
	"errors"
	"net"
	"reflect"
	"testing"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// TestDirectRepliesRoundTrip sends the direct-invocation replies through a
// real server and client: every field survives the strict codec.
func TestDirectRepliesRoundTrip(t *testing.T) {
	submit := &SubmitCallsReply{
		Results: []CallResult{{Status: CallExecuted}, {Status: CallInvalid, Reason: ReasonStaleNonce}, {Status: CallFailed, Reason: "x", Index: 1}},
		Block: &sidechain.SignedHeader{Header: sidechain.Header{
			Shard: types.Hash{1}, Number: 2, ParentHash: types.Hash{3}, ChainHeight: 4, CallsRoot: types.Hash{5},
			StateHash: types.Hash{6}, Timestamp: 7, Author: tx.Address{8},
		}, Signature: []byte{9}},
		Leaves: [][]byte{{1}, {2}}, StateRoot: [32]byte{6}, Changes: []Entry{{Key: [32]byte{1}, Value: []byte{2}}, {Key: [32]byte{3}}},
		Checkpoint: []byte{4}, Outgoing: []Outgoing{{Call: tx.Call{Module: "m", Method: "x", Args: []byte{0xa0}}, Tag: []byte{1}}},
	}
	getter := &PrivateGetterReply{Response: []byte{1, 2, 3}}
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(ctx, b, HandlerFunc(func(_ context.Context, req Request) (Reply, error) {
			switch req.(type) {
			case *SubmitCalls:
				return submit, nil
			case *PrivateGetter:
				return getter, nil
			}
			return nil, Errorf(CodeInvalidInput, "unexpected")
		}))
	}()
	t.Cleanup(func() { cancel(); a.Close(); <-done })
	c := NewClient(a, 0)
	got, err := CallAs[*SubmitCallsReply](ctx, c, &SubmitCalls{Calls: [][]byte{{1}}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, submit) {
		t.Fatalf("got %+v\nwant %+v", got, submit)
	}
	g, err := CallAs[*PrivateGetterReply](ctx, c, &PrivateGetter{Request: []byte{1}})
	if err != nil || !reflect.DeepEqual(g, getter) {
		t.Fatalf("getter reply %+v %v", g, err)
	}
	for s, want := range map[CallStatus]string{CallExecuted: "executed", CallFailed: "failed", CallInvalid: "invalid", 0: "unknown"} {
		if s.String() != want {
			t.Errorf("%d is %q", s, s.String())
		}
	}
}

// TestDecodedReplyOwnsItsBytes: a decoded reply holds nothing of its
// frame (the envelope's body is a slice of it; the reply's byte strings
// are copies), so the frame's buffer may be reused.
func TestDecodedReplyOwnsItsBytes(t *testing.T) {
	submit := &SubmitCallsReply{
		Results: []CallResult{{Status: CallExecuted}, {Status: CallFailed, Reason: "x", Index: 1}},
		Block:   &sidechain.SignedHeader{Header: sidechain.Header{Shard: types.Hash{1}, Number: 2, CallsRoot: types.Hash{5}}, Signature: []byte{9, 9}},
		Leaves:  [][]byte{{1}, {2}}, StateRoot: [32]byte{6}, Changes: []Entry{{Key: [32]byte{1}, Value: []byte{2}}},
		Checkpoint: []byte{4}, Outgoing: []Outgoing{{Call: tx.Call{Module: "m", Method: "x", Args: []byte{0xa0}}, Tag: []byte{1}}},
	}
	for _, c := range []struct {
		req Request
		rep Reply
	}{
		{&SubmitCalls{}, submit},
		{&PrivateGetter{}, &PrivateGetterReply{Response: []byte{1, 2, 3}}},
		{&StateInfo{}, nil}, // an error reply
	} {
		var e *Error
		if c.rep == nil {
			e = Errorf(CodeInvalidInput, "bad %s", "input")
		}
		payload, err := encodeReply(7, c.rep, e)
		if err != nil {
			t.Fatal(err)
		}
		orig := bytes.Clone(payload)
		id, rep, err := decodeReply(payload, c.req)
		if id != 7 || (c.rep != nil && err != nil) {
			t.Fatalf("%s: id %d, %v", c.req.Type(), id, err)
		}
		for i := range payload {
			payload[i] = 0xff
		}
		var again []byte
		if c.rep == nil {
			var got *Error
			if !errors.As(err, &got) {
				t.Fatalf("%s: error reply decoded as %v", c.req.Type(), err)
			}
			again, err = encodeReply(7, nil, got)
		} else {
			again, err = encodeReply(7, rep, nil)
		}
		if err != nil || !bytes.Equal(again, orig) {
			t.Fatalf("%s: re-encode differs after the frame was overwritten: %v", c.req.Type(), err)
		}
	}
}
