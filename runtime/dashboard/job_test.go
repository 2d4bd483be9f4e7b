package dashboard_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/fedscale/fedscale-go/runtime/aggregator"
	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/dashboard"
	"github.com/fedscale/fedscale-go/runtime/data"
	"github.com/fedscale/fedscale-go/runtime/executor"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/health"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

// jobData writes a synthetic data set into dir/data and returns the
// job's configuration (logistic model, on it) and the data set.
func jobData(tb testing.TB, dir, name string, o jobtest.SynthOptions) (config.Conf, *data.Dataset) {
	tb.Helper()
	if err := jobtest.WriteSynthetic(filepath.Join(dir, "data"), o); err != nil {
		tb.Fatal(err)
	}
	ds, err := data.Load(filepath.Join(dir, "data"), "")
	if err != nil {
		tb.Fatal(err)
	}
	c := config.Default()
	c.JobName, c.LogPath, c.TimeStamp, c.DataDir, c.GreyInput = name, dir, "run1", filepath.Join(dir, "data"), true
	c.Model, c.FilterLess, c.TestBsz, c.UseCuda = "logistic", 10, 20, false
	return c, ds
}

// aggr is an aggregator running in this process, as the aggregator
// command runs it: the gRPC service, and the HTTP port with the job
// document and the page.
type aggr struct {
	agg  *aggregator.Aggregator
	c    config.Conf
	srv  *grpc.Server
	hs   *health.Server
	stop context.CancelFunc
	done chan struct{}
	err  error
}

// startAggr starts c's aggregator (Resume on) for executors executors,
// serving gRPC on grpcAddr and HTTP on httpAddr (port 0: any; an
// aggregator started again takes its predecessor's). It runs until ctx
// ends or stop; the test's end stops it.
func startAggr(tb testing.TB, ctx context.Context, c config.Conf, executors int, grpcAddr, httpAddr string) *aggr {
	tb.Helper()
	lis, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		tb.Fatal(err)
	}
	c.PsIP, c.PsPort = "127.0.0.1", lis.Addr().(*net.TCPAddr).Port
	agg, err := aggregator.New(aggregator.Options{Conf: c, Executors: executors, ExecutorTimeout: 3 * time.Second,
		Resume: true, Log: fedlog.New(discard{})})
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(pb.MaxMessageBytes), grpc.MaxSendMsgSize(pb.MaxMessageBytes))
	pb.RegisterAggregatorServer(srv, agg)
	go func() { _ = srv.Serve(lis) }()
	routes := []health.Route{{Pattern: jobapi.Path, Handler: agg.JobHandler()}}
	for _, p := range dashboard.Patterns {
		routes = append(routes, health.Route{Pattern: p, Handler: dashboard.Handler()})
	}
	hs, err := health.Listen(httpAddr, nil, routes...)
	if err != nil {
		srv.Stop()
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	a := &aggr{agg: agg, c: c, srv: srv, hs: hs, stop: cancel, done: make(chan struct{})}
	go func() { defer close(a.done); _, a.err = agg.Run(ctx) }()
	tb.Cleanup(a.close)
	return a
}

// close stops the aggregator and its servers and waits for it.
func (a *aggr) close() {
	a.stop()
	<-a.done
	a.srv.Stop()
	_ = a.hs.Close()
}

// startExecutor runs executor rank of a's job with trainer until ctx ends
// or the job does; its error comes on the channel.
func startExecutor(tb testing.TB, ctx context.Context, c config.Conf, ds *data.Dataset, rank int, trainer executor.NewTrainer) <-chan error {
	tb.Helper()
	ex, err := executor.New(executor.Options{Conf: c, Rank: rank, Slots: 1, Backend: trainer, Data: ds, Log: fedlog.New(discard{}), ConnectTimeout: 20 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- ex.Run(ctx) }()
	return errc
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
