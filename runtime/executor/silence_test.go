package executor_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/executor"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

// silentServer welcomes an executor with 10 ms heartbeats, sends an ack
// every 10 ms for talk, then says nothing more while still reading; a
// session after the first ends the job.
type silentServer struct {
	pb.UnimplementedAggregatorServer
	talk     time.Duration
	sessions atomic.Int32
}

func (s *silentServer) Session(stream pb.Aggregator_SessionServer) error {
	if err := welcome(stream, "silent", 10); err != nil {
		return err
	}
	if s.sessions.Add(1) > 1 {
		return stream.Send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Shutdown{Shutdown: &pb.Shutdown{Reason: "done", JobDone: true}}})
	}
	for end := time.Now().Add(s.talk); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if err := stream.Send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_HeartbeatAck{HeartbeatAck: &pb.HeartbeatAck{}}}); err != nil {
			return err
		}
	}
	for {
		if _, err := stream.Recv(); err != nil {
			return nil
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// An aggregator that goes silent after welcoming is dropped after
// pb.SilenceLimit. One that never said anything after its Welcome gives
// the executor nothing to wait for: the connect timeout has passed and it
// gives up. One that was heard from restarts the connect clock from then:
// the session lasted longer than the connect timeout, the silence did not,
// and the executor reconnects (and here finishes the job).
func TestSilentAggregatorDropped(t *testing.T) {
	ds := tinyData(t)
	limit := pb.SilenceLimit(10 * time.Millisecond)
	for _, tc := range []struct {
		name     string
		talk     time.Duration
		connect  time.Duration
		err      string // "" for a job that finishes
		sessions int32
	}{
		{"welcome then silence", 0, time.Second, "then sent nothing for " + limit.String(), 1},
		{"acks then silence", 3 * time.Second, limit + 1500*time.Millisecond, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &silentServer{talk: tc.talk}
			gs := grpc.NewServer()
			pb.RegisterAggregatorServer(gs, srv)
			go func() { _ = gs.Serve(lis) }()
			defer gs.Stop()
			c := config.Default()
			c.JobName, c.Model, c.LogPath = "silent", "logistic", ""
			c.PsIP, c.PsPort = "127.0.0.1", lis.Addr().(*net.TCPAddr).Port
			var logs lockedBuffer
			ex, err := executor.New(executor.Options{Conf: c, Rank: 1, Backend: cpu.New, Data: ds, ConnectTimeout: tc.connect, Log: fedlog.New(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
			defer cancel()
			err = ex.Run(ctx)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Run = %v, want %q", err, tc.err)
			}
			if n := srv.sessions.Load(); n != tc.sessions {
				t.Errorf("%d sessions, want %d", n, tc.sessions)
			}
			if want := "The aggregator sent nothing for " + limit.String(); !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs.String())
			}
		})
	}
}
