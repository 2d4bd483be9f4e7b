// Package docker runs FedScale jobs as containers on one Docker engine: one
// aggregator container and one container per executor on a shared network,
// every container and the network labelled with the job (job.LabelJob and
// friends), so status, logs and stop work from any machine that reaches the
// engine and no state is kept anywhere else.
//
// The job file reaches each container by CopyToContainer (a tar holding
// /etc/fedscale/job.yml) between create and start: nothing of the host but
// data_path is bind-mounted, which keeps working when DOCKER_HOST points at
// another machine. Each process's health port is published on 127.0.0.1
// with an ephemeral host port; Wait and Status probe /readyz and /metrics
// through it when the engine is on this machine.
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
	"time"

	"github.com/docker/cli/cli/connhelper"
	dcontext "github.com/docker/cli/cli/context/docker"
	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// Options configure the backend.
type Options struct {
	// Host is the engine's address: unix:///path, tcp://host:port or
	// ssh://[user@]host[:port][/socket] (through the ssh command and
	// `docker system dial-stdio` on the remote host). "" means
	// $DOCKER_HOST, else the current Docker CLI context ($DOCKER_CONTEXT or
	// the config file's currentContext), else the default socket
	// (unix:///var/run/docker.sock).
	// TLS comes from $DOCKER_CERT_PATH/$DOCKER_TLS_VERIFY and a fixed API
	// version from $DOCKER_API_VERSION, as for the docker CLI.
	Host string
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
// wait.go, logs.go, stop.go), the rest of the lifecycle from
// backend.Lifecycle. Its methods are safe for concurrent use.
type Backend struct {
	*backend.Lifecycle
	opts   Options
	cli    *client.Client
	host   string     // the address tried, for messages
	from   string     // where host came from: "DOCKER_HOST", "Options.Host", "docker context NAME" or "the default socket"
	hostIP netip.Addr // where spec.Ports are published
	probe  bool       // published ports are reachable on 127.0.0.1
	http   *http.Client
}

var (
	_ backend.Backend  = (*Backend)(nil)
	_ backend.Provider = (*Backend)(nil)
)

// New makes a client for the engine; it does not contact it (Plan needs no
// engine), so an unreachable engine is reported by the first call that
// needs it, naming the address tried.
func New(opts Options) (*Backend, error) {
	if opts.ExitGrace <= 0 {
		opts.ExitGrace = 30 * time.Second
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = 2 * time.Second
	}
	b := &Backend{opts: opts, host: opts.Host, from: "Options.Host"}
	b.Lifecycle = backend.NewLifecycle(b, backend.LifecycleOptions{ExitGrace: opts.ExitGrace, Log: opts.Log})
	if b.host == "" {
		b.host, b.from = os.Getenv(client.EnvOverrideHost), "DOCKER_HOST"
	}
	var fromContext []client.Opt // the context's endpoint, TLS included
	if b.host == "" {
		host, name, opts, err := contextClient()
		if err != nil {
			return nil, fmt.Errorf("docker: %w", err)
		}
		if host != "" {
			b.host, b.from, fromContext = host, "docker context "+name, opts
		}
	}
	if b.host == "" {
		b.host, b.from = client.DefaultDockerHost, "the default socket"
	}
	ip := opts.HostIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	var err error
	if b.hostIP, err = netip.ParseAddr(ip); err != nil {
		return nil, fmt.Errorf("docker: HostIP %q: %w", ip, err)
	}
	helper, err := connhelper.GetConnectionHelper(b.host)
	if err != nil {
		return nil, fmt.Errorf("docker: engine address %s (%s): %w", b.host, b.from, err)
	}
	var copts []client.Opt
	switch {
	case fromContext != nil:
		copts = fromContext
	case helper == nil:
		// As client.FromEnv, with the host chosen above.
		copts = []client.Opt{client.WithTLSClientConfigFromEnv(), client.WithHost(b.host), client.WithAPIVersionFromEnv()}
	default:
		// ssh:// is no transport of the HTTP client: the docker CLI's
		// endpoint dials through the helper (no TLS, no proxy).
		ep := dcontext.Endpoint{EndpointMeta: dcontext.EndpointMeta{Host: b.host}}
		if copts, err = ep.ClientOpts(); err != nil {
			return nil, fmt.Errorf("docker: engine address %s (%s): %w", b.host, b.from, err)
		}
	}
	if b.cli, err = client.New(copts...); err != nil {
		return nil, fmt.Errorf("docker: engine address %s (%s): %w", b.host, b.from, err)
	}
	b.probe = isLocal(b.host)
	b.http = &http.Client{Timeout: opts.ProbeTimeout, Transport: &http.Transport{
		Proxy:             nil, // probes go to 127.0.0.1, never through a proxy
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: opts.ProbeTimeout}).DialContext,
	}}
	return b, nil
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

// Close releases the client's connections.
func (b *Backend) Close() error { return b.cli.Close() }

// Name is "docker".
func (b *Backend) Name() string { return job.BackendDocker }

// Client is the Docker client the backend uses (for tests and tools that
// need more of the engine than the Backend interface).
func (b *Backend) Client() *client.Client { return b.cli }

// Host is the engine address in use and where it came from.
func (b *Backend) Host() (addr, from string) { return b.host, b.from }

// OnThisMachine reports whether the engine runs on this machine (a unix
// socket, a loopback address): data_path is then this machine's folder.
func (b *Backend) OnThisMachine() bool { return b.probe }

// where names the engine for backend.NotFound and other messages.
func (b *Backend) where() string { return "the Docker engine at " + b.host }

// engineErr turns a failure to reach the engine into one error naming the
// address and its source; other errors pass unchanged.
func (b *Backend) engineErr(err error) error {
	if err == nil || !isConnErr(err) {
		return err
	}
	return &EngineError{Host: b.host, From: b.from, Err: err}
}

// wrap is engineErr for a deferred named result.
func (b *Backend) wrap(err *error) { *err = b.engineErr(*err) }

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

// EngineError says the engine could not be reached.
type EngineError struct {
	Host, From string
	Err        error
}

func (e *EngineError) Error() string {
	hint := "is the engine running? (DOCKER_HOST selects another one)"
	if strings.HasPrefix(e.Host, "ssh://") {
		hint = "check that ssh reaches the host and that `docker version` works there"
	}
	return fmt.Sprintf("cannot reach the Docker engine at %s (from %s): %s: %v", e.Host, e.From, hint, e.Err)
}

func (e *EngineError) Unwrap() error { return e.Err }
