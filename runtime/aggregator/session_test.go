package aggregator_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/fedscale/fedscale-go/runtime/aggregator"
	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/data"
	"github.com/fedscale/fedscale-go/runtime/datadesc"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

// A rank that never registers (its process exited on bad data, say) fails
// the job after ExecutorWait with a message naming it, instead of leaving
// the registered executors waiting forever.
func TestMissingRankFailsJob(t *testing.T) {
	c := baseConf(t)
	j := startAggregator(t, c, 2, func(o *aggregator.Options) {
		o.ExecutorWait = time.Second
		o.ExecutorTimeout = time.Minute
	})
	s, _ := rawSession(t, j, helloFor(t, j.conf, 1))
	if _, err := s.Recv(); err != nil { // Welcome
		t.Fatal(err)
	}
	select {
	case <-j.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the job still waits for executor 2")
	}
	if j.err == nil || !strings.Contains(j.err.Error(), "executor(s) 2 of 2 never registered") {
		t.Fatalf("got %v, want an error naming executor 2", j.err)
	}
}

// An executor that stops reading (so the aggregator's Send blocks on flow
// control) and goes silent is dropped; its stream handler must then end
// rather than stay blocked in Send until the connection dies.
func TestDroppedSessionBlockedInSendEnds(t *testing.T) {
	dir := t.TempDir()
	// Large images make a model bigger than the stream's flow-control
	// window plus the transport's write quota.
	if err := jobtest.WriteSynthetic(dir, jobtest.SynthOptions{Clients: 4, PerClient: 12, Test: 8, Classes: 5, Size: 128, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	ds, err := data.Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	c := baseConf(t)
	c.JobName = "blocked"
	c.DataDir = dir
	c.NumParticipants = 2
	c.BatchSize = 4
	c.FilterLess = 4
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.PsIP = "127.0.0.1"
	c.PsPort = lis.Addr().(*net.TCPAddr).Port
	agg, err := aggregator.New(aggregator.Options{Conf: c, Executors: 1, Log: fedlog.New(testWriter{t}),
		HeartbeatInterval: 100 * time.Millisecond, ExecutorTimeout: 500 * time.Millisecond, ExecutorWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 4)
	srv := grpc.NewServer(grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		err := h(srv, ss)
		ended <- err
		return err
	}))
	pb.RegisterAggregatorServer(srv, agg)
	go func() { _ = srv.Serve(lis) }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _, _ = agg.Run(ctx) }()
	defer func() { cancel(); <-done; srv.Stop() }()

	// A fixed 64 KiB window: the client grants no more until it reads.
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := pb.NewAggregatorClient(conn).Session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hello := &pb.Hello{ProtocolVersion: pb.ProtocolVersion, Rank: 1, JobName: c.JobName, Incarnation: "stuck", Slots: 2, Data: datadesc.Info(ds)}
	if err := stream.Send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_Hello{Hello: hello}}); err != nil {
		t.Fatal(err)
	}
	// Never read, never heartbeat.
	select {
	case err := <-ended:
		if err == nil || !strings.Contains(err.Error(), "no heartbeat") {
			t.Errorf("handler ended with %v, want the drop reason", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the dropped executor's stream handler is still blocked in Send")
	}
}

// A timeout no longer than the heartbeat interval would drop every executor
// between heartbeats; New refuses it, naming both flags.
func TestTimeoutShorterThanHeartbeatRefused(t *testing.T) {
	c := config.Default()
	c.JobName = "timeouts"
	c.Model = "logistic"
	_, err := aggregator.New(aggregator.Options{Conf: c, Executors: 1, HeartbeatInterval: 5 * time.Second, ExecutorTimeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "--executor-timeout") || !strings.Contains(err.Error(), "--heartbeat") {
		t.Fatalf("got %v, want an error naming --executor-timeout and --heartbeat", err)
	}
	if _, err := aggregator.New(aggregator.Options{Conf: c, Executors: 1, HeartbeatInterval: time.Second, ExecutorTimeout: 3 * time.Second}); err != nil {
		t.Fatalf("valid timeouts refused: %v", err)
	}
	// Welcome carries whole milliseconds, and executors refuse more than
	// pb.MaxHeartbeatInterval.
	for _, hb := range []time.Duration{time.Microsecond, pb.MaxHeartbeatInterval + time.Second} {
		_, err := aggregator.New(aggregator.Options{Conf: c, Executors: 1, HeartbeatInterval: hb, ExecutorTimeout: time.Hour})
		if err == nil || !strings.Contains(err.Error(), "--heartbeat") {
			t.Errorf("heartbeat %s: got %v, want an error naming --heartbeat", hb, err)
		}
	}
}

// A session with nothing to send (the job waits for another executor)
// still hears from the aggregator every heartbeat interval, so executors
// can bound the aggregator's silence (pb.SilenceLimit); the ack carries
// the newest heartbeat read.
func TestIdleSessionHearsHeartbeatAcks(t *testing.T) {
	c := baseConf(t)
	j := startAggregator(t, c, 2, func(o *aggregator.Options) { o.HeartbeatInterval = 20 * time.Millisecond })
	s, _ := rawSession(t, j, helloFor(t, j.conf, 1))
	if m, err := s.Recv(); err != nil || m.GetWelcome() == nil {
		t.Fatalf("first message %v, %v; want Welcome", m, err)
	}
	if err := s.Send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_Heartbeat{Heartbeat: &pb.Heartbeat{Seq: 7}}}); err != nil {
		t.Fatal(err)
	}
	// Recv has no deadline of its own: the job's ExecutorWait ends the
	// stream if no ack ever comes.
	for {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("no HeartbeatAck carrying seq 7: %v", err)
		}
		if a := m.GetHeartbeatAck(); a != nil && a.GetSeq() == 7 {
			return
		}
	}
}

// A connection that never says Hello is closed after HelloTimeout, so such
// connections cannot pile up.
func TestSilentConnectionClosed(t *testing.T) {
	c := baseConf(t)
	j := startAggregator(t, c, 1, func(o *aggregator.Options) { o.HelloTimeout = 200 * time.Millisecond })
	conn, err := grpc.NewClient(j.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := pb.NewAggregatorClient(conn).Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Recv()
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "no Hello within 200ms") {
		t.Fatalf("Recv = %v, want the aggregator to end the stream for want of a Hello", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %s", d)
	}
}
