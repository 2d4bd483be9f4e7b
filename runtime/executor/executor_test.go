package executor_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/data"
	"github.com/fedscale/fedscale-go/runtime/executor"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// shutdownServer welcomes an executor with a very short heartbeat interval,
// lets it heartbeat for a moment, then ends the job.
type shutdownServer struct {
	pb.UnimplementedAggregatorServer
}

// welcome reads an executor's Hello and welcomes it to job, training
// logistic, with heartbeats every hbMs milliseconds.
func welcome(stream pb.Aggregator_SessionServer, job string, hbMs int64) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	return stream.Send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Welcome{Welcome: &pb.Welcome{
		ProtocolVersion: pb.ProtocolVersion, JobName: job, TimeStamp: "t", HeartbeatIntervalMs: hbMs,
		Training: &pb.TrainingConfig{Model: "logistic", BatchSize: 4, LocalSteps: 1, TestBsz: 4},
	}}})
}

func (shutdownServer) Session(stream pb.Aggregator_SessionServer) error {
	if err := welcome(stream, "race", 1); err != nil {
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

// tinyData is a two-client synthetic data set of 8x8 grey images.
func tinyData(t *testing.T) *data.Dataset {
	t.Helper()
	dir := t.TempDir()
	if err := jobtest.WriteSynthetic(dir, jobtest.SynthOptions{Clients: 2, PerClient: 4, Test: 4, Classes: 2, Size: 8, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	ds, err := data.Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// Shutdown closes the executor's send side while its heartbeat goroutine
// keeps sending; grpc forbids CloseSend concurrently with SendMsg, so the
// two must be serialised (run with -race).
func TestShutdownWhileHeartbeating(t *testing.T) {
	ds := tinyData(t)
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

// scriptedServer welcomes an executor for the logistic model (or with
// its own Welcome), then sends the given messages and waits for the
// executor to hang up.
type scriptedServer struct {
	pb.UnimplementedAggregatorServer
	welcome *pb.Welcome
	msgs    []*pb.AggregatorMessage
}

func (s scriptedServer) Session(stream pb.Aggregator_SessionServer) error {
	if s.welcome != nil {
		if _, err := stream.Recv(); err != nil {
			return err
		}
		if err := stream.Send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Welcome{Welcome: s.welcome}}); err != nil {
			return err
		}
	} else if err := welcome(stream, "script", 1000); err != nil {
		return err
	}
	for _, m := range s.msgs {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	for {
		if _, err := stream.Recv(); err != nil {
			return nil
		}
	}
}

// A model that does not arrive as announced ends the executor with an
// error that says what was wrong, instead of training on a partial model.
func TestModelTransferErrors(t *testing.T) {
	ds := tinyData(t)
	c, h, w := ds.Input()
	spec := model.Spec{Name: "logistic", Channels: c, Height: h, Width: w, Classes: 2}
	layout, err := model.Layout(spec)
	if err != nil {
		t.Fatal(err)
	}
	announce := func(v int64, l tensor.List) *pb.AggregatorMessage {
		return &pb.AggregatorMessage{Body: &pb.AggregatorMessage_Model{Model: &pb.Model{Version: v, Tensors: pb.Layout(l)}}}
	}
	chunk := func(v, off int64, n int) *pb.AggregatorMessage {
		return &pb.AggregatorMessage{Body: &pb.AggregatorMessage_ModelChunk{ModelChunk: &pb.ModelChunk{Version: v, Offset: off, Data: make([]float32, n)}}}
	}
	total := layout.ZerosLike().NumElements()
	wrong := layout.ZerosLike()
	wrong[0].Shape = []int{wrong[0].Shape[0] + 1}
	for _, tc := range []struct {
		name string
		msgs []*pb.AggregatorMessage
		want string
	}{
		{"other layout", []*pb.AggregatorMessage{announce(0, wrong)}, "is not logistic as this executor builds it"},
		{"values in an announcement", []*pb.AggregatorMessage{{Body: &pb.AggregatorMessage_Model{Model: &pb.Model{Tensors: pb.FromTensors(layout.ZerosLike())}}}}, "carries no values"},
		{"chunk before announcement", []*pb.AggregatorMessage{chunk(0, 0, 1)}, "not announced"},
		{"chunk of another version", []*pb.AggregatorMessage{announce(1, layout), chunk(0, 0, 1)}, "not announced"},
		{"gap", []*pb.AggregatorMessage{announce(0, layout), chunk(0, 1, 1)}, "expected 0"},
		{"overrun", []*pb.AggregatorMessage{announce(0, layout), chunk(0, 0, total-1), chunk(0, int64(total-1), 2)}, "overruns"},
		{"announced twice", []*pb.AggregatorMessage{announce(0, layout), announce(1, layout)}, "still arriving"},
		{"version going back", []*pb.AggregatorMessage{announce(3, layout), chunk(3, 0, total), announce(2, layout)}, "after version 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runScripted(t, ds, "", scriptedServer{msgs: tc.msgs})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// runScripted runs an executor (logs under logPath, none if "") against
// srv until it ends.
func runScripted(t *testing.T, ds *data.Dataset, logPath string, srv pb.AggregatorServer) error {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	pb.RegisterAggregatorServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	conf := config.Default()
	conf.JobName, conf.Model, conf.LogPath = "script", "logistic", logPath
	conf.PsIP, conf.PsPort = "127.0.0.1", lis.Addr().(*net.TCPAddr).Port
	ex, err := executor.New(executor.Options{Conf: conf, Rank: 1, Backend: cpu.New, Data: ds, ConnectTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return ex.Run(ctx)
}

// The aggregator's word that the job failed is a JobStoppedError (the
// command exits health.ExitJobStopped on it, so launchers do not restart
// the executor); the job's success is no error at all.
func TestJobStopped(t *testing.T) {
	ds := tinyData(t)
	for _, tc := range []struct {
		name    string
		done    bool
		stopped bool
	}{
		{"job failed", false, true},
		{"job done", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sd := &pb.AggregatorMessage{Body: &pb.AggregatorMessage_Shutdown{Shutdown: &pb.Shutdown{Reason: "diverged", JobDone: tc.done}}}
			err := runScripted(t, ds, "", scriptedServer{msgs: []*pb.AggregatorMessage{sd}})
			var stopped *executor.JobStoppedError
			if got := errors.As(err, &stopped); got != tc.stopped || tc.done && err != nil {
				t.Fatalf("Run: %v, want a JobStoppedError: %v", err, tc.stopped)
			}
			if tc.stopped && stopped.Reason != "diverged" {
				t.Errorf("reason %q, want the aggregator's", stopped.Reason)
			}
		})
	}
}

// The executor holds the aggregator's settings to the job file's rules
// before using them: a time stamp that climbs out of log_path, sizes that
// would be allocations, non-finite numbers are errors naming the key, and
// nothing is written outside log_path.
func TestHostileWelcome(t *testing.T) {
	ds := tinyData(t)
	good := func() *pb.Welcome {
		return &pb.Welcome{ProtocolVersion: pb.ProtocolVersion, JobName: "script", TimeStamp: "t", HeartbeatIntervalMs: 1000,
			Training: &pb.TrainingConfig{Model: "logistic", BatchSize: 4, LocalSteps: 1, TestBsz: 4, Momentum: 0.9}}
	}
	for _, tc := range []struct {
		name string
		edit func(w *pb.Welcome)
		want string
	}{
		{"time stamp climbs out", func(w *pb.Welcome) { w.TimeStamp = "../../../../escaped" }, "job_conf.time_stamp"},
		{"empty time stamp", func(w *pb.Welcome) { w.TimeStamp = "" }, "job_conf.time_stamp is empty"},
		{"negative batch", func(w *pb.Welcome) { w.Training.BatchSize = -1 }, "job_conf.batch_size must be positive"},
		{"huge batch", func(w *pb.Welcome) { w.Training.BatchSize = 1 << 30 }, "job_conf.batch_size must be at most 65536"},
		{"huge test batch", func(w *pb.Welcome) { w.Training.TestBsz = 1 << 30 }, "job_conf.test_bsz must be at most"},
		{"huge local steps", func(w *pb.Welcome) { w.Training.LocalSteps = 1 << 30 }, "job_conf.local_steps must be at most"},
		{"NaN weight decay", func(w *pb.Welcome) { w.Training.WeightDecay = math.NaN() }, "job_conf.weight_decay must be a finite number"},
		{"momentum 1", func(w *pb.Welcome) { w.Training.Momentum = 1 }, "momentum must be in [0, 1)"},
		{"unknown model", func(w *pb.Welcome) { w.Training.Model = "gpt" }, `unknown model "gpt"`},
		{"no heartbeats", func(w *pb.Welcome) { w.HeartbeatIntervalMs = 0 }, "heartbeat interval"},
		{"no training", func(w *pb.Welcome) { w.Training = nil }, "no training settings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := good()
			tc.edit(w)
			root := t.TempDir()
			logs := filepath.Join(root, "a", "b")
			err := runScripted(t, ds, logs, scriptedServer{welcome: w})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.want)
			}
			entries, _ := os.ReadDir(root)
			for _, e := range entries {
				if e.Name() != "a" {
					t.Errorf("written outside log_path: %s", e.Name())
				}
			}
		})
	}
}
