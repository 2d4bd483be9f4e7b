// Package k8s is the launcher backend that runs a job on a Kubernetes
// cluster, as the original FedScale's `driver.py submit` did with
// use_container: k8s, but with controllers instead of bare pods:
//
//   - ConfigMap <job>-config: the job file, mounted at /etc/fedscale/job.yml;
//     processes read it at start (nothing is sent over the network later, so a
//     restarted pod simply starts again).
//   - Job <job>-aggregator (batch/v1, one pod) and the headless Service
//     <job>-aggregator that executors dial with --ps-ip <job>-aggregator.
//   - Job <job>-executor-N per rank N (one pod, retried alone), and a Secret
//     <job>-tls-<process> per process holding the job's CA certificate and
//     that process's certificate and key: each pod mounts its own Secret, so
//     no pod can read another rank's key (an Indexed Job's pods share one
//     template, hence one Job per rank).
//
// The aggregator Job is the top object: the ConfigMap, the Secrets, the
// Service and the executors' Jobs carry ownerReferences to it, so deleting
// it lets the garbage collector remove the rest. Every object carries the job's labels
// (job.Spec.Labels), which is all stop, status, logs and list need: no state
// is kept outside the cluster, and any machine with the kubeconfig can manage
// the job. Wait and Stop follow the cluster by watch (informers), never by
// polling.
package k8s

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// DefaultNamespace is where jobs go unless Options.Namespace says otherwise
// (the original's namespace).
const DefaultNamespace = "fedscale"

// Options configures the backend.
type Options struct {
	// Kubeconfig is the kubeconfig file; "" uses the usual loading rules
	// ($KUBECONFIG, else ~/.kube/config, else the in-cluster service account).
	Kubeconfig string
	// Context is the kubeconfig context; "" uses the current one.
	Context string
	// Namespace holds the job's objects (created if missing, never deleted).
	// Default: DefaultNamespace.
	Namespace string
	// Log receives Wait's warnings (an executor that died while the job
	// goes on); nil discards them.
	Log *slog.Logger
	// PlanNamespace puts the Namespace object in Plan's output. Without
	// it the plan holds only the job's own objects, so `kubectl delete -f`
	// of a plan never deletes a namespace.
	PlanNamespace bool
}

// Backend runs jobs on a Kubernetes cluster: the primitives here
// (submit.go, status.go, wait.go, logs.go, stop.go), the rest of the
// lifecycle from backend.Lifecycle.
type Backend struct {
	*backend.Lifecycle
	cs         kubernetes.Interface
	ns         string
	server     string // API server URL, for messages
	kubeconfig string // which kubeconfig was used, for messages
	planNS     bool
	requests   atomic.Int64
}

// New loads the kubeconfig and builds a client. It does not contact the
// server (Plan works offline); the first call that does reports an
// unreachable server with its URL and the kubeconfig used.
func New(opts Options) (*Backend, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if opts.Kubeconfig != "" {
		if _, err := os.Stat(opts.Kubeconfig); err != nil {
			return nil, fmt.Errorf("k8s backend: kubeconfig: %w", err)
		}
		rules.ExplicitPath = opts.Kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: opts.Context})
	tried := strings.Join(rules.GetLoadingPrecedence(), string(os.PathListSeparator))
	if opts.Kubeconfig != "" {
		tried = opts.Kubeconfig
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("k8s backend: no kubeconfig found (looked at %s, and not running in a cluster): set $KUBECONFIG or pass --kubeconfig", tried)
		}
		return nil, fmt.Errorf("k8s backend: kubeconfig %s: %w", tried, err)
	}
	used := tried
	if raw, err := cc.RawConfig(); err == nil && len(raw.Clusters) == 0 {
		used = "in-cluster service account"
	} else if opts.Kubeconfig == "" {
		// The first file of the precedence that exists is the one that
		// names the server (the usual single-file case).
		for _, p := range rules.GetLoadingPrecedence() {
			if _, err := os.Stat(p); err == nil {
				used = p
				break
			}
		}
	}
	b := &Backend{ns: opts.Namespace, server: cfg.Host, kubeconfig: used, planNS: opts.PlanNamespace}
	b.Lifecycle = backend.NewLifecycle(b, backend.LifecycleOptions{Log: opts.Log})
	if b.ns == "" {
		b.ns = DefaultNamespace
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "fedscale-launcher"
	// Submit and Stop of a large job make a handful of requests; the
	// default 5 QPS would still do, but lists of many jobs should not queue.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &counter{rt: rt, n: &b.requests} })
	if b.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("k8s backend: %w", err)
	}
	return b, nil
}

var _ backend.Provider = (*Backend)(nil)

// Name is "k8s".
func (b *Backend) Name() string { return job.BackendK8s }

// Namespace is where the backend puts jobs.
func (b *Backend) Namespace() string { return b.ns }

// Server is the API server's URL.
func (b *Backend) Server() string { return b.server }

// Requests is how many HTTP requests this backend has made to the API server
// (a watch counts once, however long it stays open). Callers take the
// difference around a call, e.g. Wait, to see what it cost the server.
func (b *Backend) Requests() int64 { return b.requests.Load() }

// counter counts the requests that go through it.
type counter struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// where names the place jobs are looked for, for NotFound.
func (b *Backend) where() string {
	return "namespace " + b.ns + " on " + b.server
}

// apiErr makes a transport failure (server down, wrong address, TLS) one
// clear error naming the server and the kubeconfig, and a Forbidden one
// naming the namespace and the Role that grants what is missing; other API
// status errors (not found, invalid) are returned as they are.
func (b *Backend) apiErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if apierrors.IsForbidden(err) {
		// The server's message names the user, the verb and the resource.
		return fmt.Errorf("k8s backend: %s in namespace %s: not allowed: %w (the launcher's user needs launcher/backend/k8s/rbac.yaml's Role there)", what, b.ns, err)
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return fmt.Errorf("k8s backend: %s: %w", what, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("k8s backend: %s: %w", what, err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("k8s backend: the Kubernetes API server %s is unreachable (kubeconfig %s): %w", b.server, b.kubeconfig, ue.Err)
	}
	return fmt.Errorf("k8s backend: %s: %w", what, err)
}

// validName guards label selectors built from user input: a name that is
// not a job name cannot name a job.
func (b *Backend) validName(name string) error {
	if job.ValidateName(name) != nil {
		return backend.NotFound(name, b.where())
	}
	return nil
}

// NewOffline returns a backend that can only Plan: `submit --dry-run` must
// work without any kubeconfig or cluster. Of opts it reads Namespace and
// PlanNamespace.
func NewOffline(opts Options) *Backend {
	ns := opts.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	b := &Backend{ns: ns, server: "(no cluster: dry run)", planNS: opts.PlanNamespace}
	b.Lifecycle = backend.NewLifecycle(b, backend.LifecycleOptions{})
	return b
}
