package rpc

import (
	"flag"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// RegisterFlags defines a flag for each limit of o, named prefix+name
// ("rpc-" for integritee-worker, "worker-rpc-" for localnet), with
// Options' defaults, so that every limit an operator may need is set the
// same way wherever a worker is started. The returned check refuses a
// value that is not positive (zero would silently mean the default; NaN
// too) or out of range; call it after parsing.
func (o *Options) RegisterFlags(fs *flag.FlagSet, prefix string) (check func() error) {
	d := Options{}.WithDefaults()
	n := func(name string) string { return prefix + name }
	fs.Float64Var(&o.RateLimit, n("rate"), d.RateLimit, "JSON-RPC requests per second per client IP; each request of a batch counts")
	fs.IntVar(&o.RateBurst, n("burst"), d.RateBurst, fmt.Sprintf("JSON-RPC requests a client IP may send at once (rate limit bucket); a batch holds at most --%s (%d) and at most this many", n("max-batch"), d.MaxBatchRequests))
	fs.IntVar(&o.MaxBatchRequests, n("max-batch"), d.MaxBatchRequests, "requests in one JSON-RPC batch array (at most the burst)")
	fs.IntVar(&o.MaxRequestBytes, n("max-request-bytes"), d.MaxRequestBytes, "bytes of one request: an HTTP body or a WebSocket message")
	fs.IntVar(&o.MaxConns, n("max-conns"), d.MaxConns, "TCP connections (WebSocket sessions included) the JSON-RPC port keeps open in all; more are closed at once")
	fs.IntVar(&o.MaxConnsPerIP, n("max-conns-per-ip"), d.MaxConnsPerIP, "TCP connections (and WebSocket sessions) the JSON-RPC port keeps open per client IP")
	fs.IntVar(&o.MaxInFlight, n("max-in-flight"), d.MaxInFlight, "unanswered requests per WebSocket session; further messages are read once one is answered")
	fs.IntVar(&o.MaxSubscriptions, n("max-subscriptions"), d.MaxSubscriptions, "open subscriptions per WebSocket session")
	fs.IntVar(&o.QueueSize, n("call-queue"), d.QueueSize, "direct calls waiting for the enclave; more are answered busy (1031)")
	fs.IntVar(&o.MaxCallsPerRound, n("calls-per-round"), d.MaxCallsPerRound, fmt.Sprintf("direct calls passed to the enclave at once, 1..%d", protocol.MaxSubmitCalls))
	fs.DurationVar(&o.BatchLinger, n("batch-linger"), d.BatchLinger, "how long a batch of direct calls waits for more after its first arrived, unless full sooner (0: none); fewer, larger shard blocks at moderate rates for at most this much latency")
	fs.IntVar(&o.MaxGetters, n("getters"), d.MaxGetters, "getters passed to the enclave at once; each waits its turn with chain blocks and call batches")
	fs.IntVar(&o.GetterQueueSize, n("getter-queue"), d.GetterQueueSize, "getters waiting for the enclave; more are answered busy (1031)")
	fs.DurationVar(&o.ReadTimeout, n("read-timeout"), d.ReadTimeout, "time to read a whole HTTP request, body included (the header within min(10s, this))")
	fs.DurationVar(&o.WriteTimeout, n("write-timeout"), d.WriteTimeout, "a write to a client that reads none of it for this long fails and closes the connection")
	fs.DurationVar(&o.IdleTimeout, n("idle-timeout"), d.IdleTimeout, "close an HTTP keep-alive connection without a request for this long")
	fs.DurationVar(&o.WSPingInterval, n("ws-ping"), d.WSPingInterval, "ping WebSocket clients this often; close a session whose pong does not come within it")
	fs.DurationVar(&o.WSIdleTimeout, n("ws-idle-timeout"), d.WSIdleTimeout, "close a WebSocket session with no message either way, no request in flight and no open subscription for this long")
	return func() error {
		for _, f := range []struct {
			name string
			ok   bool
		}{
			{"rate", o.RateLimit > 0}, {"burst", o.RateBurst > 0}, {"max-batch", o.MaxBatchRequests > 0},
			{"max-request-bytes", o.MaxRequestBytes > 0}, {"max-conns", o.MaxConns > 0},
			{"max-conns-per-ip", o.MaxConnsPerIP > 0}, {"max-in-flight", o.MaxInFlight > 0},
			{"max-subscriptions", o.MaxSubscriptions > 0}, {"call-queue", o.QueueSize > 0},
			{"calls-per-round", o.MaxCallsPerRound > 0}, {"getters", o.MaxGetters > 0},
			{"getter-queue", o.GetterQueueSize > 0}, {"read-timeout", o.ReadTimeout > 0},
			{"write-timeout", o.WriteTimeout > 0}, {"idle-timeout", o.IdleTimeout > 0},
			{"ws-ping", o.WSPingInterval > 0}, {"ws-idle-timeout", o.WSIdleTimeout > 0},
		} {
			if !f.ok {
				return fmt.Errorf("--%s: want a positive value", n(f.name))
			}
		}
		if o.BatchLinger < 0 || o.BatchLinger > time.Second {
			return fmt.Errorf("--%s %s: want 0..1s", n("batch-linger"), o.BatchLinger)
		}
		if o.MaxCallsPerRound > protocol.MaxSubmitCalls {
			return fmt.Errorf("--%s %d: want 1..%d", n("calls-per-round"), o.MaxCallsPerRound, protocol.MaxSubmitCalls)
		}
		return nil
	}
}
