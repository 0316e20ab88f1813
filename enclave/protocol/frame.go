package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// DefaultMaxFrameSize bounds a frame unless a Server or Client sets another
// limit. It fits a full CometBFT block (22 MB by default) with its header,
// commit and validators.
const DefaultMaxFrameSize = 32 << 20

// headerSize is the length prefix: a big-endian uint32.
const headerSize = 4

// ErrTooLarge is returned by ReadFrame and WriteFrame for a frame above the
// limit.
var ErrTooLarge = errors.New("protocol: frame too large")

// ReadFrame reads one frame of at most max bytes. A length above max gives
// ErrTooLarge without reading the payload.
func ReadFrame(r io.Reader, max int) ([]byte, error) { return readFrameInto(r, max, nil) }

// readFrameInto is ReadFrame into buf's storage, if it has room.
func readFrameInto(r io.Reader, max int, buf []byte) ([]byte, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, max)
	}
	if cap(buf) >= int(n) {
		buf = buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read frame payload: %w", err)
	}
	return buf, nil
}

// WriteFrame writes payload as one frame of at most max bytes.
func WriteFrame(w io.Writer, payload []byte, max int) error {
	if err := checkFrameSize(len(payload), max); err != nil {
		return err
	}
	buf := make([]byte, headerSize+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	copy(buf[headerSize:], payload)
	_, err := w.Write(buf)
	return err
}

// checkFrameSize refuses a payload of n bytes that a frame of at most max
// bytes (and its 32-bit length) cannot carry.
func checkFrameSize(n, max int) error {
	if n > max || uint64(n) > 0xffffffff {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, max)
	}
	return nil
}

// envelope is the CBOR content of every frame.
type envelope struct {
	Version uint64 `cbor:"v"`
	ID      uint64 `cbor:"id"`
	Type    string `cbor:"t"`
	Body    body   `cbor:"b"`
}

// body is cbor.RawMessage (the same encoding) without its copy on decode:
// a decoded body is a slice of the frame's payload, which every decoder
// here keeps until the body is decoded in turn (into values of their own:
// the codec copies byte strings). The copy was 5% of the worker's
// allocations under load.
type body []byte

func (b body) MarshalCBOR() ([]byte, error) { return cbor.RawMessage(b).MarshalCBOR() }

func (b *body) UnmarshalCBOR(data []byte) error {
	*b = data
	return nil
}

func encodeEnvelope(id uint64, typ string, v any) ([]byte, error) {
	var frame, scratch bytes.Buffer
	if err := appendEnvelope(&frame, &scratch, id, typ, v); err != nil {
		return nil, err
	}
	return frame.Bytes(), nil
}

// appendEnvelope appends to frame the envelope of v as message id of type
// typ, v's own encoding made in scratch.
func appendEnvelope(frame, scratch *bytes.Buffer, id uint64, typ string, v any) error {
	cd, err := protocolCodec()
	if err != nil {
		return err
	}
	scratch.Reset()
	if err := cd.MarshalTo(scratch, v); err != nil {
		return fmt.Errorf("encode %s: %w", typ, err)
	}
	if err := cd.MarshalTo(frame, envelope{Version: Version, ID: id, Type: typ, Body: scratch.Bytes()}); err != nil {
		return fmt.Errorf("encode %s: %w", typ, err)
	}
	return nil
}

// EncodeRequest returns the frame payload of request id.
func EncodeRequest(id uint64, req Request) ([]byte, error) {
	return encodeEnvelope(id, req.Type(), req)
}

// DecodeRequest parses a frame payload into its request. The id is returned
// whenever the envelope decoded, even if the body did not, so that the
// error reply can name it. Errors are *Error with the code the server
// replies with.
func DecodeRequest(payload []byte) (id uint64, req Request, err error) {
	var env envelope
	if err := Unmarshal(payload, &env); err != nil {
		return 0, nil, Errorf(CodeBadFrame, "envelope: %v", err)
	}
	if env.Version != Version {
		return env.ID, nil, Errorf(CodeUnsupportedVersion, "version %d, want %d", env.Version, Version)
	}
	req, ok := newRequest(env.Type)
	if !ok {
		return env.ID, nil, Errorf(CodeUnknownType, "request type %q", env.Type)
	}
	if err := Unmarshal(env.Body, req); err != nil {
		return env.ID, nil, Errorf(CodeBadRequest, "%s: %v", env.Type, err)
	}
	return env.ID, req, nil
}

// encodeReply returns the frame payload of the reply to request id: the
// typed reply, or the error variant when e is not nil.
func encodeReply(id uint64, rep Reply, e *Error) ([]byte, error) {
	if e != nil {
		return encodeEnvelope(id, TypeError, e)
	}
	return encodeEnvelope(id, rep.Type(), rep)
}

// decodeReply parses a reply payload for req: its typed reply, or the
// *Error it carries.
func decodeReply(payload []byte, req Request) (uint64, Reply, error) {
	var env envelope
	if err := Unmarshal(payload, &env); err != nil {
		return 0, nil, fmt.Errorf("decode reply envelope: %w", err)
	}
	if env.Version != Version {
		return env.ID, nil, fmt.Errorf("reply version %d, want %d", env.Version, Version)
	}
	if env.Type == TypeError {
		var e Error
		if err := Unmarshal(env.Body, &e); err != nil {
			return env.ID, nil, fmt.Errorf("decode error reply: %w", err)
		}
		return env.ID, nil, &e
	}
	rep := req.newReply()
	if env.Type != rep.Type() {
		return env.ID, nil, fmt.Errorf("reply type %q to %q, want %q", env.Type, req.Type(), rep.Type())
	}
	if err := Unmarshal(env.Body, rep); err != nil {
		return env.ID, nil, fmt.Errorf("decode %s: %w", env.Type, err)
	}
	return env.ID, rep, nil
}
