package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrClientBroken is returned by every call after the connection failed or
// a call was cancelled mid-way: the stream may be out of step.
var ErrClientBroken = errors.New("protocol: client connection broken")

// Client calls a Server over one connection. Calls are serialised. It is
// safe for concurrent use.
type Client struct {
	mu     sync.Mutex
	conn   io.ReadWriter
	max    int
	nextID uint64
	broken error
	// body and frame are the buffers a request is encoded in, kept from
	// call to call (calls are serialised): a direct batch's request is
	// 50-500 KiB, and its three copies (body, envelope, frame) were 9% of
	// the worker's allocations under load.
	body, frame bytes.Buffer
	// reply is the buffer replies are read into, kept the same way: a
	// decoded reply holds no slice of it (Unmarshal copies), and fresh
	// ones were 6% of the worker's allocations under load.
	reply []byte
}

// maxKeptBuffer bounds the request buffers a Client keeps between calls.
const maxKeptBuffer = 4 << 20

// NewClient returns a client on conn. maxFrameSize bounds the frames in
// both directions; 0 means DefaultMaxFrameSize.
func NewClient(conn io.ReadWriter, maxFrameSize int) *Client {
	if maxFrameSize <= 0 {
		maxFrameSize = DefaultMaxFrameSize
	}
	return &Client{conn: conn, max: maxFrameSize, nextID: 1}
}

// Call sends req and returns its typed reply. An error reply is returned as
// an *Error (match codes with errors.Is against the Err* sentinels). If ctx
// is done before the reply arrives, the connection is closed (when it is an
// io.Closer) and the client is broken.
func (c *Client) Call(ctx context.Context, req Request) (Reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil, fmt.Errorf("%w: %w", ErrClientBroken, c.broken)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id := c.nextID
	c.nextID++
	defer c.dropLargeBuffers()
	frame, err := c.encodeFrame(id, req)
	if err != nil {
		return nil, err
	}
	if cl, ok := c.conn.(io.Closer); ok {
		stop := context.AfterFunc(ctx, func() { cl.Close() })
		defer stop()
	}
	rep, err := c.roundTrip(id, frame, req)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, err
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		c.broken = err
		return nil, err
	}
	return rep, nil
}

func (c *Client) roundTrip(id uint64, frame []byte, req Request) (Reply, error) {
	if err := checkFrameSize(len(frame)-headerSize, c.max); err != nil {
		// Nothing was written: the stream is still in step.
		return nil, Errorf(CodeFrameTooLarge, "%v", err)
	}
	if _, err := c.conn.Write(frame); err != nil {
		return nil, fmt.Errorf("send %s: %w", req.Type(), err)
	}
	in, err := readFrameInto(c.conn, c.max, c.reply)
	c.reply = in
	if err != nil {
		return nil, fmt.Errorf("receive %s reply: %w", req.Type(), err)
	}
	gotID, rep, err := decodeReply(in, req)
	var e *Error
	if err != nil && !errors.As(err, &e) {
		return nil, err
	}
	if gotID != id {
		return nil, fmt.Errorf("reply to request %d, want %d", gotID, id)
	}
	return rep, err
}

// encodeFrame encodes req as request id in c.frame, header and payload
// (EncodeRequest's), and returns it; it stays valid until the next call.
func (c *Client) encodeFrame(id uint64, req Request) ([]byte, error) {
	c.frame.Reset()
	c.frame.Write([]byte{headerSize - 1: 0})
	if err := appendEnvelope(&c.frame, &c.body, id, req.Type(), req); err != nil {
		return nil, err
	}
	f := c.frame.Bytes()
	binary.BigEndian.PutUint32(f, uint32(len(f)-headerSize))
	return f, nil
}

// dropLargeBuffers lets a rare large request's or reply's buffers go.
func (c *Client) dropLargeBuffers() {
	if c.body.Cap() > maxKeptBuffer {
		c.body = bytes.Buffer{}
	}
	if c.frame.Cap() > maxKeptBuffer {
		c.frame = bytes.Buffer{}
	}
	if cap(c.reply) > maxKeptBuffer {
		c.reply = nil
	}
}

// CallAs calls req and returns its reply as type R.
func CallAs[R Reply](ctx context.Context, c *Client, req Request) (R, error) {
	rep, err := c.Call(ctx, req)
	return ReplyAs[R](req, rep, err)
}

// ReplyAs narrows the reply to req (or passes on err) to the reply type R
// the caller expects.
func ReplyAs[R Reply](req Request, rep Reply, err error) (R, error) {
	var zero R
	if err != nil {
		return zero, err
	}
	r, ok := rep.(R)
	if !ok {
		return zero, fmt.Errorf("reply %T to %s, want %T", rep, req.Type(), zero)
	}
	return r, nil
}
