// Command executor runs one executor process of a FedScale job:
//
//	executor --config JOB.yml --rank N [--ps-port P]
//
// It exits 0 when the aggregator reports the job finished.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/credentials"

	"github.com/fedscale/fedscale-go/runtime/device"
	"github.com/fedscale/fedscale-go/runtime/executor"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/health"
	"github.com/fedscale/fedscale-go/runtime/jobflags"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
	"github.com/fedscale/fedscale-go/runtime/version"
)

func main() {
	var (
		slots   int
		cacheMB int
		connect time.Duration
		byIndex bool
		dev     string
		gpuMB   int
	)
	cmd := &cobra.Command{
		Use:           "executor --config JOB.yml --rank N",
		Short:         "Run an executor of a FedScale job",
		Version:       version.Version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	flags := jobflags.Bind(cmd.Flags())
	cmd.Flags().IntVar(&slots, "slots", 1, "client tasks this process trains at once")
	cmd.Flags().IntVar(&cacheMB, "image-cache-mb", 16, "memory for decoded images (train and test together; 0 = keep every image); images beyond it are decoded on each use")
	cmd.Flags().DurationVar(&connect, "connect-timeout", 2*time.Minute, "how long to keep trying to reach the aggregator")
	cmd.Flags().IntVar(&gpuMB, "gpu-memory-mb", 0, "device memory each GPU trainer (one per compute slot) may hold, in MiB; 0: an equal share of the memory free at start, one per slot of each executor worker_ips puts on the GPU")
	cmd.Flags().StringVar(&dev, "device", "", "where to train: auto (the GPU when one is usable and passes the self-check, else the CPU), cpu, cuda or cuda:N (a GPU or an error); default: the job's use_cuda (auto) and cuda_device, else this rank's GPU in worker_ips")
	cmd.Flags().BoolVar(&byIndex, "rank-from-index", false, "take the rank from $JOB_COMPLETION_INDEX + 1 (a Kubernetes Indexed Job's pod index)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if byIndex {
			if cmd.Flags().Changed("rank") {
				return fmt.Errorf("--rank-from-index and --rank: give one")
			}
			idx, err := strconv.Atoi(os.Getenv("JOB_COMPLETION_INDEX"))
			if err != nil || idx < 0 {
				return fmt.Errorf("--rank-from-index: $JOB_COMPLETION_INDEX is %q, want the pod's index (0, 1, ...)", os.Getenv("JOB_COMPLETION_INDEX"))
			}
			if err := cmd.Flags().Set("rank", strconv.Itoa(idx+1)); err != nil {
				return err
			}
		}
		job, err := flags.Load()
		if err != nil {
			return err
		}
		conf := job.Conf
		if !conf.IsSet("this_rank") && !cmd.Flags().Changed("rank") {
			return fmt.Errorf("--rank: required for an executor (1..num_executors)")
		}
		if n, err := job.Executors(); err == nil && (conf.ThisRank < 1 || conf.ThisRank > n) {
			return fmt.Errorf("--rank: %d is outside 1..%d (the job's executors)", conf.ThisRank, n)
		}
		tlsFiles, insecure, err := flags.TLS(conf, conf.ThisRank)
		if err != nil {
			return err
		}
		log := fedlog.New(os.Stderr)
		log.Buffer() // the log folder is known once the aggregator welcomes us
		for _, w := range job.Warnings {
			log.Warnf("%s", w)
		}
		if gpuMB < 0 || gpuMB > 1<<24 {
			return fmt.Errorf("--gpu-memory-mb: %d is outside 0..%d", gpuMB, 1<<24)
		}
		choice := device.FromConf(conf.UseCuda, conf.CudaDevice)
		if cmd.Flags().Changed("device") {
			if choice, err = device.Parse(dev); err != nil {
				return err
			}
		}
		if choice.Ordinal < 0 {
			// FedScale's per-rank GPU of worker_ips.
			choice.Ordinal, choice.Slot = job.GPUOf(conf.ThisRank), true
		}
		// Bounded here, before the GPU share multiplies it (executor.New
		// checks it again for its other callers).
		if slots < 1 || slots > pb.MaxSlots {
			return fmt.Errorf("--slots must be 1..%d, got %d", pb.MaxSlots, slots)
		}
		// Without --gpu-memory-mb each GPU trainer gets an equal share of
		// the memory free at start: one per slot of every executor that
		// worker_ips puts on this GPU.
		gpu := openGPU(gpuMB, slots*job.GPUPeers(conf.ThisRank))
		backend, where, err := device.Select(choice, gpu, cpu.New, log.Infof)
		if err != nil {
			return err
		}
		log.Infof("executor %d trains on %s", conf.ThisRank, where)
		hs, err := health.Listen(flags.HealthAddr(conf, conf.ThisRank), nil)
		if err != nil {
			return err
		}
		defer hs.Close()
		hs.SetReady(false, "not registered with the aggregator")
		var creds credentials.TransportCredentials // nil: plain text
		if insecure {
			log.Warnf("--insecure: the wire to the aggregator is plain text and the aggregator is not authenticated")
		} else if creds, err = tlsFiles.ClientCredentials(conf.ThisRank); err != nil {
			return err
		}
		ex, err := executor.New(executor.Options{Credentials: creds, Conf: conf, Rank: conf.ThisRank, Slots: slots, Backend: executor.NewTrainer(backend), Log: log, Health: hs, ConnectTimeout: connect,
			ImageCacheBytes: int64(cacheMB) << 20, TuneGC: os.Getenv("GOGC") == ""})
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return ex.Run(ctx)
	}
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "executor:", err)
		if stopped := (*executor.JobStoppedError)(nil); errors.As(err, &stopped) {
			os.Exit(health.ExitJobStopped)
		}
		os.Exit(1)
	}
}
