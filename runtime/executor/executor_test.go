package executor_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/data"
	"github.com/fedscale/fedscale-go/runtime/executor"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

// shutdownServer welcomes an executor with a very short heartbeat interval,
// lets it heartbeat for a moment, then ends the job.
type shutdownServer struct {
	pb.UnimplementedAggregatorServer
}

func (shutdownServer) Session(stream pb.Aggregator_SessionServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	if err := stream.Send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Welcome{Welcome: &pb.Welcome{
		ProtocolVersion: pb.ProtocolVersion, JobName: "race", TimeStamp: "t", HeartbeatIntervalMs: 1,
		Training: &pb.TrainingConfig{Model: "logistic", BatchSize: 4, LocalSteps: 1, TestBsz: 4},
	}}}); err != nil {
		return err
	}
	// Wait for a few heartbeats, so the executor's heartbeat goroutine is
	// sending while Shutdown arrives.
	for range 5 {
		if _, err := stream.Recv(); err != nil {
			return err
		}
	}
	if err := stream.Send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Shutdown{Shutdown: &pb.Shutdown{Reason: "done", JobDone: true}}}); err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// Shutdown closes the executor's send side while its heartbeat goroutine
// keeps sending; grpc forbids CloseSend concurrently with SendMsg, so the
// two must be serialised (run with -race).
func TestShutdownWhileHeartbeating(t *testing.T) {
	dir := t.TempDir()
	if err := jobtest.WriteSynthetic(dir, jobtest.SynthOptions{Clients: 2, PerClient: 4, Test: 4, Classes: 2, Size: 8, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	ds, err := data.Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterAggregatorServer(srv, shutdownServer{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	c := config.Default()
	c.JobName = "race"
	c.Model = "logistic"
	c.LogPath = ""
	c.PsIP = "127.0.0.1"
	c.PsPort = lis.Addr().(*net.TCPAddr).Port
	for i := range 20 {
		ex, err := executor.New(executor.Options{Conf: c, Rank: 1, Slots: 2, Backend: cpu.New, Data: ds, ConnectTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = ex.Run(ctx)
		cancel()
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
}
