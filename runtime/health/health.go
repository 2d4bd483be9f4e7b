// Package health serves the HTTP endpoints that launchers, Kubernetes probes
// and test harnesses watch: /healthz (the process is alive), /readyz (it is
// ready: the aggregator serves gRPC, an executor is registered) and, when a
// Prometheus registry is given, /metrics, with the names of the series
// launchers read (RoundMetric, Top1Metric).
package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The aggregator's Prometheus series that launchers read: the namespace
// and the names within it. Every series the aggregator serves is named
// MetricName(namespace-less name).
const (
	MetricsNamespace = "fedscale"
	RoundMetric      = "round"              // gauge: the current training round
	Top1Metric       = "test_top1_accuracy" // gauge: top-1 of the last evaluation, 0 before it
)

// MetricName is the exposed name of a series of the aggregator's.
func MetricName(name string) string { return prometheus.BuildFQName(MetricsNamespace, "", name) }

// Server is a running health endpoint.
type Server struct {
	ready  atomic.Bool
	reason atomic.Value // string: why not ready
	srv    *http.Server
	ln     net.Listener
}

// Listen starts serving on addr (":0" picks a free port). A nil registry
// leaves /metrics out.
func Listen(addr string, reg *prometheus.Registry) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health endpoint %s: %w", addr, err)
	}
	s := &Server{ln: ln}
	s.reason.Store("starting")
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.ready.Load() {
			_, _ = w.Write([]byte("ready\n"))
			return
		}
		http.Error(w, "not ready: "+s.reason.Load().(string), http.StatusServiceUnavailable)
	})
	if reg != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	}
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.reason.Store("serve: " + err.Error())
		}
	}()
	return s, nil
}

// Addr returns the address the endpoint listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetReady marks the process ready, or not ready with a reason.
func (s *Server) SetReady(ready bool, reason string) {
	if s == nil {
		return
	}
	s.reason.Store(reason)
	s.ready.Store(ready)
}

// Close stops serving.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
