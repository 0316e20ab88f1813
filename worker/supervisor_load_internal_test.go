package worker

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/store"
)

// TestSupervisorLoadEntries: a restart's load sends every stored entry
// once, in chunks of at most loadChunkEntries, then Resume; an enclave that
// refuses a chunk ends the load with its error (the reader, which packs
// the next chunk meanwhile, stops too) and gets no Resume.
func TestSupervisorLoadEntries(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "worker.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const n = 3*loadChunkEntries + 5
	want := map[[32]byte]byte{}
	changes := make([]protocol.Entry, n)
	for i := range changes {
		k := [32]byte{byte(i), byte(i >> 8), byte(i >> 16), 7}
		changes[i] = protocol.Entry{Key: k, Value: []byte{byte(i), 1}}
		want[k] = byte(i)
	}
	if err := st.Commit(store.Batch{Checkpoint: store.Checkpoint{Height: 1, Sealed: []byte{1}}, Changes: changes}); err != nil {
		t.Fatal(err)
	}
	for _, failAt := range []int{0, 1, 3, 4} {
		e := &loadCounter{failAt: failAt, got: map[[32]byte]byte{}}
		s := &supervisor{store: st, log: slog.New(slog.DiscardHandler)}
		_, err := s.loadEntries(context.Background(), e)
		if failAt == 0 {
			if err != nil || !e.resumed || len(e.got) != n || e.chunks != 4 {
				t.Fatalf("load: %v, resumed %v, %d entries in %d chunks", err, e.resumed, len(e.got), e.chunks)
			}
			for k, v := range want {
				if e.got[k] != v {
					t.Fatalf("entry %x: %d, want %d", k[:4], e.got[k], v)
				}
			}
			continue
		}
		if !errors.Is(err, errRefused) || e.resumed || e.chunks != failAt {
			t.Fatalf("fail at chunk %d: %v, resumed %v after %d chunks", failAt, err, e.resumed, e.chunks)
		}
	}
}

var errRefused = errors.New("chunk refused")

type loadCounter struct {
	failAt, chunks int
	got            map[[32]byte]byte
	resumed        bool
}

func (l *loadCounter) Call(_ context.Context, req protocol.Request) (protocol.Reply, error) {
	switch r := req.(type) {
	case *protocol.LoadEntries:
		l.chunks++
		if l.chunks == l.failAt {
			return nil, errRefused
		}
		es, err := r.Unpack()
		if err != nil || len(es) > loadChunkEntries {
			return nil, protocol.Errorf(protocol.CodeInvalidInput, "%d entries, %v", len(es), err)
		}
		for _, e := range es {
			if _, dup := l.got[e.Key]; dup {
				return nil, protocol.Errorf(protocol.CodeInvalidInput, "entry %x twice", e.Key[:4])
			}
			l.got[e.Key] = e.Value[0]
		}
		return &protocol.LoadEntriesReply{Loaded: uint64(len(l.got))}, nil
	case *protocol.Resume:
		l.resumed = true
		return &protocol.ResumeReply{Entries: uint64(len(l.got))}, nil
	}
	return nil, protocol.Errorf(protocol.CodeInvalidInput, "unexpected %s", req.Type())
}

func (l *loadCounter) Close() error { return nil }
