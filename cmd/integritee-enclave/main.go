// Command integritee-enclave is the trusted half of an integritee worker.
// The worker host starts it as a child process and speaks the enclave
// protocol (package enclave/protocol) over its stdin and stdout; logs go to
// stderr. It opens no files and no sockets of its own: everything it
// persists goes to the host sealed or encrypted. It exits non-zero if
// handling a request panicked (after answering it with "restart
// required"): its state may be half-changed, so the host must start a
// fresh process from what it persisted.
//
//	integritee-enclave [--tee sim|gramine] [--log-level LEVEL]
//	    [--gramine-dir DIR] [--trusting-period D]   (dev and test builds only)
//	    [--sim-sealing-secret HEX]                  (builds with the simulated TEE only)
//
// With --tee gramine it runs inside a Gramine SGX enclave and uses
// /dev/attestation. With --tee sim MRENCLAVE is the SHA-256 of this
// executable and quotes chain to a simulated PKI.
//
// What the enclave trusts is fixed when it is built, never by the host:
//
//	go build ./cmd/integritee-enclave               production: Gramine only
//	go build -tags dev ./cmd/integritee-enclave     dev: sim under the dev PKI, dev features
//	go build -tags testtee ./cmd/integritee-enclave production rules, sim under the test PKI
//
// Dev features (set_balance by the dev sudo, plaintext state access, debug
// peers) exist only in the dev build; since the build tag changes the
// binary, a dev build never has a production build's measurement.
package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/integritee-go/integritee/attestation/roots"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/internal/gctune"
	"github.com/integritee-go/integritee/tee"
	"github.com/integritee-go/integritee/tee/gramine"
)

// buildConfig is the configuration compiled into the binary by build tag
// (build_*.go): part of the measurement.
type buildConfig struct {
	name string
	// dev enables the dev features (enclave.Config.Dev) with devSudo.
	dev     bool
	devSudo tx.Address
	// defaultTEE is the --tee default; simSeed seeds the sim backend's PKI,
	// empty when the build has no simulated TEE.
	defaultTEE string
	simSeed    string
	// tunable lets the command line set --gramine-dir and
	// --trusting-period (dev and test builds only).
	tunable bool
}

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
	// simSealingSecret is the sim backend's sealing secret (the
	// machine's, which its host chooses: in sim mode the host is the
	// TEE); nil means the one derived from the build's PKI.
	simSealingSecret []byte
}

func parse(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("integritee-enclave", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.tee, "tee", build.defaultTEE, "TEE backend: gramine, or sim where the build has it")
	o.gramineDir = gramine.DefaultDir
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	if build.tunable {
		// The host starts the enclave and chooses its arguments: what
		// decides trust (where the TEE's attestation files are, how long
		// the light client trusts a header) is fixed in production
		// builds, settable only in dev and test builds.
		fs.StringVar(&o.gramineDir, "gramine-dir", gramine.DefaultDir, "Gramine attestation pseudo-file directory (dev and test builds)")
		fs.DurationVar(&o.trustingPeriod, "trusting-period", 0, "maximum time between consecutive block headers (0: 14 days; dev and test builds)")
	}
	if build.simSeed != "" {
		// The simulated TEE's machine secret, which a real TEE fuses into
		// its CPU. Changing it is what replacing the machine does to a
		// worker: its sealed files no longer open (docs/operations-recovery.md).
		fs.Func("sim-sealing-secret", "hex sealing secret of the simulated TEE, at least 16 bytes (default: derived from the build's PKI)", func(v string) error {
			b, err := hex.DecodeString(v)
			if err != nil {
				return fmt.Errorf("not hex: %w", err)
			}
			if len(b) < 16 {
				return fmt.Errorf("%d bytes, want at least 16", len(b))
			}
			o.simSealingSecret = b
			return nil
		})
	}
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
		if build.simSeed == "" {
			return nil, fmt.Errorf("the %s build has no simulated TEE: build with -tags dev (development) or -tags testtee (tests)", build.name)
		}
		return newSim(build.simSeed, o.simSealingSecret)
	case "gramine":
		return gramine.New(o.gramineDir)
	}
	return nil, fmt.Errorf("unknown --tee %q: want sim or gramine", o.tee)
}

// peers is the trust configuration for key provisioning between enclaves
// of a shard. A sim enclave trusts its own build's PKI (compiled in
// through its seed) and makes that PKI's collateral itself. A Gramine
// enclave trusts Intel's SGX root (compiled in) and takes the PCS
// collateral from its host, which passes the chain's: Intel signs it, so
// the host can withhold it but not forge it.
func peers(b tee.Backend) *enclave.PeerAttestation {
	if p := simPeers(b); p != nil {
		return p
	}
	return &enclave.PeerAttestation{Roots: []*x509.Certificate{roots.SGXRootCA()}}
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
	rel, sv, migrations, err := releaseConfig()
	if err != nil {
		return err
	}
	e, err := enclave.New(enclave.Config{
		Backend: b, TrustingPeriod: o.trustingPeriod, Logger: log, Peers: peers(b),
		Dev: build.dev, DevSudo: build.devSudo,
		Release: rel, StateVersion: sv, Migrations: migrations,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Garbage bounded in bytes: a million accounts with nonces are ~300
	// MiB of live heap, which the default would let double. The state's
	// tree is pointer-free, so collecting more often costs little.
	go gctune.Run(ctx, gctune.Policy{Headroom: 128 << 20, Min: 25, Max: 100}, time.Second)
	m := b.Measurement()
	log.Info("serving", "build", build.name, "tee", o.tee, "mrenclave", fmt.Sprintf("%x", m[:]), "release", rel, "state_version", sv)
	s := &protocol.Server{Handler: e, Logger: log}
	err = s.Serve(ctx, stdio{stdin, stdout})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
