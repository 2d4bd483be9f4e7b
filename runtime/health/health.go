// Package health serves the HTTP endpoints that launchers, Kubernetes probes
// and test harnesses watch: /healthz (the process is alive), /readyz (it is
// ready: the aggregator serves gRPC, an executor is registered) and, when a
// Prometheus registry is given, /metrics, with the names of the series
// launchers read (RoundMetric, Top1Metric), and any further Route a process
// adds (the aggregator's job document).
//
// Every answer carries the process's instance (InstanceHeader): the value a
// launcher gave it in InstanceEnv, unique per submitted job. A launcher that
// probes a port counts the answer only when it names its own job's
// instance, so another job's process on the same port (a second job started
// on busy ports) is never mistaken for its own. Status codes are unchanged:
// probes that read only them (Docker, Kubernetes) work as before.
package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
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
	RoundsMetric     = "rounds"             // gauge: job_conf.rounds, the rounds the job trains
	Top1Metric       = "test_top1_accuracy" // gauge: top-1 of the last evaluation, 0 before it
)

// InstanceEnv is the environment variable a launcher sets to the job's
// instance (a per-submit identity) for every process it starts;
// InstanceHeader is the response header each endpoint returns it in.
const (
	InstanceEnv    = "FEDSCALE_INSTANCE"
	InstanceHeader = "Fedscale-Instance"
)

// ExitJobStopped is an executor's exit status when the aggregator stopped
// the job (it failed): the job's outcome is the aggregator's, and no
// restart of this executor can change it, so launchers that restart failed
// executors (executor_restarts) do not restart on it.
const ExitJobStopped = 3

// MetricName is the exposed name of a series of the aggregator's.
func MetricName(name string) string { return prometheus.BuildFQName(MetricsNamespace, "", name) }

// Server is a running health endpoint.
type Server struct {
	ready  atomic.Bool
	reason atomic.Value // string: why not ready
	srv    *http.Server
	ln     net.Listener
}

// Route is one more endpoint a process serves beside the health ones
// (the aggregator's job document, runtime/jobapi).
type Route struct {
	Pattern string // an http.ServeMux pattern
	Handler http.Handler
}

// Listen starts serving on addr (":0" picks a free port). A nil registry
// leaves /metrics out. The instance answered is $FEDSCALE_INSTANCE's.
func Listen(addr string, reg *prometheus.Registry, routes ...Route) (*Server, error) {
	return listen(addr, reg, os.Getenv(InstanceEnv), routes...)
}

func listen(addr string, reg *prometheus.Registry, instance string, routes ...Route) (*Server, error) {
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
	for _, r := range routes {
		mux.Handle(r.Pattern, r.Handler)
	}
	var h http.Handler = mux
	if instance != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(InstanceHeader, instance)
			mux.ServeHTTP(w, r)
		})
	}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
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

// Readiness is one answer of a process's /readyz.
type Readiness struct {
	Ready    bool   // status 200
	Instance string // the InstanceHeader; "" from a process given no instance
}

// Ours reports whether the answer comes from instance's process (any
// process when instance is "": a job recorded before instances existed).
func (r Readiness) Ours(instance string) bool {
	return instance == "" || r.Instance == instance
}

// ProbeReady asks base's /readyz (base: "http://host:port").
func ProbeReady(ctx context.Context, c *http.Client, base string) (Readiness, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return Readiness{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return Readiness{}, err
	}
	resp.Body.Close()
	return Readiness{Ready: resp.StatusCode == http.StatusOK, Instance: resp.Header.Get(InstanceHeader)}, nil
}

// Deferred is a route's handler that a process can only make after a slow
// start (the aggregator's job document, once the data set is read): until
// Set it answers 503 with Reason, so the port, /healthz and /readyz serve
// from the first moment and a startup probe does not end a slow start.
type Deferred struct {
	Reason string
	h      atomic.Pointer[http.Handler]
}

// Set hands every later request to h.
func (d *Deferred) Set(h http.Handler) { d.h.Store(&h) }

func (d *Deferred) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := d.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "not yet: "+d.Reason, http.StatusServiceUnavailable)
}
