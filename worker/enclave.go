package worker

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// Enclave is a connection to an enclave speaking enclave/protocol: a child
// process (StartProcess) or, in tests, a handler served in-process over
// net.Pipe (Pipe).
type Enclave interface {
	// Call sends one request and returns its reply; an error reply is a
	// *protocol.Error.
	Call(ctx context.Context, req protocol.Request) (protocol.Reply, error)
	// Close ends the connection and, for a process, the process.
	Close() error
}

// EnclaveFactory starts a fresh enclave. The worker calls it again when the
// enclave it talks to dies.
type EnclaveFactory func(ctx context.Context) (Enclave, error)

// A caller answers enclave requests: an Enclave connection alone (no
// restart: a start being restored, a fresh enclave being provisioned), or
// the supervisor (supervisor.Call: in turn, restarted when it died).
type caller interface {
	Call(ctx context.Context, req protocol.Request) (protocol.Reply, error)
}

// callAs sends req to c and returns the reply as R.
func callAs[R protocol.Reply](ctx context.Context, c caller, req protocol.Request) (R, error) {
	rep, err := c.Call(ctx, req)
	r, err := protocol.ReplyAs[R](req, rep, err)
	if err != nil {
		return r, fmt.Errorf("enclave %s: %w", req.Type(), err)
	}
	return r, nil
}

// ProcessConfig describes the enclave executable.
type ProcessConfig struct {
	// Path is the integritee-enclave executable.
	Path string
	// Args are its command-line arguments.
	Args []string
	// Logger receives the enclave's stderr, line by line; nil discards it.
	Logger *slog.Logger
	// MaxFrameSize bounds protocol frames; 0 means the protocol default.
	MaxFrameSize int
}

// Process is an enclave running as a child process, spoken to over its
// stdin and stdout.
type Process struct {
	cmd    *exec.Cmd
	client *protocol.Client
	stdin  io.WriteCloser
	stdout io.ReadCloser
	done   chan struct{}
	err    error // of Wait, valid once done is closed

	closeOnce sync.Once
	closeErr  error
}

// StartProcess starts the enclave executable. The child dies with the
// worker: Linux's parent-death signal kills it if the worker is killed, and
// it reads EOF on stdin (and exits) when the worker closes the pipe.
func StartProcess(cfg ProcessConfig) (*Process, error) {
	cmd := exec.Command(cfg.Path, cfg.Args...)
	// The worker's GOGC is the worker's: the enclave sets its own from its
	// heap unless GOGC is set, and an operator tuning the host must not
	// switch that off by accident.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOGC=") })
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start enclave: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start enclave: %w", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("start enclave: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start enclave %s: %w", cfg.Path, err)
	}
	p := &Process{cmd: cmd, stdin: stdin, stdout: stdout, done: make(chan struct{})}
	p.client = protocol.NewClient(pipeConn{r: stdout, w: stdin}, cfg.MaxFrameSize)
	logs := make(chan struct{})
	go func() {
		defer close(logs)
		relayLines(stderr, cfg.Logger)
	}()
	go func() {
		<-logs // Wait closes the stderr pipe: read it to the end first
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the enclave process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Call implements Enclave. If the process dies mid-call the error says so.
func (p *Process) Call(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	rep, err := p.client.Call(ctx, req)
	if err != nil {
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			select {
			case <-p.done:
				return nil, fmt.Errorf("%w (enclave process exited: %v)", err, p.err)
			default:
			}
		}
	}
	return rep, err
}

// Close closes the enclave's stdin, waits up to five seconds for it to
// exit and kills it otherwise.
func (p *Process) Close() error {
	p.closeOnce.Do(func() {
		p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		var ee *exec.ExitError
		if p.err != nil && !errors.As(p.err, &ee) {
			p.closeErr = p.err
		}
	})
	return p.closeErr
}

// pipeConn joins the child's stdout and stdin into one stream; Close
// closes both, so that a cancelled call unblocks.
type pipeConn struct {
	r io.ReadCloser
	w io.WriteCloser
}

func (c pipeConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c pipeConn) Write(b []byte) (int, error) { return c.w.Write(b) }
func (c pipeConn) Close() error                { return errors.Join(c.w.Close(), c.r.Close()) }

func relayLines(r io.Reader, log *slog.Logger) {
	if log == nil {
		io.Copy(io.Discard, r)
		return
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		// ReadSlice returns a full buffer as one line: long lines are
		// split, never held without bound.
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			log.Info(strings.TrimRight(string(line), "\n"))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// pipeEnclave serves a handler in-process over net.Pipe: the same framing
// and codec as a child process, for tests.
type pipeEnclave struct {
	client *protocol.Client
	conn   net.Conn
	cancel context.CancelFunc
	served chan struct{}
}

// Pipe serves h in-process over net.Pipe and returns the host end.
func Pipe(h protocol.Handler) Enclave {
	host, encl := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeEnclave{client: protocol.NewClient(host, 0), conn: host, cancel: cancel, served: make(chan struct{})}
	go func() {
		defer close(p.served)
		protocol.Serve(ctx, encl, h)
		encl.Close()
	}()
	return p
}

func (p *pipeEnclave) Call(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	return p.client.Call(ctx, req)
}

func (p *pipeEnclave) Close() error {
	p.conn.Close()
	p.cancel()
	<-p.served
	return nil
}

// ProcessFactory returns a factory that starts cfg's executable.
func ProcessFactory(cfg ProcessConfig) EnclaveFactory {
	return func(context.Context) (Enclave, error) {
		p, err := StartProcess(cfg)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}

// SimMRENCLAVE is the measurement of a sim enclave: the SHA-256 of its
// executable. A shard is named by the measurement that serves it first.
func SimMRENCLAVE(enclaveBinary string) ([32]byte, error) {
	f, err := os.Open(enclaveBinary)
	if err != nil {
		return [32]byte{}, fmt.Errorf("measure enclave: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, fmt.Errorf("measure enclave: %w", err)
	}
	return [32]byte(h.Sum(nil)), nil
}
