package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/tx"
)

// echo answers StateInfo with a fixed reply, Init with an error and a few
// more requests with what a buggy handler returns.
func echo(_ context.Context, req Request) (Reply, error) {
	switch r := req.(type) {
	case *StateInfo:
		return &StateInfoReply{Height: 7, Entries: 3}, nil
	case *Init:
		return nil, Errorf(CodeSealing, "chain %s", r.ChainID)
	case *LoadEntries:
		es, err := r.Unpack()
		if err != nil {
			return nil, Errorf(CodeInvalidInput, "%v", err)
		}
		return &LoadEntriesReply{Loaded: uint64(len(es))}, nil
	case *Resume:
		return &StateInfoReply{}, nil // wrong reply type
	}
	return nil, errors.New("plain failure")
}

// start serves echo on one end of a net.Pipe and returns the other end and
// a function that waits for Serve's result.
func start(t *testing.T, max int) (net.Conn, func() error) {
	t.Helper()
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var serveErr error
	go func() {
		s := &Server{Handler: HandlerFunc(echo), MaxFrameSize: max}
		serveErr = s.Serve(ctx, b)
		close(done)
	}()
	wait := func() error {
		<-done
		return serveErr
	}
	t.Cleanup(func() {
		cancel()
		a.Close()
		wait()
	})
	return a, wait
}

func TestCall(t *testing.T) {
	conn, _ := start(t, 0)
	c := NewClient(conn, 0)
	ctx := context.Background()

	info, err := CallAs[*StateInfoReply](ctx, c, &StateInfo{})
	if err != nil || info.Height != 7 || info.Entries != 3 {
		t.Fatalf("StateInfo = %+v, %v", info, err)
	}

	tests := []struct {
		name string
		req  Request
		want *Error
	}{
		{"typed error", &Init{ChainID: "dev"}, ErrSealing},
		{"plain error is internal", &Attest{}, ErrInternal},
		{"wrong reply type is internal", &Resume{}, ErrInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Call(ctx, tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want code %s", err, tt.want.Code)
			}
		})
	}
	// The connection survives error replies.
	rep, err := CallAs[*LoadEntriesReply](ctx, c, PackEntries([]Entry{{Value: []byte{1}}, {}}))
	if err != nil || rep.Loaded != 2 {
		t.Fatalf("LoadEntries = %+v, %v", rep, err)
	}
}

// TestHandlerPanicStopsServing: a handler that panics may have left its
// state half-changed, so the server answers that a restart is required
// and serves nothing more.
func TestHandlerPanicStopsServing(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	var handled atomic.Int64
	h := HandlerFunc(func(_ context.Context, req Request) (Reply, error) {
		handled.Add(1)
		if _, ok := req.(*GetState); ok {
			panic("half-way through a change")
		}
		return &StateInfoReply{Height: 7}, nil
	})
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), b, h) }()
	c := NewClient(a, 0)
	ctx := context.Background()
	if _, err := c.Call(ctx, &StateInfo{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Call(ctx, &GetState{Key: []byte("k")})
	if !errors.Is(err, ErrInternal) || !strings.Contains(err.Error(), "restart required") {
		t.Fatalf("reply to the panicking request: %v", err)
	}
	// The connection is closed: a later request gets no reply, and the
	// handler never sees it.
	if rep, err := c.Call(ctx, &StateInfo{}); err == nil || errors.As(err, new(*Error)) {
		t.Fatalf("request after the panic: %v %v", rep, err)
	}
	if n := handled.Load(); n != 2 {
		t.Fatalf("handler called %d times, want 2", n)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrHandlerPanic) || !strings.Contains(err.Error(), "half-way through a change") {
			t.Fatalf("Serve = %v, want ErrHandlerPanic", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still running after the panic")
	}
}

// rawCall writes payload as a frame and reads one reply envelope.
func rawCall(t *testing.T, conn net.Conn, payload []byte) envelope {
	t.Helper()
	if err := WriteFrame(conn, payload, DefaultMaxFrameSize); err != nil {
		t.Fatal(err)
	}
	in, err := ReadFrame(conn, DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	var env envelope
	if err := Unmarshal(in, &env); err != nil {
		t.Fatal(err)
	}
	return env
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMalformedFrames(t *testing.T) {
	conn, _ := start(t, 0)
	body := mustMarshal(t, StateInfo{})
	tests := []struct {
		name    string
		payload []byte
		wantID  uint64
		want    Code
	}{
		{"empty", nil, 0, CodeBadFrame},
		{"not cbor", []byte{0xff, 0x00, 0x13}, 0, CodeBadFrame},
		{"cbor but not an envelope", mustMarshal(t, []int{1, 2}), 0, CodeBadFrame},
		{"unknown envelope field", mustMarshal(t, map[string]any{"v": 1, "id": 1, "t": "state_info", "b": body, "x": 1}), 0, CodeBadFrame},
		{"trailing bytes", append(mustMarshal(t, envelope{Version: Version, ID: 4, Type: TypeStateInfo, Body: body}), 0), 0, CodeBadFrame},
		{"wrong version", mustMarshal(t, envelope{Version: Version + 1, ID: 5, Type: TypeStateInfo, Body: body}), 5, CodeUnsupportedVersion},
		{"unknown type", mustMarshal(t, envelope{Version: Version, ID: 6, Type: "launch_missiles", Body: body}), 6, CodeUnknownType},
		{"reply type as request", mustMarshal(t, envelope{Version: Version, ID: 7, Type: "state_info.reply", Body: body}), 7, CodeUnknownType},
		{"body of another type", mustMarshal(t, envelope{Version: Version, ID: 8, Type: TypeStateInfo, Body: mustMarshal(t, GetState{Key: []byte{1}})}), 8, CodeBadRequest},
		{"short fixed array", mustMarshal(t, envelope{Version: Version, ID: 9, Type: TypeInit, Body: mustMarshal(t, map[string]any{
			"shard": []byte{1, 2, 3}, "chain_id": "x", "genesis_validators": []byte{}, "initial_height": 1,
			"confirm_every": 1, "dev": false, "dev_sudo": make([]byte, 32)})}), 9, CodeBadRequest},
		{"non-canonical body", mustMarshal(t, envelope{Version: Version, ID: 10, Type: TypeGetState, Body: []byte{0xa1, 0x63, 'k', 'e', 'y', 0x5a, 0, 0, 0, 1, 7}}), 10, CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := rawCall(t, conn, tt.payload)
			if env.Type != TypeError {
				t.Fatalf("reply type %q, want error", env.Type)
			}
			var e Error
			if err := Unmarshal(env.Body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Code != tt.want || env.ID != tt.wantID {
				t.Fatalf("reply id %d code %s (%s), want id %d code %s", env.ID, e.Code, e.Message, tt.wantID, tt.want)
			}
		})
	}
	// Still serving.
	env := rawCall(t, conn, mustMarshal(t, envelope{Version: Version, ID: 11, Type: TypeStateInfo, Body: body}))
	if env.Type != "state_info.reply" || env.ID != 11 {
		t.Fatalf("after malformed frames: %+v", env)
	}
}

func TestOversizeFrameRefused(t *testing.T) {
	conn, wait := start(t, 1024)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1<<30)
	if _, err := conn.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	in, err := ReadFrame(conn, DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	var env envelope
	var e Error
	if err := Unmarshal(in, &env); err != nil {
		t.Fatal(err)
	}
	if err := Unmarshal(env.Body, &e); err != nil || e.Code != CodeFrameTooLarge {
		t.Fatalf("reply %+v %+v, %v", env, e, err)
	}
	if err := wait(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Serve = %v, want ErrTooLarge", err)
	}
}

func TestClientRefusesOversizeRequest(t *testing.T) {
	conn, _ := start(t, 0)
	c := NewClient(conn, 256)
	_, err := c.Call(context.Background(), &GetState{Key: make([]byte, 300)})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Call(context.Background(), &StateInfo{}); err != nil {
		t.Fatalf("client unusable after refusing locally: %v", err)
	}
}

func TestServeEOF(t *testing.T) {
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), b, HandlerFunc(echo)) }()
	a.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve at EOF = %v", err)
	}
}

func TestCallCancelled(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := NewClient(a, 0)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Read the request, never answer, then cancel.
		ReadFrame(b, DefaultMaxFrameSize)
		cancel()
	}()
	if _, err := c.Call(ctx, &StateInfo{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Call(context.Background(), &StateInfo{}); !errors.Is(err, ErrClientBroken) {
		t.Fatalf("after cancel: %v", err)
	}
}

func TestRequestsRoundTrip(t *testing.T) {
	sign := &TxParams{ChainID: "c", Nonce: 3, BaseFee: 1, PerByteFee: 2}
	reqs := []Request{
		&Init{Shard: [32]byte{1}, ChainID: "c", GenesisValidators: []byte{1}, InitialHeight: 1,
			SealedKeys: &SealedKeys{Signer: []byte{1}, Shielding: []byte{2}, State: []byte{3}}, ConfirmHeartbeat: 2},
		PackEntries([]Entry{{Key: [32]byte{1}, Value: []byte{2}}}),
		&Resume{}, &Attest{},
		&SignRegistration{Params: *sign, WorkerURL: "ws://127.0.0.1:1"},
		&ProcessBlock{Block: Header{SignedHeader: []byte{1}, Validators: []byte{2}}, Txs: [][]byte{{3}},
			Results: []TxResult{{Code: 1, Data: []byte{}, GasWanted: 2, GasUsed: 3}}, Next: Header{SignedHeader: []byte{4}, Validators: []byte{5}}},
		&SignOutgoing{Calls: []Outgoing{{Call: tx.Call{Module: "m", Method: "x", Args: []byte{0xa0}}, Tag: []byte{1}}}, Params: *sign},
		&ExecuteGetter{Getter: []byte{1}}, &StateInfo{}, &GetState{Key: []byte("k")},
		&SubmitCalls{Calls: [][]byte{{1}, {2}}, Timestamp: 5}, &PrivateGetter{Request: []byte{1}},
		&ProvisionInit{Init: Init{Shard: [32]byte{2}, ChainID: "c", GenesisValidators: []byte{1}, InitialHeight: 1}},
		&ProvisionStep{In: []byte{0x16, 3}}, &ProvisionServe{Session: 2, Checkpoint: []byte{1}, In: []byte{0x17}, Abort: true},
		&ReplicaStart{Records: [][]byte{{1}, {2, 3}}, More: true}, &ReplicaStep{Ticks: 3, Envelopes: [][]byte{{4}}},
	}
	if len(reqs) != len(Requests()) {
		t.Fatalf("test covers %d request types, protocol has %d", len(reqs), len(Requests()))
	}
	for _, req := range reqs {
		t.Run(req.Type(), func(t *testing.T) {
			payload, err := EncodeRequest(42, req)
			if err != nil {
				t.Fatal(err)
			}
			orig := bytes.Clone(payload)
			id, got, err := DecodeRequest(payload)
			if err != nil || id != 42 {
				t.Fatalf("decode: id %d, %v", id, err)
			}
			// The decoded request holds nothing of the frame: the
			// envelope's body is a slice of it, the request is not.
			for i := range payload {
				payload[i] = 0xff
			}
			again, err := EncodeRequest(42, got)
			if err != nil || !bytes.Equal(again, orig) {
				t.Fatalf("re-encode differs after the frame was overwritten: %v", err)
			}
		})
	}
}

func TestReadFrameTruncated(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"short header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"short payload", []byte{0, 0, 0, 5, 1, 2}, io.ErrUnexpectedEOF},
		{"too large", []byte{0, 0, 1, 0}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tt.in), 255)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzDecodeFrame feeds arbitrary bytes to the frame reader and the request
// decoder: they must return an error or a request that re-encodes, never
// panic.
func FuzzDecodeFrame(f *testing.F) {
	for _, req := range Requests() {
		p, err := EncodeRequest(1, req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...))
	}
	f.Add([]byte{0, 0, 0, 1, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		payload, err := ReadFrame(bytes.NewReader(data), 1<<16)
		if err != nil {
			return
		}
		id, req, err := DecodeRequest(payload)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code == "" {
				t.Fatalf("decode error %v is not a coded *Error", err)
			}
			return
		}
		again, err := EncodeRequest(id, req)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(again, payload) {
			t.Fatalf("accepted a non-canonical frame")
		}
	})
}

// TestInitHasNoTrustSwitch: an old host's Init with the former dev switch
// (dev, dev_sudo) does not decode: unknown fields are refused, so no host
// message can turn dev features on (they are the enclave build's).
func TestInitHasNoTrustSwitch(t *testing.T) {
	body, err := Marshal(map[string]any{
		"shard": make([]byte, 32), "chain_id": "c", "genesis_validators": []byte{1}, "initial_height": 1,
		"confirm_every": 1, "dev": true, "dev_sudo": make([]byte, 32),
	})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := Marshal(envelope{Version: Version, ID: 7, Type: TypeInit, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := DecodeRequest(payload)
	if id != 7 || !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "unknown field") {
		t.Fatalf("init with a dev switch: id %d, %v", id, err)
	}
}

// FuzzUnpackEntries feeds LoadEntries payloads as a host could send them:
// Unpack never panics, refuses anything malformed with ErrPacked, and what
// it unpacks packs to the same bytes (one form per payload).
func FuzzUnpackEntries(f *testing.F) {
	f.Add(PackEntries([]Entry{{Key: [32]byte{1}, Value: []byte{2, 3}}, {Key: [32]byte{4}}}).Packed)
	f.Add(make([]byte, 33))
	f.Add(append(make([]byte, 32), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := (&LoadEntries{Packed: b}).Unpack()
		if err != nil {
			if !errors.Is(err, ErrPacked) || es != nil {
				t.Fatalf("error %v with %d entries", err, len(es))
			}
			return
		}
		if again := PackEntries(es).Packed; !bytes.Equal(again, b) {
			t.Fatalf("%d bytes unpacked to %d entries that pack to %d bytes", len(b), len(es), len(again))
		}
	})
}

// scripted is a connection that records what the client writes and
// answers each request with its empty reply.
type scripted struct {
	t       *testing.T
	written [][]byte
	next    bytes.Buffer
}

func (s *scripted) Write(p []byte) (int, error) {
	s.written = append(s.written, bytes.Clone(p))
	id, req, err := DecodeRequest(p[headerSize:])
	if err != nil {
		s.t.Fatal(err)
	}
	payload, err := encodeReply(id, req.newReply(), nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := WriteFrame(&s.next, payload, DefaultMaxFrameSize); err != nil {
		s.t.Fatal(err)
	}
	return len(p), nil
}

func (s *scripted) Read(p []byte) (int, error) { return s.next.Read(p) }

// TestClientFramesAsEncodeRequest: the client's frames, encoded in buffers
// it keeps from call to call, are EncodeRequest's payloads with their
// header, byte for byte: a small request after a large one carries none of
// the large one's bytes.
func TestClientFramesAsEncodeRequest(t *testing.T) {
	conn := &scripted{t: t}
	c := NewClient(conn, 0)
	many := make([][]byte, 2000)
	for i := range many {
		many[i] = bytes.Repeat([]byte{byte(i)}, 200)
	}
	reqs := []Request{&StateInfo{}, &SubmitCalls{Calls: many, Timestamp: 9}, &GetState{Key: []byte("k")}, &SubmitCalls{Calls: many[:3]}, &StateInfo{}}
	for i, req := range reqs {
		if _, err := c.Call(context.Background(), req); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		payload, err := EncodeRequest(uint64(i+1), req)
		if err != nil {
			t.Fatal(err)
		}
		want := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
		if want = append(want, payload...); !bytes.Equal(conn.written[i], want) {
			t.Fatalf("call %d (%s): frame of %d bytes differs from EncodeRequest's %d", i, req.Type(), len(conn.written[i]), len(want))
		}
	}
}

// TestClientDropsLargeBuffers: the client keeps its request buffers from
// call to call, but not those of a request larger than maxKeptBuffer.
func TestClientDropsLargeBuffers(t *testing.T) {
	c := NewClient(&scripted{t: t}, 0)
	ctx := context.Background()
	if _, err := c.Call(ctx, &SubmitCalls{Calls: [][]byte{make([]byte, 1000)}}); err != nil {
		t.Fatal(err)
	}
	if c.frame.Cap() == 0 || c.body.Cap() == 0 {
		t.Fatalf("buffers of a small request dropped: frame %d, body %d", c.frame.Cap(), c.body.Cap())
	}
	if _, err := c.Call(ctx, &SubmitCalls{Calls: [][]byte{make([]byte, maxKeptBuffer)}}); err != nil {
		t.Fatal(err)
	}
	if c.frame.Cap() != 0 || c.body.Cap() != 0 {
		t.Fatalf("buffers of a request over %d bytes kept: frame %d, body %d", maxKeptBuffer, c.frame.Cap(), c.body.Cap())
	}
}

// TestEntryFormat: an Entry is the CBOR map it always was (its key a byte
// string of 32), as stores and sealed checkpoints hold it, and reads
// back.
func TestEntryFormat(t *testing.T) {
	e := Entry{Key: [32]byte{1, 2, 3, 31: 0xff}, Value: []byte("sealed")}
	got, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Marshal(struct {
		Key   [32]byte `cbor:"k"`
		Value []byte   `cbor:"v"`
	}{e.Key, e.Value})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Entry encodes as %x, want %x", got, want)
	}
	var back Entry
	if err := Unmarshal(want, &back); err != nil || back.Key != e.Key || !bytes.Equal(back.Value, e.Value) {
		t.Fatalf("decoded %+v, %v; want %+v", back, err, e)
	}
}
