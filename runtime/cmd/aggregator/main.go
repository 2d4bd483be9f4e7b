// Command aggregator runs the server side of a FedScale job:
//
//	aggregator --config JOB.yml [--ps-port P] [--set key=value ...]
//
// It exits 0 when every round has been trained and evaluated. Started
// again on a job that finished (save_checkpoint, same settings, no more
// rounds), it logs the job's final results, tells the executors that
// connect within --finished-grace that the job is over, and exits 0;
// --no-resume runs the job again.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	grpcinsecure "google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/fedscale/fedscale-go/runtime/aggregator"
	"github.com/fedscale/fedscale-go/runtime/dashboard"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/health"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
	"github.com/fedscale/fedscale-go/runtime/jobflags"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
	"github.com/fedscale/fedscale-go/runtime/trace"
	"github.com/fedscale/fedscale-go/runtime/version"
)

// maxStreamsPerConn bounds the sessions one connection may have open: an
// executor has one, and briefly two while it replaces a broken one.
const maxStreamsPerConn = 4

// DefaultMaxConnections is the default of --max-connections for a job of
// executors processes: two connections each (a restarted executor's new
// connection may arrive before its old one is found dead) and 16 for
// probes, operators and executors reconnecting at once.
func DefaultMaxConnections(executors int) int { return 2*executors + 16 }

// maxConnections is the --max-connections value n for a job of executors
// processes: DefaultMaxConnections when 0, and enough for every executor
// to be connected at once.
func maxConnections(n, executors int) (int, error) {
	switch {
	case n == 0:
		return DefaultMaxConnections(executors), nil
	case n < 0:
		return 0, fmt.Errorf("--max-connections must be positive (0: 2*executors+16), got %d", n)
	case n < executors:
		return 0, fmt.Errorf("--max-connections %d is below the job's %d executors: they could not all connect", n, executors)
	}
	return n, nil
}

func main() {
	var (
		heartbeat, timeout, wait, grace, helloTimeout, taskTimeout time.Duration
		noResume                                                   bool
		maxConns                                                   int
	)
	cmd := &cobra.Command{
		Use:           "aggregator --config JOB.yml",
		Short:         "Run the aggregator of a FedScale job",
		Version:       version.Version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	flags := jobflags.Bind(cmd.Flags())
	cmd.Flags().DurationVar(&heartbeat, "heartbeat", time.Second, "how often executors must report")
	cmd.Flags().DurationVar(&timeout, "executor-timeout", 10*time.Second, "silence after which an executor is declared lost and its tasks re-issued")
	cmd.Flags().DurationVar(&wait, "executor-wait", 10*time.Minute, "how long to wait with no executor connected before failing")
	cmd.Flags().DurationVar(&taskTimeout, "task-timeout", 0, fmt.Sprintf("how long one task may take before it is given to another executor (0: %dx the median measured task time, at least %s)",
		aggregator.TaskTimeoutFactor, aggregator.DefaultTaskTimeoutFloor))
	cmd.Flags().BoolVar(&noResume, "no-resume", false, "start from round 0 even if a checkpoint of this job exists or the job finished")
	cmd.Flags().DurationVar(&grace, "finished-grace", aggregator.DefaultFinishedGrace, "on a job that already finished: how long to tell executors that connect so before exiting")
	cmd.Flags().IntVar(&maxConns, "max-connections", 0, "connections open at once on ps_port; more wait to be accepted (0: 2*executors+16, see DefaultMaxConnections)")
	cmd.Flags().DurationVar(&helloTimeout, "hello-timeout", aggregator.DefaultHelloTimeout, "how long a new connection may take for each of its handshake, opening its session and saying Hello before it is closed")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if grace <= 0 {
			return fmt.Errorf("--finished-grace must be positive, got %s", grace)
		}
		job, err := flags.Load()
		if err != nil {
			return err
		}
		tlsFiles, insecure, err := flags.TLS(job.Conf, 0)
		if err != nil {
			return err
		}
		executors, err := job.Executors()
		if err != nil {
			return fmt.Errorf("%s: %w", flags.Config, err)
		}
		// Flags checked before anything is created (the log folder).
		if maxConns, err = maxConnections(maxConns, executors); err != nil {
			return err
		}
		if helloTimeout <= 0 {
			return fmt.Errorf("--hello-timeout must be positive, got %s", helloTimeout)
		}
		conf := job.Conf
		if conf.TimeStamp == "" {
			conf.TimeStamp = time.Now().Format("0102_150405")
		}
		log := fedlog.New(os.Stderr)
		for _, w := range job.Warnings {
			log.Warnf("%s", w)
		}
		if _, err := log.AttachFile(filepath.Join(conf.LogDir(), "aggregator", "log")); err != nil {
			return err
		}
		opt := aggregator.Options{Conf: conf, Executors: executors, Log: log, HeartbeatInterval: heartbeat,
			ExecutorTimeout: timeout, ExecutorWait: wait, HelloTimeout: helloTimeout, TaskTimeout: taskTimeout, Resume: !noResume, FinishedGrace: grace}
		// The original falls back to equal devices when its default
		// device_conf_file (/tmp/client.cfg) is absent; a file the job
		// names explicitly must load.
		if conf.IsSet("device_conf_file") && conf.DeviceConfFile != "" {
			if opt.Capacities, err = trace.LoadCapacities(conf.DeviceConfFile); err != nil {
				return fmt.Errorf("job_conf.device_conf_file: %w", err)
			}
		}
		if conf.DeviceAvailFile != "" {
			if opt.Behaviors, err = trace.LoadBehaviors(conf.DeviceAvailFile); err != nil {
				return fmt.Errorf("job_conf.device_avail_file: %w", err)
			}
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		opt.Metrics = reg
		// The health port serves before the aggregator is made: New reads
		// the whole data set in simulation (minutes for a large one), and
		// a startup probe must see the process alive meanwhile.
		jobDoc := &health.Deferred{Reason: "the aggregator is starting (reading the job's data set)"}
		routes := []health.Route{{Pattern: jobapi.Path, Handler: jobDoc}}
		for _, p := range dashboard.Patterns {
			routes = append(routes, health.Route{Pattern: p, Handler: dashboard.Handler()})
		}
		hs, err := health.Listen(flags.HealthAddr(conf, 0), reg, routes...)
		if err != nil {
			return err
		}
		defer hs.Close()
		hs.SetReady(false, jobDoc.Reason)
		agg, err := aggregator.New(opt)
		if err != nil {
			return err
		}
		jobDoc.Set(agg.JobHandler())
		hs.SetReady(false, "starting")
		lis, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(conf.PsPort)))
		if err != nil {
			return fmt.Errorf("job_conf.ps_port: %w", err)
		}
		// Beyond maxConns, connections wait in the kernel's backlog instead
		// of costing this process a descriptor and goroutines each.
		lis = netutil.LimitListener(lis, maxConns)
		creds := grpcinsecure.NewCredentials()
		if insecure {
			log.Warnf("--insecure: the wire is plain text and unauthenticated; anyone who reaches port %d can join this job", conf.PsPort)
		} else if creds, err = tlsFiles.ServerCredentials(); err != nil {
			return err
		}
		srv := grpc.NewServer(grpc.Creds(creds),
			grpc.MaxRecvMsgSize(pb.MaxMessageBytes), grpc.MaxSendMsgSize(pb.MaxMessageBytes),
			// A connection holds one of maxConns until it is closed, so one
			// that stays silent must not hold it for long: the TLS handshake
			// and HTTP/2 preface, a connection with no session open, and (in
			// the aggregator) a session without Hello each get helloTimeout.
			// An executor opens one session at a time.
			grpc.ConnectionTimeout(helloTimeout),
			grpc.MaxConcurrentStreams(maxStreamsPerConn),
			// Pings find executors whose process hangs with the socket open.
			grpc.KeepaliveParams(keepalive.ServerParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, MaxConnectionIdle: helloTimeout}),
			grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		)
		pb.RegisterAggregatorServer(srv, agg)
		go func() { _ = srv.Serve(lis) }()
		defer srv.Stop()
		log.Infof("Aggregator %s serving gRPC on %s, health on %s", version.Version, lis.Addr(), hs.Addr())

		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		go func() { <-agg.Ready(); hs.SetReady(true, "") }()
		res, err := agg.Run(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return errors.New("stopped by signal; restart with the same job file to resume from the last checkpoint")
			}
			return err
		}
		log.Infof("Final test accuracy: top_1 %s, top_5 %s; metrics in %s", fedlog.PyFloat(res.Top1), fedlog.PyFloat(res.Top5), res.MetricsFile)
		return nil
	}
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "aggregator:", err)
		os.Exit(1)
	}
}
