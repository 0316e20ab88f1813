package enclave

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// errPumpClosed is what a session's Read or Write returns once the session
// was abandoned.
var errPumpClosed = errors.New("provisioning session closed")

// errRecordTooLarge means a side wrote more than protocol.MaxProvisionRecord
// bytes in one step.
var errRecordTooLarge = errors.New("provisioning step output too large")

// pump runs a TLS session inside the enclave over bytes the host relays.
// The session runs in its own goroutine on the pump as its net.Conn: Read
// takes what the host fed, Write collects what the host will carry to the
// peer. step hands the session the peer's bytes and returns, once the
// session waits for more input (or ended), what it wrote meanwhile. So the
// host drives the session request by request, and the protocol handler
// never waits for the network.
type pump struct {
	mu      sync.Mutex
	cond    *sync.Cond
	in      []byte // fed, not yet read
	out     []byte // written, not yet taken
	limit   int
	waiting bool // the session blocks in Read with nothing to read, or in await
	// payload is what deliver handed over for await; awaiting is true while
	// the session blocks in await.
	payload  any
	awaiting bool
	ended    bool
	closed   bool
	err      error // the session's outcome once ended
}

func newPump(limit int) *pump {
	p := &pump{limit: limit}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// run starts the session; its result is reported by step once it ends.
func (p *pump) run(session func(conn net.Conn) error) {
	go func() {
		err := session(p)
		p.mu.Lock()
		p.ended, p.err = true, err
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
}

// step feeds in and returns the session's output up to its next wait for
// input; ended reports that the session finished, with err its outcome.
func (p *pump) step(in []byte) (out []byte, ended bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.in)+len(in) > p.limit {
		return nil, false, errRecordTooLarge
	}
	p.in = append(p.in, in...)
	if len(in) > 0 {
		// The session has input again: it is not waiting until it says so.
		p.waiting = false
		p.cond.Broadcast()
	}
	for !p.ended && !(p.waiting && (len(p.in) == 0 || p.awaiting)) {
		p.cond.Wait()
	}
	out, p.out = p.out, nil
	if len(out) > p.limit {
		return nil, false, errRecordTooLarge
	}
	return out, p.ended, p.err
}

// close abandons the session: its pending and future reads and writes
// fail, so its goroutine ends.
// await blocks the session until the host delivers a value (deliver); a
// step meanwhile returns with awaits() true.
func (p *pump) await() (any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.awaiting = true
	for p.payload == nil && !p.closed {
		p.waiting = true
		p.cond.Broadcast()
		p.cond.Wait()
	}
	p.waiting, p.awaiting = false, false
	if p.closed {
		return nil, errPumpClosed
	}
	v := p.payload
	p.payload = nil
	return v, nil
}

// awaits reports whether the session blocks in await.
func (p *pump) awaits() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.awaiting && p.waiting
}

// deliver hands v to the session blocked in await.
func (p *pump) deliver(v any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.payload, p.waiting = v, false
	p.cond.Broadcast()
}

func (p *pump) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Read implements net.Conn for the session.
func (p *pump) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.in) == 0 && !p.closed {
		p.waiting = true
		p.cond.Broadcast()
		p.cond.Wait()
	}
	p.waiting = false
	if p.closed {
		return 0, errPumpClosed
	}
	n := copy(b, p.in)
	p.in = p.in[n:]
	if len(p.in) == 0 {
		p.in = nil
	}
	return n, nil
}

// Write implements net.Conn for the session.
func (p *pump) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errPumpClosed
	}
	if len(p.out)+len(b) > p.limit {
		return 0, errRecordTooLarge
	}
	p.out = append(p.out, b...)
	return len(b), nil
}

// Close implements net.Conn: the session's end of the pipe. Output already
// written stays for the host to take.
func (p *pump) Close() error { return nil }

// The session never sets deadlines: the host's relaying bounds its time.
func (p *pump) SetDeadline(time.Time) error      { return nil }
func (p *pump) SetReadDeadline(time.Time) error  { return nil }
func (p *pump) SetWriteDeadline(time.Time) error { return nil }
func (p *pump) LocalAddr() net.Addr              { return pumpAddr{} }
func (p *pump) RemoteAddr() net.Addr             { return pumpAddr{} }

type pumpAddr struct{}

func (pumpAddr) Network() string { return "enclave-relay" }
func (pumpAddr) String() string  { return "host-relayed" }

var (
	_ net.Conn  = (*pump)(nil)
	_ io.Reader = (*pump)(nil)
)
