// Command integritee-worker runs the untrusted host of an integritee worker:
// it starts integritee-enclave as a child process, registers it on the
// chain, follows the chain and feeds the enclave every block, stores the
// enclave's sealed keys and encrypted state, and submits the transactions
// the enclave signs.
//
//	integritee-worker [--config FILE] [--node URL] [--enclave PATH] [--data DIR] [--tee sim|gramine]
//	                  [--shard HEX] [--rpc HOST:PORT] [--url URL] [--dev] [--confirm-heartbeat D]
//	                  [--provision-addr HOST:PORT] [--provision-from URL]...
//	                  [--rpc-rate N] [--rpc-burst N] [--rpc-max-conns N] [--rpc-max-conns-per-ip N]
//	                  [--rpc-getters N] [--rpc-getter-queue N] [--rpc-call-queue N]
//	                  [--rpc-read-timeout D] [--rpc-write-timeout D] [--rpc-idle-timeout D]
//	                  [--rpc-ws-ping D] [--rpc-ws-idle-timeout D]
//	integritee-worker init [--data DIR] [--config FILE] [--force] [flags]
//	integritee-worker version
//
// SIGINT or SIGTERM stops it cleanly; a restart (also after SIGKILL)
// resumes at the block after the last one it persisted.
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/internal/cli"
	"github.com/integritee-go/integritee/internal/gctune"
	"github.com/integritee-go/integritee/worker"
	"github.com/integritee-go/integritee/worker/rpc"
)

// DevFunding is what a --dev worker transfers from Alice to its enclave
// account when the account cannot pay its fees.
const DevFunding = 100 * accounts.Unit

// DefaultConfirmHeartbeat is --confirm-heartbeat's default: an idle
// shard's workers confirm about every five minutes that they are alive
// and agree, instead of every block.
const DefaultConfirmHeartbeat = 5 * time.Minute

// gcPolicy lets the worker's garbage reach 64 MiB before a collection
// (up to 4 times its live heap, never less than Go's default): under load
// its live heap is tens of MiB and each call allocates a few KiB, and with
// the default its collector took a ninth of its CPU
// (docs/performance.md). With a large live heap (a million accounts,
// thousands of sessions) it is the default, so RSS grows only where the
// heap is small. Sampled often, since a large percentage lets the heap
// grow fast while the live heap grows.
var gcPolicy = gctune.Policy{Headroom: 64 << 20, Min: 100, Max: 400}

func main() {
	go gctune.Run(context.Background(), gcPolicy, 100*time.Millisecond)
	cli.Main(commands(os.Stdout, os.Stderr, start))
}

// run executes one command line; ctx stops the worker.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Run(ctx, commands(stdout, stderr, start), args, stdout)
}

// commands is the command tree: the worker itself, which start runs with
// the parsed options (tests substitute it), and version.
func commands(stdout, stderr io.Writer, start func(context.Context, *options, io.Writer) error) *cli.Command {
	return &cli.Command{
		Name:  "integritee-worker",
		Usage: "[flags]  |  integritee-worker init [flags]  |  integritee-worker version",
		Short: "The untrusted host of an integritee worker: runs integritee-enclave, registers it and feeds it the chain.",
		Long:  "SIGINT or SIGTERM stops it cleanly; a restart (also after SIGKILL) resumes at the block after the last one it persisted.",
		Setup: func(fs *flag.FlagSet) cli.RunFunc {
			o, check := defineFlags(fs)
			fs.StringVar(&o.Config, "config", "", "settings `file` as 'integritee-worker init' writes it (default: DATA/"+ConfigFile+" if it exists); flags given here override it")
			return func(ctx context.Context, args []string) error {
				if err := cli.NoArgs(args); err != nil {
					return err
				}
				if err := applyConfig(fs, o); err != nil {
					return err
				}
				if err := check(); err != nil {
					return err
				}
				return start(ctx, o, stderr)
			}
		},
		Commands: []*cli.Command{{
			Name:  "init",
			Usage: "[--data DIR] [--config FILE] [--force] [flags]",
			Short: "write a commented settings file with every flag's value: the defaults and the flags given",
			Long: `Writes DATA/` + ConfigFile + ` (or --config FILE), mode 0600, creating DATA. Each key is a flag
of integritee-worker without the dashes; 'integritee-worker --data DATA' (or --config FILE)
then starts with these settings, and flags given on its command line override them.`,
			Setup: func(fs *flag.FlagSet) cli.RunFunc {
				o, check := defineFlags(fs)
				fs.StringVar(&o.Config, "config", "", "`file` to write (default: DATA/"+ConfigFile+")")
				force := fs.Bool("force", false, "replace an existing file")
				return func(ctx context.Context, args []string) error {
					if err := cli.NoArgs(args); err != nil {
						return err
					}
					if err := check(); err != nil {
						return err
					}
					path, err := writeConfig(fs, o, *force)
					if err != nil {
						return err
					}
					start := "integritee-worker --data " + o.Data
					if o.Config != "" {
						start = "integritee-worker --config " + path
					}
					fmt.Fprintf(stdout, "wrote %s: start the worker with %s\n", path, start)
					return nil
				}
			},
		}, {
			Name:  "version",
			Short: "print the worker's version",
			Setup: cli.Action(func(ctx context.Context, args []string) error {
				if err := cli.NoArgs(args); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "integritee-worker %s\n", worker.Version)
				return nil
			}),
		}},
	}
}

// ConfigFile is the name of the settings file in the data directory.
const ConfigFile = "worker.toml"

// options are the parsed command line.
type options struct {
	// Config is the settings file named by --config.
	Config                                                         string
	Node, Enclave, Data, TEE, Shard, RPC, URL, LogLevel, LogFormat string
	Dev                                                            bool
	ConfirmHeartbeat                                               time.Duration
	EnclaveArgs                                                    []string
	// ProvisionAddr and ProvisionFrom configure key provisioning.
	ProvisionAddr string
	ProvisionFrom []string
	// RPCLimits are the JSON-RPC server's limits.
	RPCLimits rpc.Options
	// Metrics is the Prometheus listen address.
	Metrics string
}

// defineFlags declares the worker's flags into the returned options; check
// refuses values the flag types let through, as usage errors.
func defineFlags(fs *flag.FlagSet) (o *options, check func() error) {
	o = &options{}
	fs.StringVar(&o.Node, "node", "http://127.0.0.1:26657", "node CometBFT RPC address")
	fs.StringVar(&o.Enclave, "enclave", "", "integritee-enclave executable (default: next to this binary, else on PATH)")
	fs.StringVar(&o.Data, "data", defaultData(), "data directory (database, enclave.json)")
	fs.StringVar(&o.TEE, "tee", "sim", "TEE backend of the enclave: sim or gramine")
	fs.StringVar(&o.Shard, "shard", "", "shard to serve, hex (default with --tee sim: the enclave's MRENCLAVE, sha256 of its binary)")
	fs.StringVar(&o.RPC, "rpc", "127.0.0.1:2000", "JSON-RPC listen address (empty: none)")
	fs.StringVar(&o.Metrics, "metrics-addr", "", "serve Prometheus metrics under /metrics on this listen address, apart from the public JSON-RPC (empty: none)")
	fs.StringVar(&o.URL, "url", "", "worker URL registered on chain (default: http://<rpc address>)")
	fs.BoolVar(&o.Dev, "dev", false, "dev chain: fund the enclave account from Alice (dev features are the enclave build's: -tags dev)")
	fs.DurationVar(&o.ConfirmHeartbeat, "confirm-heartbeat", DefaultConfirmHeartbeat, "confirm_processed_block at least this often in chain block time while the shard is idle; a change is confirmed at its block (0: every block; same for every worker of a shard)")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.ProvisionAddr, "provision-addr", "", "listen address of the key provisioning endpoint for new workers of the shard, with the --rpc-* connection caps and timeouts (empty: none)")
	fs.Var((*cli.ListFlag)(&o.ProvisionFrom), "provision-from", "provisioning URL (http://host:port) of a worker of the shard to get the keys from (repeatable; default: the registered worker URLs)")
	fs.Var((*cli.ListFlag)(&o.EnclaveArgs), "enclave-arg", "extra argument for the enclave process (repeatable)")
	positive := rpcLimitFlags(fs, &o.RPCLimits)
	return o, func() error {
		if err := positive(); err != nil {
			return cli.Usagef("%w", err)
		}
		if o.TEE != "sim" && o.TEE != "gramine" {
			return cli.Usagef("--tee %q: want sim or gramine", o.TEE)
		}
		if o.ConfirmHeartbeat < 0 || o.ConfirmHeartbeat%time.Millisecond != 0 {
			return cli.Usagef("--confirm-heartbeat %v: want 0 or more, in whole milliseconds", o.ConfirmHeartbeat)
		}
		return nil
	}
}

// rpcLimitFlags defines the --rpc-* flags of the JSON-RPC server's limits,
// with rpc.Options' defaults, into o (see rpc.Options.RegisterFlags).
func rpcLimitFlags(fs *flag.FlagSet, o *rpc.Options) (check func() error) {
	return o.RegisterFlags(fs, "rpc-")
}

// applyConfig sets the flags not given on the command line from the
// settings file: --config, else DATA/worker.toml if it exists.
func applyConfig(fs *flag.FlagSet, o *options) error {
	path := o.Config
	if path == "" {
		path = filepath.Join(o.Data, ConfigFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil
		}
	}
	return cli.ApplyConfig(path, fs, "config")
}

// writeConfig writes the settings file of init: every flag of the worker
// with its value, the data directory made absolute.
func writeConfig(fs *flag.FlagSet, o *options, force bool) (string, error) {
	data, err := filepath.Abs(o.Data)
	if err != nil {
		return "", err
	}
	if err := fs.Set("data", data); err != nil {
		return "", err
	}
	path := o.Config
	if path == "" {
		path = filepath.Join(data, ConfigFile)
	}
	var buf bytes.Buffer
	header := fmt.Sprintf(`integritee-worker settings, written by 'integritee-worker init' (%s).
Each key is a flag of integritee-worker without the dashes; a flag given on
the command line overrides the key here. Unknown keys are refused.`, worker.Version)
	if err := cli.WriteConfig(&buf, header, fs, "config", "force"); err != nil {
		return "", err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return "", fmt.Errorf("init: %w", err)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("init: %s exists (--force replaces it)", path)
	}
	if err != nil {
		return "", fmt.Errorf("init: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return "", fmt.Errorf("init: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("init: %w", err)
	}
	return path, nil
}

func defaultData() string {
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".integritee-worker")
	}
	return ".integritee-worker"
}

// start runs the worker until ctx ends.
func start(ctx context.Context, o *options, stderr io.Writer) error {
	log, err := newLogger(stderr, o.LogLevel, o.LogFormat)
	if err != nil {
		return err
	}
	cfg, err := config(o, log)
	if err != nil {
		return err
	}
	w, err := worker.New(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return w.Run(ctx)
}

// config turns the options into a worker configuration.
func config(o *options, log *slog.Logger) (worker.Config, error) {
	path, err := enclavePath(o.Enclave)
	if err != nil {
		return worker.Config{}, err
	}
	sh, err := shard(o.Shard, o.TEE, path)
	if err != nil {
		return worker.Config{}, err
	}
	cfg := worker.Config{
		NodeRPC: o.Node, DataDir: o.Data, Shard: sh, RPCListen: o.RPC, WorkerURL: o.URL, MetricsListen: o.Metrics,
		ConfirmHeartbeat: o.ConfirmHeartbeat, Logger: log, RPC: o.RPCLimits,
		Provision: worker.ProvisionConfig{Listen: o.ProvisionAddr, From: o.ProvisionFrom},
		Enclave: worker.ProcessFactory(worker.ProcessConfig{
			Path: path, Args: append([]string{"--tee", o.TEE}, o.EnclaveArgs...), Logger: log.With("process", "enclave"),
		}),
	}
	if o.Dev {
		cfg.Fund = worker.DevFunder(o.Node, accounts.DevKey("Alice"), DevFunding)
	}
	return cfg, nil
}

// enclavePath resolves the enclave executable: the flag, else
// integritee-enclave next to this executable, else on PATH.
func enclavePath(flagValue string) (string, error) {
	if flagValue != "" {
		return filepath.Abs(flagValue)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "integritee-enclave")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath("integritee-enclave")
	if err != nil {
		return "", errors.New("integritee-enclave not found next to integritee-worker nor on PATH: pass --enclave PATH")
	}
	return filepath.Abs(p)
}

// shard returns the shard to serve: the flag, or for a sim enclave its
// MRENCLAVE (the SHA-256 of its binary), which names its shard by default.
func shard(flagValue, teeKind, enclaveBinary string) ([32]byte, error) {
	var s [32]byte
	if flagValue != "" {
		b, err := hex.DecodeString(flagValue)
		if err != nil || len(b) != 32 {
			return s, fmt.Errorf("--shard %q: want 64 hex characters", flagValue)
		}
		return [32]byte(b), nil
	}
	if teeKind != "sim" {
		return s, errors.New("--shard is required with --tee " + teeKind)
	}
	return worker.SimMRENCLAVE(enclaveBinary)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, cli.Usagef("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, cli.Usagef("--log-format %q: want text or json", format)
}
