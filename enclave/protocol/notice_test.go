package protocol

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// noticeHandler blocks StateInfo until a notice arrives and records the
// notices it is given.
type noticeHandler struct {
	notices chan Notice
}

func (h *noticeHandler) Handle(ctx context.Context, req Request) (Reply, error) {
	if _, ok := req.(*StateInfo); !ok {
		return nil, errors.New("unexpected request")
	}
	select {
	case n := <-h.notices:
		calls := len(n.(*PrepareCalls).Calls)
		return &StateInfoReply{Entries: uint64(calls)}, nil
	case <-time.After(time.Minute):
		return nil, errors.New("no notice while the call was in flight")
	}
}

func (h *noticeHandler) Notify(n Notice) { h.notices <- n }

func serve(t *testing.T, h Handler) net.Conn {
	t.Helper()
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		(&Server{Handler: h}).Serve(ctx, b)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		a.Close()
		<-done
	})
	return a
}

// TestNoticeBesideCall: a notice sent while a call waits for its reply
// reaches the handler then (the call's reply depends on it), gets no
// reply of its own, and leaves the stream in step for the next call.
func TestNoticeBesideCall(t *testing.T) {
	h := &noticeHandler{notices: make(chan Notice, 1)}
	c := NewClient(serve(t, h), 0)
	ctx := context.Background()
	for round := range 3 {
		got := make(chan error, 1)
		var rep *StateInfoReply
		go func() {
			var err error
			rep, err = CallAs[*StateInfoReply](ctx, c, &StateInfo{})
			got <- err
		}()
		calls := make([][]byte, round+1)
		if err := c.Notify(&PrepareCalls{Calls: calls}); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if rep.Entries != uint64(round+1) {
			t.Fatalf("round %d: the call saw a notice of %d calls, want %d", round, rep.Entries, round+1)
		}
	}
}

// TestNoticeWithoutTaker: a server whose handler takes no notices drops
// them without a reply; the calls around them are answered in step.
func TestNoticeWithoutTaker(t *testing.T) {
	conn, _ := start(t, 0)
	c := NewClient(conn, 0)
	ctx := context.Background()
	for range 3 {
		if err := c.Notify(&PrepareCalls{Calls: [][]byte{{1, 2, 3}}}); err != nil {
			t.Fatal(err)
		}
		if info, err := CallAs[*StateInfoReply](ctx, c, &StateInfo{}); err != nil || info.Height != 7 {
			t.Fatalf("StateInfo after a notice = %+v, %v", info, err)
		}
	}
}

// TestNoticeIsNotCalled: a notice has no reply, so Call refuses it
// without writing anything.
func TestNoticeIsNotCalled(t *testing.T) {
	conn, _ := start(t, 0)
	c := NewClient(conn, 0)
	if _, err := c.Call(context.Background(), &PrepareCalls{}); err == nil {
		t.Fatal("Call took a notice")
	}
	if info, err := CallAs[*StateInfoReply](context.Background(), c, &StateInfo{}); err != nil || info.Height != 7 {
		t.Fatalf("StateInfo = %+v, %v", info, err)
	}
}

// TestNoticeFailures: an oversized notice is refused with nothing
// written; one whose write fails breaks the client for calls and notices.
func TestNoticeFailures(t *testing.T) {
	conn, _ := start(t, 1<<10)
	c := NewClient(conn, 1<<10)
	if err := c.Notify(&PrepareCalls{Calls: [][]byte{make([]byte, 2<<10)}}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized notice: %v", err)
	}
	if info, err := CallAs[*StateInfoReply](context.Background(), c, &StateInfo{}); err != nil || info.Height != 7 {
		t.Fatalf("StateInfo after a refused notice = %+v, %v", info, err)
	}
	conn.Close()
	if err := c.Notify(&PrepareCalls{}); err == nil {
		t.Fatal("notice on a closed connection sent")
	}
	if err := c.Notify(&PrepareCalls{}); !errors.Is(err, ErrClientBroken) {
		t.Fatalf("notice after a failed one: %v, want ErrClientBroken", err)
	}
	if _, err := c.Call(context.Background(), &StateInfo{}); !errors.Is(err, ErrClientBroken) {
		t.Fatalf("call after a failed notice: %v, want ErrClientBroken", err)
	}
}
