// Command integritee-enclave is the trusted half of an integritee worker.
// The worker host starts it as a child process and speaks the enclave
// protocol (package enclave/protocol) over its stdin and stdout; logs go to
// stderr. It opens no files and no sockets of its own: everything it
// persists goes to the host sealed or encrypted. It exits non-zero if
// handling a request panicked (after answering it with "restart
// required"): its state may be half-changed, so the host must start a
// fresh process from what it persisted.
//
//	integritee-enclave [--tee sim|gramine] [--gramine-dir DIR] [--log-level LEVEL] [--trusting-period D]
//
// With --tee sim (development) MRENCLAVE is the SHA-256 of this executable
// and quotes chain to the sim dev PKI; with --tee gramine it runs inside a
// Gramine SGX enclave and uses /dev/attestation.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/tee"
	"github.com/integritee-go/integritee/tee/gramine"
	"github.com/integritee-go/integritee/tee/sim"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "integritee-enclave:", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	tee            string
	gramineDir     string
	logLevel       slog.Level
	trustingPeriod time.Duration
}

func parse(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("integritee-enclave", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.tee, "tee", "sim", "TEE backend: sim or gramine")
	fs.StringVar(&o.gramineDir, "gramine-dir", gramine.DefaultDir, "Gramine attestation pseudo-file directory")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.DurationVar(&o.trustingPeriod, "trusting-period", 0, "maximum time between consecutive block headers (0: 14 days)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, nil
}

func backend(o *options) (tee.Backend, error) {
	switch o.tee {
	case "sim":
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("locate own executable: %w", err)
		}
		return sim.New(sim.Config{EnclaveBinary: exe})
	case "gramine":
		return gramine.New(o.gramineDir)
	}
	return nil, fmt.Errorf("unknown --tee %q: want sim or gramine", o.tee)
}

// peers is the trust configuration for key provisioning between enclaves
// of a shard. A sim enclave trusts its own dev PKI (compiled in through
// the dev seed) and makes the dev collateral itself. Gramine needs
// Intel's root and PCS collateral inside the enclave, which it does not
// have yet: provisioning is refused there.
func peers(b tee.Backend) *enclave.PeerAttestation {
	s, ok := b.(*sim.Backend)
	if !ok {
		return nil
	}
	p := s.PKI()
	return &enclave.PeerAttestation{
		Roots:      []*x509.Certificate{p.Root()},
		Collateral: func([6]byte) (*pcs.Collateral, error) { return p.Collateral(time.Now()) },
	}
}

// stdio is the connection to the host. Close closes stdin, which unblocks
// a pending read when a signal stops the server.
type stdio struct {
	io.Reader
	io.Writer
}

func (s stdio) Close() error {
	if c, ok := s.Reader.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	b, err := backend(o)
	if err != nil {
		return err
	}
	e, err := enclave.New(enclave.Config{Backend: b, TrustingPeriod: o.trustingPeriod, Logger: log, Peers: peers(b)})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := b.Measurement()
	log.Info("serving", "tee", o.tee, "mrenclave", fmt.Sprintf("%x", m[:]))
	s := &protocol.Server{Handler: e, Logger: log}
	err = s.Serve(ctx, stdio{stdin, stdout})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
