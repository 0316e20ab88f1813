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

// replayConn is a connection that takes any write and answers with frames.
type replayConn struct{ in bytes.Buffer }

func (s *replayConn) Write(p []byte) (int, error) { return len(p), nil }
func (s *replayConn) Read(p []byte) (int, error)  { return s.in.Read(p) }

// TestClientReusesReplyBuffer: the client reads each reply into the
// buffer of the one before, and a reply it returned stays as it was.
func TestClientReusesReplyBuffer(t *testing.T) {
	first := &SubmitCallsReply{
		Results:    []CallResult{{Status: CallExecuted}, {Status: CallFailed, Reason: "first", Index: 1}},
		Block:      &sidechain.SignedHeader{Header: sidechain.Header{Shard: types.Hash{1}, Number: 2}, Signature: []byte{9, 9}},
		Leaves:     [][]byte{{1}, {2}},
		Changes:    []Entry{{Key: [32]byte{1}, Value: []byte{2, 2}}},
		Checkpoint: []byte{4, 4, 4},
		Outgoing:   []Outgoing{{Call: tx.Call{Module: "m", Method: "x", Args: []byte{0xa0}}, Tag: []byte{1}}},
	}
	second := &SubmitCallsReply{
		Results:    []CallResult{{Status: CallExecuted, Reason: "the second, as long"}},
		Leaves:     [][]byte{{7}, {7}},
		Changes:    []Entry{{Key: [32]byte{7}, Value: []byte{7, 7}}},
		Checkpoint: []byte{7, 7, 7},
		Outgoing:   []Outgoing{{Call: tx.Call{Module: "n", Method: "y", Args: []byte{0xa1, 1, 1}}, Tag: []byte{7}}},
	}
	conn := &replayConn{}
	var sizes []int
	for _, r := range []struct {
		id  uint64
		rep Reply
	}{{1, first}, {2, second}} {
		payload, err := encodeReply(r.id, r.rep, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteFrame(&conn.in, payload, DefaultMaxFrameSize); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(payload))
	}
	if sizes[1] > sizes[0] {
		t.Fatalf("the second reply (%d bytes) does not fit the first's buffer (%d)", sizes[1], sizes[0])
	}
	want, err := encodeReply(1, first, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(conn, 0)
	got, err := c.Call(context.Background(), &SubmitCalls{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(context.Background(), &SubmitCalls{}); err != nil {
		t.Fatal(err)
	}
	again, err := encodeReply(1, got, nil)
	if err != nil || !bytes.Equal(again, want) {
		t.Fatalf("the first reply changed when the second was read into its buffer: %v", err)
	}
}
