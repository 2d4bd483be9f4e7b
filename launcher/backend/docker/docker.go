// Package docker runs FedScale jobs as containers on Docker engines: one
// aggregator container and one container per executor on a shared network,
// each on its host's engine (one engine, or one per ps_ip/worker_ips host
// joined by a swarm's attachable overlay network: engines.go), every
// container and the network labelled with the job (job.LabelJob and
// friends, and the job's engines), so status, logs and stop work from any
// machine that reaches the engines and no state is kept anywhere else.
//
// The job file reaches each container by CopyToContainer (a tar holding
// /etc/fedscale/job.yml) between create and start: nothing of the host but
// data_path is bind-mounted, which keeps working when DOCKER_HOST points at
// another machine. Each process's health port is published on 127.0.0.1
// with an ephemeral host port; Wait and Status probe /readyz and /metrics
// through it when the job has one engine and it is on this machine.
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/docker/cli/cli/connhelper"
	dcontext "github.com/docker/cli/cli/context/docker"
	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// Options configure the backend.
type Options struct {
	// Host is the default engine's address: unix:///path,
	// tcp://host:port or ssh://[user@]host[:port][/socket] (through the
	// ssh command and `docker system dial-stdio` on the remote host). ""
	// means $DOCKER_HOST, else the current Docker CLI context
	// ($DOCKER_CONTEXT or the config file's currentContext), else the
	// default socket (unix:///var/run/docker.sock).
	// TLS comes from $DOCKER_CERT_PATH/$DOCKER_TLS_VERIFY and a fixed API
	// version from $DOCKER_API_VERSION, as for the docker CLI.
	Host string
	// Engines maps a job's host (its ps_ip or a worker_ips host) to that
	// host's engine: an address as Host takes, or a Docker context name.
	// At submit they win over the job file's docker_engines; stop,
	// status, logs and list look for jobs on them besides the default
	// engine (engines.go has the rules).
	Engines map[string]string
	// HostIP is the address the job file's ports are published on
	// (default 127.0.0.1). The ephemeral health ports are always published
	// on 127.0.0.1.
	HostIP string
	// Log receives a line when an image is pulled, and Wait's warnings (an
	// executor that died while the job goes on); nil discards.
	Log *slog.Logger
	// ExitGrace is how long Wait(UntilDone) waits, once the aggregator has
	// exited 0, for the executors to exit on their own before returning
	// (default 30s). The job has succeeded either way.
	ExitGrace time.Duration
	// ProbeTimeout bounds one /readyz or /metrics request (default 2s).
	ProbeTimeout time.Duration
}

// Backend is the Docker backend: the primitives here (submit.go, status.go,
// wait.go, logs.go, stop.go, engines.go), the rest of the lifecycle from
// backend.Lifecycle. Its methods are safe for concurrent use.
type Backend struct {
	*backend.Lifecycle
	opts   Options
	def    *engine    // the default engine
	hostIP netip.Addr // where spec.Ports are published
	http   *http.Client

	mu      sync.Mutex
	engines map[string]*engine   // by spec (address or context name), def included
	created map[string][]*engine // the engines of each job this Backend created
}

var (
	_ backend.Backend  = (*Backend)(nil)
	_ backend.Provider = (*Backend)(nil)
)

// engine is one Docker engine and how it was reached.
type engine struct {
	cli   *client.Client
	spec  string // as given: an address or a context name
	addr  string // the address tried, for messages
	from  string // where spec came from: "DOCKER_HOST", "Options.Host", "docker context NAME", "the default socket", "docker_engines", ...
	local bool   // ports published on its 127.0.0.1 are this machine's
}

// New makes a client for the default engine; it contacts no engine (Plan
// needs none), so an unreachable engine is reported by the first call that
// needs it, naming the address tried.
func New(opts Options) (*Backend, error) {
	if opts.ExitGrace <= 0 {
		opts.ExitGrace = 30 * time.Second
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = 2 * time.Second
	}
	b := &Backend{opts: opts, engines: map[string]*engine{}, created: map[string][]*engine{}}
	b.Lifecycle = backend.NewLifecycle(b, backend.LifecycleOptions{ExitGrace: opts.ExitGrace, Log: opts.Log})
	spec, from := opts.Host, "Options.Host"
	if spec == "" {
		spec, from = os.Getenv(client.EnvOverrideHost), "DOCKER_HOST"
	}
	if spec == "" {
		name, err := currentContext()
		if err != nil {
			return nil, fmt.Errorf("docker: %w", err)
		}
		spec, from = name, "docker context "+name
	}
	if spec == "" {
		spec, from = client.DefaultDockerHost, "the default socket"
	}
	ip := opts.HostIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	var err error
	if b.hostIP, err = netip.ParseAddr(ip); err != nil {
		return nil, fmt.Errorf("docker: HostIP %q: %w", ip, err)
	}
	if b.def, err = newEngine(spec, from); err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	b.engines[spec] = b.def
	for host, spec := range opts.Engines {
		if err := checkSpec(spec); err != nil {
			return nil, fmt.Errorf("docker: --docker-engine %s=%s: %w", host, spec, err)
		}
	}
	b.http = &http.Client{Timeout: opts.ProbeTimeout, Transport: &http.Transport{
		Proxy:             nil, // probes go to 127.0.0.1, never through a proxy
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: opts.ProbeTimeout}).DialContext,
	}}
	return b, nil
}

// isContext: an engine spec without a scheme names a Docker context.
func isContext(spec string) bool { return !strings.Contains(spec, "://") }

// checkSpec checks an engine spec's form without contacting anything.
func checkSpec(spec string) error {
	if isContext(spec) {
		if spec == "" || strings.HasPrefix(spec, "-") {
			return fmt.Errorf("%q is neither an engine address (unix://, tcp://, ssh://) nor a context name", spec)
		}
		return nil
	}
	scheme, _, _ := strings.Cut(spec, "://")
	switch scheme {
	case "unix", "tcp", "ssh", "npipe":
	default:
		return fmt.Errorf("%q: want an engine address unix://, tcp://, ssh:// or npipe://, or a context name", spec)
	}
	_, err := connhelper.GetConnectionHelper(spec)
	return err
}

// newEngine makes the client of one engine, given by address or context
// name; it contacts nothing.
func newEngine(spec, from string) (*engine, error) {
	e := &engine{spec: spec, addr: spec, from: from}
	var copts []client.Opt
	if isContext(spec) {
		addr, opts, err := contextClient(spec)
		if err != nil {
			return nil, err
		}
		e.addr, copts = addr, opts
	} else {
		if err := checkSpec(spec); err != nil && from != "DOCKER_HOST" && from != "Options.Host" {
			return nil, fmt.Errorf("engine address (%s): %w", from, err)
		}
		helper, err := connhelper.GetConnectionHelper(spec)
		if err != nil {
			return nil, fmt.Errorf("engine address %s (%s): %w", spec, from, err)
		}
		if helper == nil {
			// As client.FromEnv, with the host chosen above.
			copts = []client.Opt{client.WithTLSClientConfigFromEnv(), client.WithHost(spec), client.WithAPIVersionFromEnv()}
		} else {
			// ssh:// is no transport of the HTTP client: the docker CLI's
			// endpoint dials through the helper (no TLS, no proxy).
			ep := dcontext.Endpoint{EndpointMeta: dcontext.EndpointMeta{Host: spec}}
			if copts, err = ep.ClientOpts(); err != nil {
				return nil, fmt.Errorf("engine address %s (%s): %w", spec, from, err)
			}
		}
	}
	var err error
	if e.cli, err = client.New(copts...); err != nil {
		return nil, fmt.Errorf("engine address %s (%s): %w", e.addr, from, err)
	}
	e.local = isLocal(e.addr)
	return e, nil
}

// engine returns the engine of spec, opening it on first use.
func (b *Backend) engine(spec, from string) (*engine, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.engines[spec]; ok {
		return e, nil
	}
	e, err := newEngine(spec, from)
	if err != nil {
		return nil, err
	}
	b.engines[spec] = e
	return e, nil
}

// isLocal reports whether ports published on the engine's 127.0.0.1 are
// this machine's 127.0.0.1.
func isLocal(host string) bool {
	u, err := url.Parse(host)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "unix", "npipe":
		return true
	case "tcp", "http", "https":
		h := u.Hostname()
		if h == "localhost" {
			return true
		}
		ip, err := netip.ParseAddr(h)
		return err == nil && ip.IsLoopback()
	}
	return false
}

// Close releases every engine's connections.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, e := range b.engines {
		errs = append(errs, e.cli.Close())
	}
	return errors.Join(errs...)
}

// Name is "docker".
func (b *Backend) Name() string { return job.BackendDocker }

// Client is the default engine's Docker client (for tests and tools that
// need more of the engine than the Backend interface).
func (b *Backend) Client() *client.Client { return b.def.cli }

// Host is the default engine's address and where it came from.
func (b *Backend) Host() (addr, from string) { return b.def.addr, b.def.from }

// OnThisMachine reports whether the default engine runs on this machine (a
// unix socket, a loopback address): data_path is then this machine's
// folder.
func (b *Backend) OnThisMachine() bool { return b.def.local }

// OnThisMachineFor reports whether every engine job s would run on is on
// this machine (so data_path is this machine's folder for each). Engines
// it cannot make sense of count as here: Submit reports them.
func (b *Backend) OnThisMachineFor(s *job.Spec) bool {
	p, err := b.plan(s)
	if err != nil {
		return b.def.local
	}
	for _, c := range p.Containers {
		if isContext(c.Place.spec) {
			if addr, _, err := contextClient(c.Place.spec); err == nil && !isLocal(addr) {
				return false
			}
		} else if !isLocal(c.Place.spec) {
			return false
		}
	}
	return true
}

// where names the engine for backend.NotFound and other messages.
func (e *engine) where() string { return "the Docker engine at " + e.addr }

// err turns a failure to reach the engine into one error naming the
// address, its source and the job's host it serves (host "" for none);
// other errors pass unchanged.
func (e *engine) err(err error, host string) error {
	if err == nil || !isConnErr(err) {
		return err
	}
	var ee *EngineError
	if errors.As(err, &ee) {
		return err
	}
	return &EngineError{Host: e.addr, From: e.from, For: host, Err: err}
}

func isConnErr(err error) bool {
	if client.IsErrConnectionFailed(err) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// EngineError says an engine could not be reached.
type EngineError struct {
	Host, From string
	// For names the job's host the engine serves ("worker_ips host
	// 10.0.0.2"), "" when it is the engine a lookup starts from.
	For string
	Err error
}

func (e *EngineError) Error() string {
	hint := "is the engine running? (DOCKER_HOST selects another one)"
	if strings.HasPrefix(e.Host, "ssh://") {
		hint = "check that ssh reaches the host and that `docker version` works there"
	}
	what := "the Docker engine"
	if e.For != "" {
		what += " of " + e.For
	}
	return fmt.Sprintf("cannot reach %s at %s (from %s): %s: %v", what, e.Host, e.From, hint, e.Err)
}

func (e *EngineError) Unwrap() error { return e.Err }
