package worker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// loadRecorder is an enclave that records the LoadEntries chunks it gets
// and fails the failAt-th (1-based; 0: none).
type loadRecorder struct {
	chunks [][]protocol.Entry
	failAt int
}

func (l *loadRecorder) Call(_ context.Context, req protocol.Request) (protocol.Reply, error) {
	le, ok := req.(*protocol.LoadEntries)
	if !ok {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "unexpected %s", req.Type())
	}
	es, err := le.Unpack()
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "%v", err)
	}
	l.chunks = append(l.chunks, es)
	if len(l.chunks) == l.failAt {
		return nil, protocol.Errorf(protocol.CodeVerification, "entry refused")
	}
	return &protocol.LoadEntriesReply{}, nil
}

func (l *loadRecorder) Close() error { return nil }

// TestLoadSnapshot: the provider's frames reach the enclave whole and in
// order, regrouped into chunks of at most loadChunkEntries; an enclave
// that refuses a chunk, a broken stream and a provider's error status end
// the load with an error (and the reading goroutine with it).
func TestLoadSnapshot(t *testing.T) {
	var entries []protocol.Entry
	for i := range 3*loadChunkEntries + 100 {
		var k [32]byte
		binary.BigEndian.PutUint32(k[:], uint32(i))
		entries = append(entries, protocol.Entry{Key: k, Value: []byte{byte(i)}})
	}
	var frames [][]protocol.Entry
	for i := 0; i < len(entries); i += provisionChunk {
		frames = append(frames, entries[i:min(i+provisionChunk, len(entries))])
	}
	stream := snapshotStream(t, frames...)
	serve := func(body []byte, status int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
			rw.WriteHeader(status)
			rw.Write(body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	w := &Worker{}
	ctx := context.Background()

	e := &loadRecorder{}
	got, err := w.loadSnapshot(ctx, http.DefaultClient, serve(stream, http.StatusOK), e, uint64(len(entries)))
	if err != nil || len(got) != len(entries) {
		t.Fatalf("got %d entries, %v; want %d", len(got), err, len(entries))
	}
	var loaded []protocol.Entry
	for _, c := range e.chunks {
		if len(c) == 0 || len(c) > loadChunkEntries {
			t.Errorf("chunk of %d entries", len(c))
		}
		loaded = append(loaded, c...)
	}
	for i := range entries {
		if loaded[i].Key != entries[i].Key || !bytes.Equal(got[i].Value, entries[i].Value) {
			t.Fatalf("entry %d differs", i)
		}
	}
	if len(e.chunks) != 4 {
		t.Errorf("%d chunks, want 4", len(e.chunks))
	}

	refused := &loadRecorder{failAt: 2}
	if _, err := w.loadSnapshot(ctx, http.DefaultClient, serve(stream, http.StatusOK), refused, 0); err == nil || len(refused.chunks) != 2 {
		t.Errorf("refused chunk: %v after %d chunks", err, len(refused.chunks))
	}
	for name, u := range map[string]string{
		"truncated": serve(stream[:len(stream)-10], http.StatusOK),
		"status":    serve(nil, http.StatusNotFound),
	} {
		if _, err := w.loadSnapshot(ctx, http.DefaultClient, u, &loadRecorder{}, 0); !errors.Is(err, ErrProvisioning) {
			t.Errorf("%s: %v, want ErrProvisioning", name, err)
		}
	}
}
