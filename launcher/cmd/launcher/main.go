// Command launcher submits, stops, inspects and follows FedScale jobs on
// Docker, Kubernetes or local processes, from the job files users already
// have. Each subcommand parses flags, calls a backend (package backend and
// its docker, k8s and local implementations) and prints the result.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/backend/local"
	"github.com/fedscale/fedscale-go/launcher/cmd/cli"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/version"
)

func main() {
	// The local backend re-runs this binary as each process's supervisor.
	local.MaybeSupervise()
	cli.Main(newCommand(os.Stdout, os.Stderr))
}

// globals are the flags that pick and configure a backend.
type globals struct {
	backend    string
	kubeconfig string
	kubeCtx    string
	namespace  string
	stateDir   string
	binDir     string
	// engines are --docker-engine HOST=ENGINE, as given.
	engines []string
	// planNamespace is submit --with-namespace: --dry-run prints the
	// Namespace object too.
	planNamespace bool
	// log is the launcher's own messages (a backend's progress such as
	// an image pull), on stderr through logOut.
	log    *slog.Logger
	logOut *switchWriter
}

// switchWriter writes to w, which submit --wait points at its progress
// line's printer while it shows one, so that messages do not break it.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	w := s.w
	s.mu.Unlock()
	return w.Write(b)
}

// set points s at w and returns what it wrote to before.
func (s *switchWriter) set(w io.Writer) io.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.w
	s.w = w
	return old
}

func newCommand(stdout, stderr io.Writer) *cobra.Command {
	logOut := &switchWriter{w: stderr}
	g := globals{log: slog.New(fedlog.NewPlain(logOut, slog.LevelInfo)), logOut: logOut}
	root := &cobra.Command{
		Use:   "launcher",
		Short: "Run FedScale jobs on Docker, Kubernetes or local processes",
		Example: `  launcher submit conf.yml --wait          # backend from use_container (none: local processes)
  launcher submit conf_k8s.yml --dry-run    # print the Kubernetes manifests, create nothing
  launcher status femnist -o json
  launcher logs femnist -f --component executor-1
  launcher stop femnist`,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.backend, "backend", "", "docker, k8s or local (submit: default from use_container; others: search every reachable backend)")
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	pf.StringVar(&g.kubeCtx, "context", "", "kubeconfig context")
	pf.StringVarP(&g.namespace, "namespace", "n", "fedscale", "Kubernetes namespace (created when missing)")
	pf.StringVar(&g.stateDir, "state-dir", "", "local backend: where job state lives (default $FEDSCALE_LAUNCHER_STATE or ~/.local/state/fedscale/launcher)")
	pf.StringArrayVar(&g.engines, "docker-engine", nil, "docker backend: HOST=ENGINE, the Docker engine (unix://, tcp://, ssh:// address or context name) of a ps_ip/worker_ips host; repeatable; wins over the job file's docker_engines, and stop/status/logs/list look on these engines too")
	pf.StringVar(&g.binDir, "bin-dir", "", "local backend: folder of the aggregator and executor binaries (default: beside this launcher, else $PATH)")
	g.registerGlobalCompletions(root)
	root.AddCommand(submitCommand(&g, stdout, stderr), stopCommand(&g, stdout), statusCommand(&g, stdout),
		logsCommand(&g, stdout), listCommand(&g, stdout), resultsCommand(&g, stdout), cli.VersionCommand("launcher", stdout))
	return root
}

// find locates the backend that knows job name: --backend when given, else
// the first reachable backend that has it.
func (g *globals) find(ctx context.Context, name string) (backend.Backend, error) {
	if g.backend != "" {
		return g.open(g.backend)
	}
	var tried []string
	for _, n := range backendOrder {
		b, err := g.open(n)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (unreachable: %v)", n, err))
			continue
		}
		if _, err := b.Status(ctx, name); err == nil {
			return b, nil
		} else if errors.Is(err, backend.ErrNotFound) {
			tried = append(tried, err.Error())
		} else {
			tried = append(tried, fmt.Sprintf("%s: %v", n, err))
		}
	}
	return nil, fmt.Errorf("job %q: %w; looked on: %s", name, backend.ErrNotFound, joinLines(tried))
}

// onJob is the RunE of a command whose one argument is a job: it finds the
// job's backend and calls f with it.
func (g *globals) onJob(f func(ctx context.Context, b backend.Backend, name string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		b, err := g.find(cmd.Context(), args[0])
		if err != nil {
			return backendErr(err)
		}
		return backendErr(f(cmd.Context(), b, args[0]))
	}
}

func joinLines(s []string) string {
	out := ""
	for _, l := range s {
		out += "\n  " + l
	}
	return out
}

func stopCommand(g *globals, stdout io.Writer) *cobra.Command {
	var timeout time.Duration
	stop := g.onJob(func(ctx context.Context, b backend.Backend, name string) error {
		if err := b.Stop(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "stopped %s on %s\n", name, b.Name())
		return nil
	})
	cmd := &cobra.Command{
		Use:   "stop JOB",
		Short: "Remove every process/container/object of a job",
		Example: `  launcher stop femnist
  launcher stop femnist --backend k8s --context prod -n fedscale
  launcher stop femnist --timeout 1m        # give up after a minute, naming what is left`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeJobs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel, err := withTimeout(cmd.Context(), timeout)
			if err != nil {
				return err
			}
			defer cancel()
			cmd.SetContext(ctx)
			return stop(cmd, args)
		},
	}
	timeoutFlag(cmd, &timeout, "stopping (finding the job, removing it, waiting until nothing is left)")
	return cmd
}

// timeoutFlag defines --timeout, as submit and stop have it.
func timeoutFlag(cmd *cobra.Command, d *time.Duration, what string) {
	cmd.Flags().DurationVar(d, "timeout", 0, "give up "+what+" after this long, e.g. 10m (0: no limit)")
}

// withTimeout bounds ctx by --timeout d (0: no limit).
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc, error) {
	switch {
	case d < 0:
		return ctx, func() {}, cli.Usagef("--timeout %s: want a duration of 0 (no limit) or more", d)
	case d == 0:
		return ctx, func() {}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, cancel, nil
}
