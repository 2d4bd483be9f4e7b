package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/backend/docker"
	"github.com/fedscale/fedscale-go/launcher/backend/local"
	"github.com/fedscale/fedscale-go/launcher/cmd/cli"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/launcher/watch"
	"github.com/fedscale/fedscale-go/runtime/version"
)

// waitFlag is --wait, --wait=running or --wait=done.
type waitFlag struct {
	set   bool
	until backend.Until
}

func (w *waitFlag) String() string {
	if !w.set {
		return ""
	}
	if w.until == backend.UntilDone {
		return "done"
	}
	return "running"
}

func (w *waitFlag) Set(s string) error {
	switch s {
	case "running", "true":
		w.set, w.until = true, backend.UntilRunning
	case "done":
		w.set, w.until = true, backend.UntilDone
	case "false":
		w.set = false
	default:
		return fmt.Errorf("want running or done")
	}
	return nil
}

func (w *waitFlag) Type() string { return "running|done" }

func submitCommand(g *globals, stdout, stderr io.Writer) *cobra.Command {
	var (
		opts     job.Options
		wait     waitFlag
		timeout  time.Duration
		dryRun   bool
		restarts int
	)
	cmd := &cobra.Command{
		Use:   "submit JOB.yml",
		Short: "Start a job from a FedScale job file",
		Long: `submit starts a job from a FedScale job file on the backend its use_container
names (none: local processes), or --backend. Before anything starts it checks
the file: the model against the runtime's list, environment variables in
paths, data_path and data_dir where the backend's processes read them from
this machine, and for local processes that the job's ports are free. With
--dry-run it stops there and prints what it would create.`,
		Example: `  launcher submit conf.yml --wait=done           # local processes; until the job finishes
  launcher submit conf_docker.yml --wait          # until every container is ready
  launcher submit conf_k8s.yml --dry-run          # the Kubernetes manifests as YAML; creates nothing
  launcher submit conf_k8s.yml -n fedscale --context prod --name femnist-2
  launcher submit conf.yml --backend docker --image-exec reg.example/fedscale-exec:v1.2.3
  launcher submit conf.yml --executor-restarts 2  # a crashed executor comes back (twice at most)`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeJobFile,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("executor-restarts") {
				opts.ExecutorRestarts = &restarts
			}
			spec, err := g.load(args[0], opts, stderr)
			if err != nil {
				return err
			}
			if dryRun {
				// Plans need no engine or cluster: use offline planners.
				p, err := g.planner(spec.Backend)
				if err != nil {
					return err
				}
				return p.Plan(stdout, spec)
			}
			b, err := g.open(spec.Backend)
			if err != nil {
				return err
			}
			ctx, cancel, err := withTimeout(cmd.Context(), timeout)
			if err != nil {
				return err
			}
			defer cancel()
			start := time.Now()
			if err := b.Submit(ctx, spec); err != nil {
				return backendErr(err)
			}
			fmt.Fprintln(stdout, spec.Name)
			if !wait.set {
				return nil
			}
			pr := watch.NewPrinter(stderr)
			w := watch.Start(ctx, spec.Name, watch.FromBackend(b, spec.Name), pr, start)
			logTo := g.logOut.set(pr)
			st, err := b.Wait(ctx, spec.Name, wait.until)
			g.logOut.set(logTo)
			last := w.Stop()
			if err != nil {
				if st.Phase == backend.Failed {
					return cli.WithCode(cli.ExitJobFailed, err)
				}
				return backendErr(err)
			}
			if wait.until != backend.UntilDone {
				fmt.Fprintf(stderr, "job %s: %s\n", spec.Name, st.Phase)
				return nil
			}
			watch.Figures(ctx, b, spec.Name, st, time.Since(start), last).Write(stderr)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Name, "name", "", "job name (default: job_conf job_name)")
	f.StringVar(&opts.AggregatorImage, "image-aggr", "", "aggregator image (default: aggregator_image, else "+job.DefaultAggregatorRepo+":"+version.Version+")")
	f.StringVar(&opts.ExecutorImage, "image-exec", "", "executor image (default: executor_image, else "+job.DefaultExecutorRepo+":"+version.Version+")")
	f.Var(&wait, "wait", "wait until every process runs (--wait) or the job finishes (--wait=done)")
	f.Lookup("wait").NoOptDefVal = "running"
	cli.CompleteFlag(cmd, "wait", "running", "done")
	timeoutFlag(cmd, &timeout, "submitting and waiting")
	f.IntVar(&restarts, "executor-restarts", 0, fmt.Sprintf("start a failed executor again up to this many times (default: executor_restarts, else %d; %d on k8s)",
		job.DefaultExecutorRestarts(job.BackendLocal), job.DefaultExecutorRestarts(job.BackendK8s)))
	f.BoolVar(&dryRun, "dry-run", false, "check the job file and print what would be created; start nothing")
	f.BoolVar(&g.planNamespace, "with-namespace", false, "k8s --dry-run: print the Namespace object too (left out so that kubectl delete -f of the output keeps the namespace)")
	f.StringToStringVar(&opts.NodeSelector, "node-selector", nil, "k8s: run the pods on nodes with these labels, e.g. pool=fl (replaces k8s.node_selector)")
	f.StringArrayVar(&opts.Tolerations, "toleration", nil, "k8s: tolerate a taint, key[=value][:effect], e.g. pool=fl:NoSchedule; repeatable (replaces k8s.tolerations)")
	f.StringArrayVar(&opts.ImagePullSecrets, "image-pull-secret", nil, "k8s: a Secret for pulling the images; repeatable (replaces k8s.image_pull_secrets)")
	f.StringVar(&opts.PriorityClass, "priority-class", "", "k8s: the pods' PriorityClass (replaces k8s.priority_class)")
	f.StringVar(&opts.ServiceAccount, "service-account", "", "k8s: the pods' ServiceAccount (replaces k8s.service_account)")
	return cmd
}

// load reads the job file and runs every check that needs no engine or
// cluster, printing the file's warnings: submit and --dry-run alike, before
// anything starts. Its errors are usage errors: the file or flags are wrong.
func (g *globals) load(path string, opts job.Options, stderr io.Writer) (*job.Spec, error) {
	opts.Backend = g.backend
	// First as if the engines were elsewhere (nothing of their hosts is
	// looked at), then again from the same bytes when the job's Docker
	// engines all run here.
	opts.RemoteEngine = true
	spec, err := job.Load(path, opts)
	if err != nil {
		return nil, cli.Usage(err)
	}
	if spec.Backend == job.BackendDocker && g.dockerOnThisMachine(spec) {
		opts.RemoteEngine = false
		if spec, err = job.Parse(spec.Config, path, opts); err != nil {
			return nil, cli.Usage(err)
		}
	}
	warnings, err := spec.Preflight(opts.RemoteEngine)
	if err != nil {
		return nil, cli.Usage(err)
	}
	if spec.Backend == job.BackendLocal {
		if err := local.CheckPorts(spec); err != nil {
			return nil, cli.Usage(err)
		}
	}
	for _, w := range append(spec.Job.Warnings, warnings...) {
		fmt.Fprintln(stderr, "warning:", w)
	}
	return spec, nil
}

// dockerOnThisMachine says whether every Docker engine job s would use
// runs here (so its bind mounts are this machine's folders). Without a
// usable address, it is taken to be here: the check of data_path stays
// on, and opening the backend reports the address.
func (g *globals) dockerOnThisMachine(s *job.Spec) bool {
	engines, err := g.dockerEngines()
	if err != nil {
		return true
	}
	b, err := docker.New(docker.Options{Engines: engines, Log: g.log})
	if err != nil {
		return true
	}
	defer b.Close()
	return b.OnThisMachineFor(s)
}
