package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcinsecure "google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/fedscale/fedscale-go/runtime/jobtest"
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/mtls"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// The hostile-peer suite runs the real binaries over real sockets against
// peers that break the protocol on purpose: a hostile executor (a gRPC
// client with the job's certificates where the attack needs them) against
// the aggregator, and a hostile aggregator (a gRPC server holding the
// aggregator's certificate) that the executor connects to. Each row names
// one attack and its expected outcome; every row also checks that nothing
// panicked and nothing hung, and on the aggregator's side that the honest
// executors still finish the job.

// hostileHelloTimeout is the aggregator's --hello-timeout in the suite:
// short, so the rows about silent connections take seconds.
const hostileHelloTimeout = 2 * time.Second

// hostileSuite is what every row shares: the binaries, a data set, the
// job file, the job's TLS folder (certificates for ranks 1..3 of a job of
// 2 executors) and another CA's, the Hello a real executor sends, and the
// tally the summary line prints.
type hostileSuite struct {
	bin, conf      string
	tlsDir, other  string
	hello          *pb.Hello
	layout         tensor.List
	mu             sync.Mutex
	tried, handled int
	panics, hangs  int
}

// proc is a real binary started by a row, its stderr readable while it runs.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (s *hostileSuite) start(ctx context.Context, t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	// A hung process dumps its goroutines on the way out.
	p.cmd.Cancel = func() error { return p.cmd.Process.Signal(syscall.SIGQUIT) }
	p.cmd.WaitDelay = 10 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	return p
}

// outcome is how a process ended: its exit code, or hung when the row's
// context ran out first (the process is then killed).
type outcome struct {
	code int
	hung bool
}

func (p *proc) wait(ctx context.Context) outcome {
	select {
	case <-p.done:
	case <-ctx.Done():
		<-p.done // CommandContext kills it
		return outcome{code: -1, hung: true}
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return outcome{code: ee.ExitCode()}
	}
	if p.err != nil {
		return outcome{code: -1}
	}
	return outcome{}
}

// panicked reports a Go panic or fatal error in the output of a process
// that was not hung (a hung one dumps its goroutines when killed).
func panicked(out string, o outcome) bool {
	return !o.hung && (strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") || strings.Contains(out, "fatal error:"))
}

// record counts a finished row: handled when it ended as expected.
func (s *hostileSuite) record(t *testing.T, panics, hung bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tried++
	if panics {
		s.panics++
	}
	if hung {
		s.hangs++
	}
	if !t.Failed() {
		s.handled++
	}
}

// ---- the hostile executor's side: the real aggregator ----

// aggRun is one row's aggregator, its address and its honest executors.
type aggRun struct {
	s      *hostileSuite
	t      *testing.T
	ctx    context.Context
	addr   string
	agg    *proc
	honest map[int]*proc
	// hostile are the participants a row started; each ends with the
	// aggregator at the latest.
	hostile sync.WaitGroup
}

// join starts a hostile participant as rank (see participant).
func (r *aggRun) join(rank int32, answer func(m *pb.AggregatorMessage, model tensor.List) []*pb.ExecutorMessage) {
	r.hostile.Add(1)
	go func() {
		defer r.hostile.Done()
		err := r.participant(rank, answer)
		r.t.Logf("hostile executor %d: %v", rank, err)
	}()
}

// startHonest starts the job's real executors of the ranks given (all
// when none), each once.
func (r *aggRun) startHonest(ranks ...int) {
	if len(ranks) == 0 {
		ranks = []int{1, 2}
	}
	port := r.addr[strings.LastIndexByte(r.addr, ':')+1:]
	for _, rank := range ranks {
		if r.honest[rank] != nil {
			continue
		}
		r.honest[rank] = r.s.start(r.ctx, r.t, "executor", "--config", r.s.conf, "--rank", fmt.Sprint(rank),
			"--ps-port", port, "--http-port", "0", "--tls-dir", r.s.tlsDir)
	}
}

// waitLog waits for the aggregator to print want.
func (r *aggRun) waitLog(want string) error {
	for !strings.Contains(r.agg.out.String(), want) {
		select {
		case <-r.ctx.Done():
			return fmt.Errorf("the aggregator never logged %q", want)
		case <-r.agg.done:
			if strings.Contains(r.agg.out.String(), want) {
				return nil
			}
			return fmt.Errorf("the aggregator exited before logging %q", want)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// waitHonestLog waits for honest executor rank to print want.
func (r *aggRun) waitHonestLog(rank int, want string) error {
	e := r.honest[rank]
	for !strings.Contains(e.out.String(), want) {
		select {
		case <-r.ctx.Done():
			return fmt.Errorf("executor %d never printed %q", rank, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// tlsAs is a client TLS configuration presenting name's certificate of
// dir ("" for none).
func (r *aggRun) tlsAs(dir, name string) *tls.Config {
	cfg := clientTLS(r.t, dir, "executor-1")
	cfg.Certificates = nil
	if name != "" {
		cfg.Certificates = clientTLS(r.t, dir, name).Certificates
	}
	return cfg
}

// exchange opens one session with creds (nil: plain text), sends msgs and
// returns the status the stream ends with (OK if it is still open after
// linger).
func (r *aggRun) exchange(creds credentials.TransportCredentials, linger time.Duration, msgs ...*pb.ExecutorMessage) error {
	if creds == nil {
		creds = grpcinsecure.NewCredentials()
	}
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20), grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(r.ctx, linger+20*time.Second)
	defer cancel()
	stream, err := pb.NewAggregatorClient(conn).Session(ctx)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			break // the status comes from Recv
		}
	}
	got := make(chan error, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				got <- err
				return
			}
		}
	}()
	if linger == 0 {
		return <-got // bounded by ctx
	}
	select {
	case err := <-got:
		return err
	case <-time.After(linger):
		_ = stream.CloseSend()
		return nil
	}
}

// wantStatus checks a session's end against a code and message fragment.
func wantStatus(err error, code codes.Code, msg string) error {
	st := status.Convert(err)
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		return fmt.Errorf("got %v %q, want %v containing %q", st.Code(), st.Message(), code, msg)
	}
	return nil
}

func helloMsg(h *pb.Hello) *pb.ExecutorMessage {
	return &pb.ExecutorMessage{Body: &pb.ExecutorMessage_Hello{Hello: h}}
}

// helloAs is a real executor's Hello, changed by edit.
func (s *hostileSuite) helloAs(rank int32, edit func(*pb.Hello)) *pb.ExecutorMessage {
	h := cloneHello(s.hello)
	h.Rank, h.Incarnation = rank, "hostile"
	if edit != nil {
		edit(h)
	}
	return helloMsg(h)
}

func cloneHello(h *pb.Hello) *pb.Hello { return proto.Clone(h).(*pb.Hello) }

// openFiles counts a process's open file descriptors.
func openFiles(pid int) int {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(fds)
}

// silentConns dials n TCP connections to addr that never send a byte, at
// most 256 dials at a time, and returns those that connected.
func silentConns(ctx context.Context, addr string, n int) []net.Conn {
	var mu sync.Mutex
	var conns []net.Conn
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d := net.Dialer{Timeout: 3 * time.Second}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// participant is a hostile executor that joins the job as rank with a
// real executor's data: it keeps the model the aggregator sends, beats
// its heart, and answers each task with what answer returns (nothing: it
// sits on the task). It runs until the aggregator ends its session, whose
// status it returns.
func (r *aggRun) participant(rank int32, answer func(m *pb.AggregatorMessage, model tensor.List) []*pb.ExecutorMessage) error {
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(r.creds(int(rank))),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(pb.MaxMessageBytes)))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	stream, err := pb.NewAggregatorClient(conn).Session(ctx)
	if err != nil {
		return err
	}
	var mu sync.Mutex // Send is not safe for concurrent use
	send := func(m *pb.ExecutorMessage) error {
		mu.Lock()
		defer mu.Unlock()
		return stream.Send(m)
	}
	if err := send(r.s.helloAs(rank, nil)); err != nil {
		return err
	}
	go func() {
		for seq := int64(1); ctx.Err() == nil; seq++ {
			_ = send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_Heartbeat{Heartbeat: &pb.Heartbeat{Seq: seq}}})
			time.Sleep(200 * time.Millisecond)
		}
	}()
	var model tensor.List
	var asm *pb.Assembly
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		switch b := m.GetBody().(type) {
		case *pb.AggregatorMessage_Model:
			l, err := pb.ToLayout(b.Model.GetTensors())
			if err != nil {
				return err
			}
			asm = pb.NewAssembly(l.ZerosLike())
		case *pb.AggregatorMessage_ModelChunk:
			if err := asm.Add(b.ModelChunk.GetOffset(), b.ModelChunk.GetData()); err != nil {
				return err
			}
			if asm.Complete() {
				model = asm.List()
			}
		case *pb.AggregatorMessage_Shutdown:
			mu.Lock()
			_ = stream.CloseSend()
			mu.Unlock()
		case *pb.AggregatorMessage_Train, *pb.AggregatorMessage_Eval:
			for _, out := range answer(m, model) {
				if err := send(out); err != nil {
					return err
				}
			}
		}
	}
}

// update is a task's honest-looking answer: for an evaluation, no hits;
// for training, the model's values (edited by values, when given) in
// chunks, then the result with the client's true sample count, edited by
// result.
func (s *hostileSuite) update(m *pb.AggregatorMessage, model tensor.List, values func([]*pb.ExecutorMessage) []*pb.ExecutorMessage, result func(*pb.TrainResult)) []*pb.ExecutorMessage {
	if e := m.GetEval(); e != nil {
		n := e.GetEnd() - e.GetStart()
		return []*pb.ExecutorMessage{{Body: &pb.ExecutorMessage_EvalResult{EvalResult: &pb.EvalResult{
			Round: e.GetRound(), TaskId: e.GetTaskId(), Shard: e.GetShard(), LossSum: float64(n), Count: n}}}}
	}
	t := m.GetTrain()
	var out []*pb.ExecutorMessage
	_ = pb.Chunks(model, func(off int64, d []float32) error {
		out = append(out, &pb.ExecutorMessage{Body: &pb.ExecutorMessage_UpdateChunk{UpdateChunk: &pb.UpdateChunk{TaskId: t.GetTaskId(), Offset: off, Data: d}}})
		return nil
	})
	if values != nil {
		out = values(out)
	}
	var samples int64
	if c, all := t.GetClientId(), s.hello.GetData().GetClientSamples(); c >= 0 && c < int64(len(all)) {
		samples = all[c]
	}
	res := &pb.TrainResult{Round: t.GetRound(), TaskId: t.GetTaskId(), ClientId: t.GetClientId(), MovingLoss: 0.5, MeanLoss: 0.5, NumSamples: samples}
	if result != nil {
		result(res)
	}
	return append(out, &pb.ExecutorMessage{Body: &pb.ExecutorMessage_TrainResult{TrainResult: res}})
}

// aggAttack is one attack on the real aggregator. attack returns an error
// when the aggregator answered otherwise than expected; log is a line the
// aggregator must print. After the attack the honest executors run the
// job (those attack did not start), which must complete.
type aggAttack struct {
	name   string
	flags  []string
	honest []int // the ranks of the honest executors (default 1 and 2)
	attack func(r *aggRun) error
	log    string
}

func (s *hostileSuite) aggAttacks() []aggAttack {
	job := DefaultMaxConnections(2)
	return []aggAttack{
		{name: "no client certificate", attack: func(r *aggRun) error {
			return wantStatus(r.exchange(credentials.NewTLS(r.tlsAs(r.s.tlsDir, "")), 0, s.helloAs(1, nil)), codes.Unavailable, "")
		}},
		{name: "plain text", attack: func(r *aggRun) error {
			return wantStatus(r.exchange(nil, 0, s.helloAs(1, nil)), codes.Unavailable, "")
		}},
		{name: "another CA's certificate", attack: func(r *aggRun) error {
			return wantStatus(r.exchange(credentials.NewTLS(r.tlsAs(r.s.other, "executor-1")), 0, s.helloAs(1, nil)), codes.Unavailable, "")
		}},
		{name: "rank impersonation", log: "Refused a Hello for executor 2 from the holder of rank 1's certificate", attack: func(r *aggRun) error {
			return wantStatus(r.exchange(r.creds(1), 0, s.helloAs(2, nil)), codes.PermissionDenied, "issued to rank 1, not 2")
		}},
		{name: "Hello without protocol version", attack: func(r *aggRun) error {
			return wantStatus(r.exchange(r.creds(1), 0, s.helloAs(1, func(h *pb.Hello) { h.ProtocolVersion = 0 })),
				codes.FailedPrecondition, "protocol version 0")
		}},
		{name: "first message not Hello", attack: func(r *aggRun) error {
			hb := &pb.ExecutorMessage{Body: &pb.ExecutorMessage_Heartbeat{Heartbeat: &pb.Heartbeat{Seq: 1}}}
			return wantStatus(r.exchange(r.creds(1), 0, hb), codes.InvalidArgument, "must be Hello")
		}},
		{name: "rank outside the job", attack: func(r *aggRun) error {
			return wantStatus(r.exchange(r.creds(3), 0, s.helloAs(3, nil)), codes.FailedPrecondition, "outside 1..2")
		}},
		{name: "another job's name", attack: func(r *aggRun) error {
			return wantStatus(r.exchange(r.creds(1), 0, s.helloAs(1, func(h *pb.Hello) { h.JobName = "other" })),
				codes.FailedPrecondition, `belongs to job "other"`)
		}},
		{name: "Hello without data", attack: func(r *aggRun) error {
			return wantStatus(r.exchange(r.creds(1), 0, s.helloAs(1, func(h *pb.Hello) { h.Data = nil })),
				codes.FailedPrecondition, "no training clients")
		}},
		{name: "every rank lies about the data", log: "The job's data is data_dir", attack: func(r *aggRun) error {
			// Both ranks of the job claim the same other data at once: a
			// majority, were the aggregator to count heads. It reads
			// data_dir itself, so neither is admitted.
			lie := func(h *pb.Hello) { h.Data.TestSamples, h.Data.Fingerprint = 7, strings.Repeat("0", 64) }
			errs := make(chan error, 2)
			for rank := int32(1); rank <= 2; rank++ {
				go func() {
					errs <- wantStatus(r.exchange(r.creds(int(rank)), 2*time.Second, s.helloAs(rank, lie)),
						codes.FailedPrecondition, "than the job's (20 clients, 100 test samples")
				}()
			}
			return errors.Join(<-errs, <-errs)
		}},
		// A long --hello-timeout: on a loaded machine, making and sending
		// 16 MiB took the client longer than the suite's 2 s, and the row
		// is about the size, not the time.
		withFlags(aggAttack{name: "oversized message", attack: func(r *aggRun) error {
			big := s.helloAs(1, func(h *pb.Hello) { h.Data.ClientSamples = make([]int64, pb.MaxMessageBytes) })
			return wantStatus(r.exchange(r.creds(1), 0, big), codes.ResourceExhausted, "larger than max")
		}}, "--hello-timeout", "1m"),
		{name: "session without Hello", attack: func(r *aggRun) error {
			return wantStatus(r.exchange(r.creds(1), 2*hostileHelloTimeout), codes.DeadlineExceeded, "no Hello within")
		}},
		{name: "second Hello on one session", log: "Executor 1 sent a second Hello on one session; ignored", attack: func(r *aggRun) error {
			// Registered as rank 1 with its real data, the second Hello is
			// ignored; the session stays open until it hangs up, and the
			// job (waiting for executor 2) starts with the honest ones.
			return r.exchange(r.creds(1), time.Second, s.helloAs(1, nil), s.helloAs(1, nil))
		}},
		{name: "Hello for a live rank", log: "Executor 1 rejoined (incarnation hostile", attack: func(r *aggRun) error {
			r.startHonest(1) // the job waits for executor 2
			if err := r.waitLog("Executor 1 registered"); err != nil {
				return err
			}
			// A second holder of rank 1's certificate takes its place; the
			// real executor 1 reconnects and takes it back.
			err := r.exchange(r.creds(1), 30*time.Second, s.helloAs(1, nil))
			if err := wantStatus(err, codes.Aborted, "replaced by a new connection"); err != nil {
				return err
			}
			return r.waitHonestLog(1, "replaced by a new connection (incarnation hostile); reconnecting")
		}},
		// A participant holding rank 2's certificate and the job's data
		// answers its tasks badly; executor 1 alone must finish the job.
		s.badParticipant("malformed update", "chunks arrive in order", func(m *pb.AggregatorMessage, l tensor.List) []*pb.ExecutorMessage {
			return s.update(m, l, func(out []*pb.ExecutorMessage) []*pb.ExecutorMessage {
				out[0].GetUpdateChunk().Offset = 1 // out of order
				return out
			}, nil)
		}),
		s.badParticipant("update short of the model", "values arrived", func(m *pb.AggregatorMessage, l tensor.List) []*pb.ExecutorMessage {
			return s.update(m, l, func(out []*pb.ExecutorMessage) []*pb.ExecutorMessage {
				c := out[len(out)-1].GetUpdateChunk()
				c.Data = c.Data[:len(c.Data)-1]
				return out
			}, nil)
		}),
		s.badParticipant("num_samples lie", "claimed 1000000000 training samples", func(m *pb.AggregatorMessage, l tensor.List) []*pb.ExecutorMessage {
			return s.update(m, l, nil, func(r *pb.TrainResult) { r.NumSamples = 1e9 })
		}),
		s.badParticipant("negative loss", "negative training loss", func(m *pb.AggregatorMessage, l tensor.List) []*pb.ExecutorMessage {
			return s.update(m, l, nil, func(r *pb.TrainResult) { r.MovingLoss = -1 })
		}),
		s.badParticipant("top-1 above the sample count", "top-1", func(m *pb.AggregatorMessage, l tensor.List) []*pb.ExecutorMessage {
			if e := m.GetEval(); e != nil {
				n := e.GetEnd() - e.GetStart()
				return []*pb.ExecutorMessage{{Body: &pb.ExecutorMessage_EvalResult{EvalResult: &pb.EvalResult{
					Round: e.GetRound(), TaskId: e.GetTaskId(), Shard: e.GetShard(), LossSum: 1, Top1: n + 1, Top5: n + 1, Count: n}}}}
			}
			return s.update(m, l, nil, nil)
		}),
		s.badParticipant("task failures", "failed", func(m *pb.AggregatorMessage, _ tensor.List) []*pb.ExecutorMessage {
			round, id := m.GetTrain().GetRound(), m.GetTrain().GetTaskId()
			if e := m.GetEval(); e != nil {
				round, id = e.GetRound(), e.GetTaskId()
			}
			return []*pb.ExecutorMessage{{Body: &pb.ExecutorMessage_TaskFailure{TaskFailure: &pb.TaskFailure{Round: round, TaskId: id, Error: "hostile"}}}}
		}),
		{name: "NaN losses", honest: []int{1}, log: "training loss NaN); its update is left out", attack: func(r *aggRun) error {
			// Not refused (honest training diverges too): left out of the
			// model and the metrics, round after round.
			r.join(2, func(m *pb.AggregatorMessage, l tensor.List) []*pb.ExecutorMessage {
				return s.update(m, l, nil, func(r *pb.TrainResult) { r.MovingLoss, r.MeanLoss = math.NaN(), math.NaN() })
			})
			if err := r.waitLog("Executor 2 registered"); err != nil {
				return err
			}
			r.startHonest(1)
			return nil
		}},
		withFlags(s.badParticipant("stuck executor", "stuck", func(*pb.AggregatorMessage, tensor.List) []*pb.ExecutorMessage { return nil }),
			"--task-timeout", "1s"),
		{name: "silent connections over the limit", attack: func(r *aggRun) error {
			// Twice the limit, held open the whole job: the handshake
			// timeout frees their slots and the executors get in.
			conns := silentConns(r.ctx, r.addr, 2*job)
			defer closeAll(conns)
			if len(conns) < job {
				return fmt.Errorf("only %d of %d silent connections connected", len(conns), 2*job)
			}
			r.startHonest()
			return r.waitLog("FL Testing in round: 2,")
		}},
		{name: "idle HTTP/2 connection", attack: func(r *aggRun) error {
			return idleHTTP2(r, 2*hostileHelloTimeout+5*time.Second)
		}},
		{name: "streams on one connection", attack: func(r *aggRun) error {
			return manyStreams(r, 200)
		}},
		{name: "thousands of connections", attack: func(r *aggRun) error {
			pid := r.agg.cmd.Process.Pid
			base := openFiles(pid)
			peak := base
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					peak = max(peak, openFiles(pid))
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}()
			conns := silentConns(r.ctx, r.addr, 5000)
			time.Sleep(hostileHelloTimeout) // let the aggregator cycle through some
			close(stop)
			wg.Wait()
			closeAll(conns)
			r.t.Logf("5000 connections dialled, %d connected; aggregator file descriptors: %d before, %d at most (limit %d)", len(conns), base, peak, job)
			if len(conns) < 2*job {
				return fmt.Errorf("only %d connections connected: the limit was not exercised", len(conns))
			}
			if peak > base+job+8 {
				return fmt.Errorf("the aggregator held %d file descriptors under %d connections (%d before, limit %d)", peak, len(conns), base, job)
			}
			return nil
		}},
	}
}

// badParticipant is the row of a participant (rank 2) that answers its
// tasks with answer; the aggregator must log why it refused the answers
// (want) and evict it, and executor 1 finish the job alone.
func (s *hostileSuite) badParticipant(name, want string, answer func(*pb.AggregatorMessage, tensor.List) []*pb.ExecutorMessage) aggAttack {
	return aggAttack{name: name, honest: []int{1}, log: "Evicted executor 2", attack: func(r *aggRun) error {
		r.join(2, answer)
		if err := r.waitLog("Executor 2 registered"); err != nil {
			return err
		}
		r.startHonest(1)
		if err := r.waitLog("Evicted executor 2"); err != nil {
			return err
		}
		if out := r.agg.out.String(); !strings.Contains(out, want) {
			return fmt.Errorf("the aggregator did not say %q", want)
		}
		return nil
	}}
}

func withFlags(a aggAttack, flags ...string) aggAttack {
	a.flags = append(a.flags, flags...)
	return a
}

// creds are rank's certificate of the job.
func (r *aggRun) creds(rank int) credentials.TransportCredentials {
	return credentials.NewTLS(r.tlsAs(r.s.tlsDir, mtls.ProcessName(rank)))
}

// idleHTTP2 completes the TLS handshake with executor 1's certificate and
// HTTP/2's preface, answers pings, never opens a stream, and expects the
// aggregator to close the connection within limit.
func idleHTTP2(r *aggRun, limit time.Duration) error {
	cfg := r.tlsAs(r.s.tlsDir, "executor-1")
	cfg.NextProtos = []string{"h2"}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", r.addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(start.Add(limit + 10*time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return err
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	goaway := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			took := time.Since(start)
			switch {
			case !goaway:
				return fmt.Errorf("connection ended after %s without GOAWAY: %v", took, err)
			case took > limit:
				return fmt.Errorf("idle connection closed after %s, want within %s", took, limit)
			}
			return nil
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = fr.WritePing(true, f.Data)
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			goaway = true
		}
	}
}

// manyStreams opens n sessions at once on one connection, none saying
// Hello. The aggregator serves maxStreamsPerConn of them at a time, so in
// one Hello timeout and a half at most two rounds of them are answered.
func manyStreams(r *aggRun, n int) error {
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(r.creds(1)))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(r.ctx, hostileHelloTimeout*3/2)
	defer cancel()
	var mu sync.Mutex
	answered := 0
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream, err := pb.NewAggregatorClient(conn).Session(ctx)
			if err != nil {
				return
			}
			if _, err := stream.Recv(); status.Code(err) == codes.DeadlineExceeded && strings.Contains(status.Convert(err).Message(), "no Hello within") {
				mu.Lock()
				answered++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if answered > 2*maxStreamsPerConn {
		return fmt.Errorf("%d of %d sessions on one connection were served at once, want at most %d", answered, n, 2*maxStreamsPerConn)
	}
	r.t.Logf("%d sessions opened on one connection: %d served within %s", n, answered, hostileHelloTimeout*3/2)
	return nil
}

func (s *hostileSuite) runAggAttack(t *testing.T, a aggAttack) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	port := fmt.Sprint(freePort(t))
	r := &aggRun{s: s, t: t, ctx: ctx, addr: "127.0.0.1:" + port, honest: map[int]*proc{}}
	args := append([]string{"--config", s.conf, "--ps-port", port, "--http-port", "0", "--tls-dir", s.tlsDir, "--no-resume",
		"--time-stamp", strings.NewReplacer(" ", "-", "/", "-").Replace(a.name), "--hello-timeout", hostileHelloTimeout.String(), "--executor-timeout", "3s"}, a.flags...)
	r.agg = s.start(ctx, t, "aggregator", args...)
	if err := waitPort(ctx, r.addr, r.agg); err != nil {
		t.Fatal(err)
	}
	if err := a.attack(r); err != nil {
		t.Errorf("%s: %v", a.name, err)
	}
	r.startHonest(a.honest...)
	got := r.agg.wait(ctx)
	r.hostile.Wait()
	hung, panics := got.hung, panicked(r.agg.out.String(), got)
	if got.code != 0 {
		t.Errorf("aggregator: exit %d (hung: %v), want 0: the honest executors must finish the job\n%s", got.code, got.hung, r.agg.out.String())
	}
	for _, e := range r.honest {
		o := e.wait(ctx)
		hung = hung || o.hung
		panics = panics || panicked(e.out.String(), o)
		if o.code != 0 && !strings.Contains(e.out.String(), "the job has finished") {
			t.Errorf("honest executor: exit %d (hung: %v)\n%s", o.code, o.hung, e.out.String())
		}
	}
	out := r.agg.out.String()
	if !strings.Contains(out, "FL Testing in round: 2,") {
		t.Errorf("the job did not finish:\n%s", out)
	}
	if a.log != "" && !strings.Contains(out, a.log) {
		t.Errorf("the aggregator did not log %q:\n%s", a.log, out)
	}
	if panics {
		t.Errorf("a process panicked:\n%s", out)
	}
	s.record(t, panics, hung)
}

// waitPort waits until p listens on addr.
func waitPort(ctx context.Context, addr string, p *proc) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing listens on %s: %v", addr, err)
		case <-p.done:
			return fmt.Errorf("%s exited before listening on %s:\n%s", p.name, addr, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ---- the hostile aggregator's side: the real executor ----

// hostileAggregator is a gRPC server that reads an executor's Hello and
// then hands the stream to serve.
type hostileAggregator struct {
	pb.UnimplementedAggregatorServer
	serve func(h *pb.Hello, stream pb.Aggregator_SessionServer) error
	hello chan *pb.Hello
}

func (a *hostileAggregator) Session(stream pb.Aggregator_SessionServer) error {
	m, err := stream.Recv()
	if err != nil {
		return err
	}
	select {
	case a.hello <- m.GetHello():
	default:
	}
	return a.serve(m.GetHello(), stream)
}

// execAttack is one attack on the real executor: the hostile aggregator
// (the job's aggregator certificate unless creds says otherwise) answers
// its Hello with serve; the executor must exit with code and print want.
type execAttack struct {
	name  string
	creds func(s *hostileSuite) credentials.TransportCredentials
	serve func(s *hostileSuite, h *pb.Hello, stream pb.Aggregator_SessionServer) error
	code  int
	want  string
}

// welcome is what the real aggregator answers this job's executors.
func welcome(edit func(w *pb.Welcome)) *pb.AggregatorMessage {
	w := &pb.Welcome{ProtocolVersion: pb.ProtocolVersion, JobName: "processes", TimeStamp: "hostile", HeartbeatIntervalMs: 1000,
		Training: &pb.TrainingConfig{Model: "logistic", BatchSize: 10, LocalSteps: 5, Momentum: 0.9, TestBsz: 20, Classes: 4}}
	if edit != nil {
		edit(w)
	}
	return &pb.AggregatorMessage{Body: &pb.AggregatorMessage_Welcome{Welcome: w}}
}

// sendAll sends msgs, then waits for the executor to hang up.
func sendAll(stream pb.Aggregator_SessionServer, msgs ...*pb.AggregatorMessage) error {
	for _, m := range msgs {
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

// welcomed sends a good Welcome, then msgs.
func welcomed(msgs ...*pb.AggregatorMessage) func(*hostileSuite, *pb.Hello, pb.Aggregator_SessionServer) error {
	return func(_ *hostileSuite, _ *pb.Hello, stream pb.Aggregator_SessionServer) error {
		return sendAll(stream, append([]*pb.AggregatorMessage{welcome(nil)}, msgs...)...)
	}
}

func announce(v int64, ts []*pb.Tensor) *pb.AggregatorMessage {
	return &pb.AggregatorMessage{Body: &pb.AggregatorMessage_Model{Model: &pb.Model{Version: v, Tensors: ts}}}
}

func modelChunk(v, off int64, data []float32) *pb.AggregatorMessage {
	return &pb.AggregatorMessage{Body: &pb.AggregatorMessage_ModelChunk{ModelChunk: &pb.ModelChunk{Version: v, Offset: off, Data: data}}}
}

// editLayout is the executor's model layout with edit applied to a copy.
func (s *hostileSuite) editLayout(edit func(ts []*pb.Tensor) []*pb.Tensor) []*pb.Tensor {
	ts := pb.Layout(s.layout)
	for i, t := range ts {
		c := &pb.Tensor{Name: t.GetName(), Shape: append([]int64(nil), t.GetShape()...)}
		ts[i] = c
	}
	if edit != nil {
		ts = edit(ts)
	}
	return ts
}

// modelValues is the number of values of the executor's model.
func (s *hostileSuite) modelValues() int64 {
	var n int64
	for _, t := range s.layout {
		n += int64(tensor.Size(t.Shape))
	}
	return n
}

func (s *hostileSuite) execAttacks() []execAttack {
	badWelcome := func(edit func(w *pb.Welcome)) func(*hostileSuite, *pb.Hello, pb.Aggregator_SessionServer) error {
		return func(_ *hostileSuite, _ *pb.Hello, stream pb.Aggregator_SessionServer) error {
			return sendAll(stream, welcome(edit))
		}
	}
	withModel := func(msgs ...func(s *hostileSuite) *pb.AggregatorMessage) func(*hostileSuite, *pb.Hello, pb.Aggregator_SessionServer) error {
		return func(s *hostileSuite, _ *pb.Hello, stream pb.Aggregator_SessionServer) error {
			out := []*pb.AggregatorMessage{welcome(nil)}
			for _, m := range msgs {
				out = append(out, m(s))
			}
			return sendAll(stream, out...)
		}
	}
	good := func(s *hostileSuite) *pb.AggregatorMessage { return announce(1, s.editLayout(nil)) }
	return []execAttack{
		{name: "negative batch size", serve: badWelcome(func(w *pb.Welcome) { w.Training.BatchSize = -1 }), code: 1, want: "batch_size"},
		{name: "time stamp ../../x", serve: badWelcome(func(w *pb.Welcome) { w.TimeStamp = "../../x" }), code: 1, want: "job_conf.time_stamp must not contain path separators"},
		{name: "huge local steps", serve: badWelcome(func(w *pb.Welcome) { w.Training.LocalSteps = 1 << 30 }), code: 1, want: "local_steps"},
		{name: "zero heartbeat interval", serve: badWelcome(func(w *pb.Welcome) { w.HeartbeatIntervalMs = 0 }), code: 1, want: "heartbeat interval"},
		{name: "welcome without training settings", serve: badWelcome(func(w *pb.Welcome) { w.Training = nil }), code: 1, want: "no training settings"},
		{name: "unknown model", serve: badWelcome(func(w *pb.Welcome) { w.Training.Model = "resnet9000" }), code: 1, want: "resnet9000"},
		{name: "model before welcome", serve: func(s *hostileSuite, _ *pb.Hello, stream pb.Aggregator_SessionServer) error {
			return sendAll(stream, announce(1, s.editLayout(nil)))
		}, code: 1, want: "did not answer Hello with Welcome"},
		{name: "layout of another model", serve: withModel(func(s *hostileSuite) *pb.AggregatorMessage {
			return announce(1, s.editLayout(func(ts []*pb.Tensor) []*pb.Tensor { ts[0].Shape[0]++; return ts }))
		}), code: 1, want: "is not logistic as this executor builds it"},
		{name: "layout with an extra tensor", serve: withModel(func(s *hostileSuite) *pb.AggregatorMessage {
			return announce(1, s.editLayout(func(ts []*pb.Tensor) []*pb.Tensor {
				return append(ts, &pb.Tensor{Name: "extra", Shape: []int64{1 << 30}})
			}))
		}), code: 1, want: "is not logistic as this executor builds it"},
		{name: "layout with a negative dimension", serve: withModel(func(s *hostileSuite) *pb.AggregatorMessage {
			return announce(1, s.editLayout(func(ts []*pb.Tensor) []*pb.Tensor { ts[0].Shape[0] = -4; return ts }))
		}), code: 1, want: "invalid dimension -4"},
		{name: "layout with values", serve: withModel(func(s *hostileSuite) *pb.AggregatorMessage {
			return announce(1, s.editLayout(func(ts []*pb.Tensor) []*pb.Tensor { ts[0].Data = []float32{1}; return ts }))
		}), code: 1, want: "carries no values"},
		{name: "chunks out of order", serve: withModel(good, func(*hostileSuite) *pb.AggregatorMessage { return modelChunk(1, 7, []float32{1, 2}) }),
			code: 1, want: "chunk at value 7, expected 0 (chunks arrive in order)"},
		{name: "chunk beyond the model", serve: withModel(good, func(s *hostileSuite) *pb.AggregatorMessage {
			return modelChunk(1, 0, make([]float32, s.modelValues()+1))
		}), code: 1, want: "overruns the model"},
		{name: "oversized chunk", serve: withModel(good, func(*hostileSuite) *pb.AggregatorMessage {
			return modelChunk(1, 0, make([]float32, pb.ChunkValues+1))
		}), code: 1, want: fmt.Sprintf("the most is %d", pb.ChunkValues)},
		{name: "chunk of a version never announced", serve: withModel(good, func(*hostileSuite) *pb.AggregatorMessage { return modelChunk(9, 0, []float32{1}) }),
			code: 1, want: "values for a version that was not announced"},
		{name: "announcement during another", serve: withModel(good, good), code: 1, want: "announced while version 1 was still arriving"},
		{name: "oversized message", serve: badWelcome(func(w *pb.Welcome) { w.JobName = strings.Repeat("x", pb.MaxMessageBytes) }),
			code: 1, want: "the aggregator sent a message over the 16777216-byte limit"},
		{name: "silent aggregator", serve: func(_ *hostileSuite, _ *pb.Hello, stream pb.Aggregator_SessionServer) error {
			<-stream.Context().Done()
			return nil
		}, code: 1, want: "unreachable for 3s"},
		// Welcomed, then nothing: the executor drops the connection after
		// pb.SilenceLimit of its 100 ms heartbeats and, having heard
		// nothing since the Welcome, gives up rather than loop.
		{name: "welcome, then silence", serve: badWelcome(func(w *pb.Welcome) { w.HeartbeatIntervalMs = 100 }), code: 1,
			want: "then sent nothing for " + pb.SilenceLimit(100*time.Millisecond).String()},
		{name: "welcome, then stops reading", serve: func(_ *hostileSuite, _ *pb.Hello, stream pb.Aggregator_SessionServer) error {
			if err := stream.Send(welcome(func(w *pb.Welcome) { w.HeartbeatIntervalMs = 100 })); err != nil {
				return err
			}
			<-stream.Context().Done()
			return nil
		}, code: 1, want: "then sent nothing for " + pb.SilenceLimit(100*time.Millisecond).String()},
		{name: "bad tasks", serve: badTasks, code: 0, want: "Aggregator finished the job: hostile"},
		{name: "another CA's server certificate", creds: func(s *hostileSuite) credentials.TransportCredentials {
			return serverCreds(s.other, "aggregator")
		}, serve: welcomed(), code: 1, want: "certificate signed by unknown authority"},
		{name: "an executor's certificate as server", creds: func(s *hostileSuite) credentials.TransportCredentials {
			return serverCreds(s.tlsDir, "executor-2")
		}, serve: welcomed(), code: 1, want: "unreachable for 3s"},
		{name: "plain-text aggregator", creds: func(*hostileSuite) credentials.TransportCredentials { return grpcinsecure.NewCredentials() },
			serve: welcomed(), code: 1, want: "unreachable for 3s"},
	}
}

// badTasks sends a good model, then tasks no executor can run: a
// client that does not exist, a model version never sent, a test shard
// outside the test set. Each must come back as a TaskFailure naming the
// problem, with the executor still serving; then the job ends.
func badTasks(s *hostileSuite, _ *pb.Hello, stream pb.Aggregator_SessionServer) error {
	msgs := []*pb.AggregatorMessage{welcome(nil), announce(1, s.editLayout(nil))}
	if err := pb.Chunks(s.layout.ZerosLike(), func(off int64, d []float32) error {
		msgs = append(msgs, modelChunk(1, off, d))
		return nil
	}); err != nil {
		return err
	}
	train := func(id, client, v int64) *pb.AggregatorMessage {
		return &pb.AggregatorMessage{Body: &pb.AggregatorMessage_Train{Train: &pb.TrainTask{Round: 1, TaskId: id, ClientId: client, ModelVersion: v, LearningRate: 0.05}}}
	}
	eval := &pb.AggregatorMessage{Body: &pb.AggregatorMessage_Eval{Eval: &pb.EvalTask{Round: 1, TaskId: 3, ModelVersion: 1, Start: 0, End: 1 << 40}}}
	msgs = append(msgs, train(1, -5, 1), train(2, 0, 7), eval)
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	want := map[int64]string{1: "client -5 does not exist", 2: "model version 7 was never received", 3: "outside the"}
	for len(want) > 0 {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		if f := m.GetTaskFailure(); f != nil {
			if !strings.Contains(f.GetError(), want[f.GetTaskId()]) {
				return status.Errorf(codes.Internal, "task %d failed with %q, want %q", f.GetTaskId(), f.GetError(), want[f.GetTaskId()])
			}
			delete(want, f.GetTaskId())
		}
	}
	return sendAll(stream, &pb.AggregatorMessage{Body: &pb.AggregatorMessage_Shutdown{Shutdown: &pb.Shutdown{Reason: "hostile", JobDone: true}}})
}

// serverCreds are TLS server credentials from name's files in dir,
// without the checks mtls makes, so a test can serve any certificate.
func serverCreds(dir, name string) credentials.TransportCredentials {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		panic(err)
	}
	return credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
}

func (s *hostileSuite) runExecAttack(t *testing.T, a execAttack) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	creds := serverCreds(s.tlsDir, "aggregator")
	if a.creds != nil {
		creds = a.creds(s)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(creds), grpc.MaxSendMsgSize(64<<20), grpc.MaxRecvMsgSize(64<<20), grpc.WaitForHandlers(true))
	ha := &hostileAggregator{hello: make(chan *pb.Hello, 1), serve: func(h *pb.Hello, stream pb.Aggregator_SessionServer) error {
		err := a.serve(s, h, stream)
		if status.Code(err) == codes.Internal {
			t.Errorf("%s: %v", a.name, err)
		} else if err != nil {
			t.Logf("%s: the hostile aggregator's session: %v", a.name, err)
		}
		return err
	}}
	pb.RegisterAggregatorServer(srv, ha)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	port := fmt.Sprint(lis.Addr().(*net.TCPAddr).Port)
	e := s.start(ctx, t, "executor", "--config", s.conf, "--rank", "1", "--ps-port", port, "--http-port", "0",
		"--tls-dir", s.tlsDir, "--connect-timeout", "3s")
	got := e.wait(ctx)
	out := e.out.String()
	if got.code != a.code || !strings.Contains(out, a.want) {
		t.Errorf("%s: executor exit %d (hung: %v), want %d and %q in:\n%s", a.name, got.code, got.hung, a.code, a.want, out)
	}
	if panicked(out, got) {
		t.Errorf("%s: the executor panicked:\n%s", a.name, out)
	}
	s.record(t, panicked(out, got), got.hung)
}

// TestHostilePeers is the hostile-peer suite (see the top of this file).
func TestHostilePeers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	s := newHostileSuite(t)
	t.Run("hostile-executor", func(t *testing.T) {
		for _, a := range s.aggAttacks() {
			t.Run(a.name, func(t *testing.T) { s.runAggAttack(t, a) })
		}
	})
	t.Run("hostile-aggregator", func(t *testing.T) {
		for _, a := range s.execAttacks() {
			t.Run(a.name, func(t *testing.T) { s.runExecAttack(t, a) })
		}
	})
	t.Logf("hostile peers: %d cases tried, %d handled, %d panics, %d hangs", s.tried, s.handled, s.panics, s.hangs)
}

// newHostileSuite builds the binaries and writes the data, the job file
// and the TLS folders, and records the Hello of a real executor by having
// it connect to a server that answers it with an error.
func newHostileSuite(t *testing.T) *hostileSuite {
	s := &hostileSuite{bin: buildBinaries(t)}
	_, s.conf = synthHome(t, jobtest.SynthOptions{Clients: 20, PerClient: 30, Test: 100, Classes: 4, Seed: 3}, 2)
	issue := func(name string, executors int) string {
		b, err := mtls.Issue(name, []string{"127.0.0.1", "localhost"}, executors, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "tls")
		if err := b.Write(dir); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	// Certificates for 3 ranks of a job of 2: one to try a rank outside it.
	s.tlsDir, s.other = issue("processes", 3), issue("someone-else", 2)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ha := &hostileAggregator{hello: make(chan *pb.Hello, 1), serve: func(*pb.Hello, pb.Aggregator_SessionServer) error {
		return status.Error(codes.FailedPrecondition, "recorded")
	}}
	srv := grpc.NewServer(grpc.Creds(serverCreds(s.tlsDir, "aggregator")))
	pb.RegisterAggregatorServer(srv, ha)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	e := s.start(ctx, t, "executor", "--config", s.conf, "--rank", "1", "--ps-port", fmt.Sprint(lis.Addr().(*net.TCPAddr).Port),
		"--http-port", "0", "--tls-dir", s.tlsDir)
	select {
	case s.hello = <-ha.hello:
	case <-ctx.Done():
		t.Fatalf("the executor never said Hello:\n%s", e.out.String())
	}
	e.wait(ctx)
	d := s.hello.GetData()
	layout, err := model.Layout(model.Spec{Name: "logistic", Channels: int(d.GetChannels()), Height: int(d.GetHeight()), Width: int(d.GetWidth()), Classes: int(d.GetClasses())})
	if err != nil {
		t.Fatal(err)
	}
	s.layout = layout
	return s
}

func TestMaxConnections(t *testing.T) {
	for _, tc := range []struct {
		flag, executors, want int
		err                   string
	}{
		{0, 2, 20, ""},
		{0, 100, 216, ""},
		{5, 2, 5, ""},
		{-1, 2, 0, "--max-connections must be positive"},
		{1, 2, 0, "--max-connections 1 is below the job's 2 executors"},
	} {
		got, err := maxConnections(tc.flag, tc.executors)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("maxConnections(%d, %d) = %d, %v; want %d, %q", tc.flag, tc.executors, got, err, tc.want, tc.err)
		}
	}
}
