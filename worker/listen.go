package worker

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/http"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/worker/peer"
	"github.com/integritee-go/integritee/worker/rpc"
)

// The worker's own listeners: the JSON-RPC address (Config.RPCListen),
// which also serves the provisioning endpoint under /provision/ so that a
// worker's registered URL is where new workers of the shard get their
// keys, and the optional provisioning listener (ProvisionConfig.Listen).
// Both have the RPC's timeouts and connection caps.

// serveRPC listens on Config.RPCListen, if set, and serves the JSON-RPC
// API and the provisioning routes there until stop.
func (w *Worker) serveRPC(ctx context.Context) (stop func(), err error) {
	if w.cfg.RPCListen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", w.cfg.RPCListen)
	if err != nil {
		return nil, fmt.Errorf("worker rpc: %w", err)
	}
	w.listener = ln
	w.rpcServer = rpc.New(directBackend{w}, w.rpcOptions())
	mux := http.NewServeMux()
	mux.Handle("/provision/", w.ProvisionHandler())
	mux.Handle(peer.Path, peer.NewServer(w.deliverEnvelope, peer.ServerOptions{}))
	mux.Handle("/", w.rpcServer)
	ctx, cancel := context.WithCancel(ctx)
	return background(func() {
		if err := w.rpcServer.ServeWith(ctx, ln, mux); err != nil {
			w.log.Error("worker rpc stopped", "err", err)
		}
	}, cancel), nil
}

// deliverEnvelope takes an envelope another worker of the shard sent for
// this worker's enclave (the peer transport, worker/peer).
func (w *Worker) deliverEnvelope(_ context.Context, to tx.Address, data []byte) error {
	id := w.sup.Identity()
	if id == nil || tx.AddressOf(ed25519.PublicKey(id.SignerPublic)) != to {
		return peer.ErrNotHere
	}
	w.repl.Deliver(data)
	return nil
}

// RPCAddr is the worker's RPC URL, empty without RPC.
func (w *Worker) RPCAddr() string {
	if w.listener == nil {
		return ""
	}
	return "http://" + w.listener.Addr().String()
}

// rpcOptions are the JSON-RPC server's options.
func (w *Worker) rpcOptions() rpc.Options {
	o := w.cfg.RPC
	o.Version, o.Logger = Version, w.log.With("component", "rpc")
	if w.metrics != nil {
		o.Observer = w.metrics
	}
	return o
}

// serveProvisioning starts the provisioning listener, if configured.
func (w *Worker) serveProvisioning() (stop func(), err error) {
	if w.cfg.Provision.Listen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", w.cfg.Provision.Listen)
	if err != nil {
		return nil, fmt.Errorf("worker provisioning listener: %w", err)
	}
	w.provListener = ln
	opts := w.rpcOptions()
	srv := opts.HTTPServer(w.ProvisionHandler())
	return background(func() { srv.Serve(opts.Listener(ln)) }, func() { srv.Close() }), nil
}

// background runs serve on its own goroutine; stop calls halt and waits
// for serve to return.
func background(serve, halt func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve()
	}()
	return func() {
		halt()
		<-done
	}
}

// ProvisionAddr is the provisioning endpoint's base URL, empty without a
// provisioning listener.
func (w *Worker) ProvisionAddr() string {
	if w.provListener == nil {
		return ""
	}
	return "http://" + w.provListener.Addr().String()
}
