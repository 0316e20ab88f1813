package node

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsServer serves a node's registry under /metrics on a listener of
// its own, like CometBFT's Prometheus listener (whose handler serves the
// process-wide registry, which the node does not use).
type metricsServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start: metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{MaxRequestsInFlight: 10, Timeout: 10 * time.Second}))
	m := &metricsServer{ln: ln, done: make(chan struct{}), srv: &http.Server{
		Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: time.Minute,
	}}
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(ln); err != http.ErrServerClosed {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return m, nil
}

// URL is the server's base URL; empty for nil.
func (m *metricsServer) URL() string {
	if m == nil {
		return ""
	}
	return "http://" + m.ln.Addr().String()
}

// Close stops the server; nil does nothing.
func (m *metricsServer) Close() {
	if m == nil {
		return
	}
	m.srv.Close()
	<-m.done
}
