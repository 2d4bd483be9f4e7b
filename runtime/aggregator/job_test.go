package aggregator_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	"github.com/fedscale/fedscale-go/runtime/executor"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

var (
	dataOnce sync.Once
	dataDir  string
	dataSet  *data.Dataset
	dataErr  error
)

// testData is one small non-IID data set shared by the tests of this file.
func testData(t *testing.T) (string, *data.Dataset) {
	t.Helper()
	dataOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fedscale-jobtest-")
		if err != nil {
			dataErr = err
			return
		}
		dataDir = dir
		if dataErr = jobtest.WriteSynthetic(dir, jobtest.SynthOptions{Clients: 24, PerClient: 30, Test: 200, Classes: 5, Noise: 1.2, Seed: 1}); dataErr != nil {
			return
		}
		dataSet, dataErr = data.Load(dir, "")
	})
	if dataErr != nil {
		t.Fatal(dataErr)
	}
	return dataDir, dataSet
}

func TestMain(m *testing.M) {
	code := m.Run()
	if dataDir != "" {
		os.RemoveAll(dataDir)
	}
	os.Exit(code)
}

func baseConf(t *testing.T) config.Conf {
	dir, _ := testData(t)
	c := config.Default()
	c.JobName = "synthetic"
	c.LogPath = t.TempDir()
	c.TimeStamp = "run1"
	c.DataDir = dir
	c.GreyInput = true // the synthetic images as stored, one grey channel
	c.Model = "logistic"
	c.NumParticipants = 6
	c.Overcommitment = 1.3
	c.Rounds = 6
	c.EvalInterval = 2
	c.LocalSteps = 5
	c.BatchSize = 10
	c.FilterLess = 10
	c.TestBsz = 16
	c.LearningRate = 0.05
	c.UseCuda = false
	return c
}

// job is an aggregator and its executors running in this process over
// loopback gRPC.
type job struct {
	agg    *aggregator.Aggregator
	addr   string
	conf   config.Conf
	srv    *grpc.Server
	res    aggregator.Result
	err    error
	done   chan struct{}
	cancel context.CancelFunc
}

func startAggregator(t testing.TB, c config.Conf, executors int, mod func(*aggregator.Options)) *job {
	t.Helper()
	return startAggregatorOn(t, "127.0.0.1:0", c, executors, mod)
}

func startAggregatorOn(t testing.TB, addr string, c config.Conf, executors int, mod func(*aggregator.Options)) *job {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.PsIP = "127.0.0.1"
	c.PsPort = lis.Addr().(*net.TCPAddr).Port
	log := fedlog.New(testWriter{t})
	if err := os.MkdirAll(filepath.Join(c.LogDir(), "aggregator"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := log.AttachFile(filepath.Join(c.LogDir(), "aggregator", "log")); err != nil {
		t.Fatal(err)
	}
	opt := aggregator.Options{Conf: c, Executors: executors, Log: log, HeartbeatInterval: 100 * time.Millisecond,
		ExecutorTimeout: 2 * time.Second, ExecutorWait: 30 * time.Second, Resume: true}
	if mod != nil {
		mod(&opt)
	}
	agg, err := aggregator.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterAggregatorServer(srv, agg)
	go func() { _ = srv.Serve(lis) }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	j := &job{agg: agg, addr: lis.Addr().String(), conf: c, srv: srv, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(j.done)
		j.res, j.err = agg.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-j.done; srv.Stop() })
	return j
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// startExecutor runs an executor of rank in the background; its error is
// sent on the returned channel.
func startExecutor(t *testing.T, ctx context.Context, j *job, rank, slots int, backend executor.NewTrainer) <-chan error {
	t.Helper()
	_, ds := testData(t)
	if backend == nil {
		backend = cpu.New
	}
	ex, err := executor.New(executor.Options{Conf: j.conf, Rank: rank, Slots: slots, Backend: backend, Data: ds,
		Log: fedlog.New(testWriter{t}), ConnectTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- ex.Run(ctx) }()
	return errc
}

func (j *job) wait(t *testing.T) aggregator.Result {
	t.Helper()
	select {
	case <-j.done:
	case <-time.After(3 * time.Minute):
		t.Fatal("job did not finish in 3 minutes")
	}
	if j.err != nil {
		t.Fatalf("job failed: %v", j.err)
	}
	return j.res
}

func readMetrics(t *testing.T, path string) []fedlog.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fedlog.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r fedlog.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func runJob(t *testing.T, c config.Conf, executors, slots int) aggregator.Result {
	t.Helper()
	j := startAggregator(t, c, executors, nil)
	var errs []<-chan error
	for r := 1; r <= executors; r++ {
		errs = append(errs, startExecutor(t, context.Background(), j, r, slots, nil))
	}
	res := j.wait(t)
	for r, e := range errs {
		select {
		case err := <-e:
			if err != nil {
				t.Errorf("executor %d: %v", r+1, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("executor %d did not exit after the job finished", r+1)
		}
	}
	return res
}

func TestJobLearns(t *testing.T) {
	c := baseConf(t)
	res := runJob(t, c, 2, 1)
	recs := readMetrics(t, res.MetricsFile)
	var evals []fedlog.Record
	for _, r := range recs {
		if r.Top1 != nil {
			evals = append(evals, r)
		}
	}
	// Evaluated before training, every eval_interval rounds, and after the last.
	if want := []int{0, 2, 4, 6}; len(evals) != len(want) {
		t.Fatalf("evaluations at %v, want rounds %v", evals, want)
	}
	first, last := *evals[0].Top1, *evals[len(evals)-1].Top1
	if !(last > first+0.2) || last < 0.8 {
		t.Errorf("top_1 went from %v to %v; want a rise to at least 0.8", first, last)
	}
	if res.Rounds != 6 || res.RoundsTrained != 6 {
		t.Errorf("rounds = %d trained %d, want 6", res.Rounds, res.RoundsTrained)
	}
	log, err := os.ReadFile(filepath.Join(res.LogDir, "aggregator", "log"))
	if err != nil {
		t.Fatal(err)
	}
	for r := 1; r <= 6; r++ {
		if !strings.Contains(string(log), fmt.Sprintf("round: %d, Planned participants: 8, Succeed participants: 6, Training loss: ", r)) {
			t.Errorf("aggregator log lacks the round %d line", r)
		}
	}
	if !strings.Contains(string(log), "FL Testing in round: 6, virtual_clock: ") {
		t.Errorf("aggregator log lacks the final test line:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(res.LogDir, "executor", "log")); err != nil {
		t.Errorf("executor log: %v", err)
	}
	checkEventFile(t, res.LogDir, recs)
}

// The same job gives the same model and metrics to the last bit with one
// executor or three, with one slot or several.
func TestDeterministicAcrossExecutors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three jobs")
	}
	var results []aggregator.Result
	var metrics [][]fedlog.Record
	for _, layout := range []struct{ executors, slots int }{{1, 1}, {3, 2}, {2, 3}} {
		c := baseConf(t)
		c.Rounds = 4
		c.GradientPolicy = "fed-yogi"
		c.YogiEta = 0.01
		res := runJob(t, c, layout.executors, layout.slots)
		results = append(results, res)
		m := readMetrics(t, res.MetricsFile)
		for i := range m {
			m[i].WallClock = 0
		}
		metrics = append(metrics, m)
	}
	for i := 1; i < len(results); i++ {
		a, b := results[0].FinalModel, results[i].FinalModel
		for k := range a {
			for e := range a[k].Data {
				if a[k].Data[e] != b[k].Data[e] {
					t.Fatalf("layout %d: %s[%d] = %v, want %v", i, a[k].Name, e, b[k].Data[e], a[k].Data[e])
				}
			}
		}
		ja, _ := json.Marshal(metrics[0])
		jb, _ := json.Marshal(metrics[i])
		if string(ja) != string(jb) {
			t.Errorf("layout %d metrics differ:\n%s\n%s", i, ja, jb)
		}
	}
}

// dyingTrainer cancels its executor in the middle of its nth task, as a
// killed process would vanish mid-round.
type dyingTrainer struct {
	model.Trainer
	mu     *sync.Mutex
	calls  *int
	at     int
	cancel context.CancelFunc
}

func (d dyingTrainer) Train(p tensor.List, b []model.Batch, o model.SGD) (model.TrainStats, error) {
	d.mu.Lock()
	*d.calls++
	n := *d.calls
	d.mu.Unlock()
	if n == d.at {
		d.cancel()
		time.Sleep(200 * time.Millisecond)
		return model.TrainStats{}, errors.New("killed")
	}
	return d.Trainer.Train(p, b, o)
}

func TestExecutorKilledMidRound(t *testing.T) {
	c := baseConf(t)
	j := startAggregator(t, c, 2, nil)
	ok := startExecutor(t, context.Background(), j, 1, 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	calls := 0
	dying := startExecutor(t, ctx, j, 2, 1, func(s model.Spec) (model.Trainer, error) {
		tr, err := cpu.New(s)
		return dyingTrainer{Trainer: tr, mu: &mu, calls: &calls, at: 4, cancel: cancel}, err
	})
	res := j.wait(t)
	if err := <-ok; err != nil {
		t.Errorf("surviving executor: %v", err)
	}
	if err := <-dying; !errors.Is(err, context.Canceled) {
		t.Errorf("killed executor returned %v", err)
	}
	if res.Reissued == 0 {
		t.Error("no task was re-issued")
	}
	if res.RoundsTrained != c.Rounds {
		t.Errorf("trained %d rounds, want %d", res.RoundsTrained, c.Rounds)
	}
	log, _ := os.ReadFile(filepath.Join(res.LogDir, "aggregator", "log"))
	if !strings.Contains(string(log), "Executor 2 lost") || !strings.Contains(string(log), "re-issuing") {
		t.Errorf("aggregator log does not record the re-issue:\n%s", log)
	}
}

// rawSession is a hand-driven executor for protocol-level tests.
func rawSession(t *testing.T, j *job, hello *pb.Hello) (pb.Aggregator_SessionClient, *grpc.ClientConn) {
	t.Helper()
	conn, err := grpc.NewClient(j.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s, err := pb.NewAggregatorClient(conn).Session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_Hello{Hello: hello}}); err != nil {
		t.Fatal(err)
	}
	return s, conn
}

func helloFor(t *testing.T, c config.Conf, rank int32) *pb.Hello {
	_, ds := testData(t)
	return &pb.Hello{ProtocolVersion: pb.ProtocolVersion, Rank: rank, JobName: c.JobName, Incarnation: "raw", Slots: 2,
		Data: datadesc.Info(ds)}
}

// clientSamples is client's training sample count in the test data: what
// a result's num_samples must say.
func clientSamples(t *testing.T, client int64) int64 {
	_, ds := testData(t)
	return int64(len(ds.Train.ClientSamples[client]))
}

// An executor that stops talking (a hung process) is declared lost after
// the timeout and its tasks go to the survivor.
func TestHungExecutorTasksReissued(t *testing.T) {
	c := baseConf(t)
	c.Rounds = 2
	j := startAggregator(t, c, 2, func(o *aggregator.Options) { o.ExecutorTimeout = 700 * time.Millisecond })
	hung, _ := rawSession(t, j, helloFor(t, j.conf, 2))
	got := 0
	go func() { // read (so flow control never blocks) but never answer
		for {
			m, err := hung.Recv()
			if err != nil {
				return
			}
			if m.GetTrain() != nil || m.GetEval() != nil {
				got++
			}
		}
	}()
	ok := startExecutor(t, context.Background(), j, 1, 1, nil)
	res := j.wait(t)
	if err := <-ok; err != nil {
		t.Errorf("executor 1: %v", err)
	}
	if res.Reissued == 0 {
		t.Error("the hung executor's tasks were not re-issued")
	}
}

// A result for a task that is no longer pending (a duplicate) is rejected,
// not counted twice.
func TestDuplicateResultRejected(t *testing.T) {
	c := baseConf(t)
	c.Rounds = 1
	c.NumParticipants = 2
	j := startAggregator(t, c, 1, nil)
	s, _ := rawSession(t, j, helloFor(t, j.conf, 1))
	sent := map[int64]bool{}
	serveRaw(s, func(tt *pb.TrainTask, params tensor.List) []*pb.TrainResult {
		r := &pb.TrainResult{Round: tt.GetRound(), TaskId: tt.GetTaskId(), ClientId: tt.GetClientId(), NumSamples: clientSamples(t, tt.GetClientId())}
		if sent[tt.GetTaskId()] {
			return []*pb.TrainResult{r}
		}
		sent[tt.GetTaskId()] = true
		return []*pb.TrainResult{r, r} // the second is the duplicate
	})
	res := j.wait(t)
	if res.Rejected != 2 {
		t.Errorf("rejected %d results, want 2 (one duplicate per client)", res.Rejected)
	}
}

func TestProtocolVersionMismatch(t *testing.T) {
	c := baseConf(t)
	j := startAggregator(t, c, 1, nil)
	h := helloFor(t, j.conf, 1)
	h.ProtocolVersion = 99
	s, _ := rawSession(t, j, h)
	_, err := s.Recv()
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "protocol version 99") {
		t.Fatalf("got %v, want FailedPrecondition naming version 99", err)
	}
}

// A restarted executor (same rank, new process) rejoins without adding
// its clients again, and the job completes.
func TestExecutorRestartRejoins(t *testing.T) {
	c := baseConf(t)
	j := startAggregator(t, c, 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	calls := 0
	first := startExecutor(t, ctx, j, 1, 1, func(s model.Spec) (model.Trainer, error) {
		tr, err := cpu.New(s)
		return dyingTrainer{Trainer: tr, mu: &mu, calls: &calls, at: 3, cancel: cancel}, err
	})
	<-first
	second := startExecutor(t, context.Background(), j, 1, 1, nil)
	res := j.wait(t)
	if err := <-second; err != nil {
		t.Errorf("restarted executor: %v", err)
	}
	log, _ := os.ReadFile(filepath.Join(res.LogDir, "aggregator", "log"))
	if !strings.Contains(string(log), "Executor 1 rejoined") {
		t.Errorf("no rejoin in the log:\n%s", log)
	}
	if strings.Count(string(log), "Registered 24 clients") != 1 {
		t.Errorf("clients registered more than once:\n%s", log)
	}
}

// With save_checkpoint, a second run of the same job resumes after the
// last evaluated round instead of starting over.
func TestResumeFromCheckpoint(t *testing.T) {
	c := baseConf(t)
	c.SaveCheckpoint = true
	c.Rounds = 4
	first := runJob(t, c, 1, 1)
	if first.RoundsTrained != 4 {
		t.Fatalf("first run trained %d rounds", first.RoundsTrained)
	}
	c.Rounds = 6
	c.TimeStamp = "run2"
	second := runJob(t, c, 1, 1)
	if second.ResumedAt != 4 || second.RoundsTrained != 2 {
		t.Errorf("second run resumed at %d and trained %d rounds, want 4 and 2", second.ResumedAt, second.RoundsTrained)
	}
	// A different configuration of the same job name does not resume.
	c.LearningRate = 0.01
	c.TimeStamp = "run3"
	third := runJob(t, c, 1, 1)
	if third.ResumedAt != 0 || third.RoundsTrained != 6 {
		t.Errorf("changed config resumed at %d, trained %d; want a fresh start", third.ResumedAt, third.RoundsTrained)
	}
}

func startAggregatorB(b *testing.B, c config.Conf, executors int) *job {
	return startAggregator(b, c, executors, func(o *aggregator.Options) { o.Log = fedlog.New(discard{}) })
}

// A result that names a live task of its executor but describes another
// one comes from a broken executor: the task goes to another executor, the
// broken one is evicted once it keeps failing, and the job finishes with
// the model an honest job trains.
func TestMismatchedResultEvictsExecutor(t *testing.T) {
	c := baseConf(t)
	runAttack(t, c, attack{
		train: func(tt *pb.TrainTask, params tensor.List) []*pb.ExecutorMessage {
			r := honestResult(t, tt)
			r.ClientId++
			return append(updateMsgs(tt.GetTaskId(), params), trainMsg(r))
		},
		eval:    blindEval,
		evicted: true,
		want:    []string{"with a train result for round 1"},
	}, honestModel(t, c))
}

// An update that does not arrive whole, or arrives out of order, is
// refused instead of aggregated: the task goes to another executor, the
// executor that sent it is evicted once it keeps failing, and the job
// finishes with the model an honest job trains.
func TestMalformedUpdateEvictsExecutor(t *testing.T) {
	c := baseConf(t)
	want := honestModel(t, c)
	for _, tc := range []struct {
		name   string
		update func(id int64, params tensor.List) []*pb.UpdateChunk
		want   string
	}{
		{"missing", func(int64, tensor.List) []*pb.UpdateChunk { return nil }, "0 of the model's 3925 values arrived"},
		{"short", func(id int64, _ tensor.List) []*pb.UpdateChunk {
			return []*pb.UpdateChunk{{TaskId: id, Data: make([]float32, 100)}}
		}, "100 of the model's 3925 values arrived"},
		{"out of order", func(id int64, _ tensor.List) []*pb.UpdateChunk {
			return []*pb.UpdateChunk{{TaskId: id, Offset: 5, Data: make([]float32, 100)}}
		}, "chunk at value 5, expected 0"},
		{"too long", func(id int64, params tensor.List) []*pb.UpdateChunk {
			return []*pb.UpdateChunk{{TaskId: id, Data: make([]float32, params.NumElements()+1)}}
		}, "overruns the model's 3925 values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runAttack(t, baseConf(t), attack{
				train: func(tt *pb.TrainTask, params tensor.List) []*pb.ExecutorMessage {
					var out []*pb.ExecutorMessage
					for _, c := range tc.update(tt.GetTaskId(), params) {
						out = append(out, &pb.ExecutorMessage{Body: &pb.ExecutorMessage_UpdateChunk{UpdateChunk: c}})
					}
					return append(out, trainMsg(honestResult(t, tt)))
				},
				eval:    blindEval,
				evicted: true,
				want:    []string{tc.want},
			}, want)
		})
	}
}

// More participants than eligible clients is said, naming the key, not
// silently clamped; the job still runs with every eligible client.
func TestMoreParticipantsThanClients(t *testing.T) {
	c := baseConf(t)
	c.NumParticipants = 1000
	c.Rounds = 1
	runJob(t, c, 1, 1)
	log, err := os.ReadFile(filepath.Join(c.LogDir(), "aggregator", "log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "job_conf.num_participants is 1000 but only 24 clients are eligible") {
		t.Errorf("no warning about num_participants in the log:\n%s", log)
	}
}

// serveRaw plays a hand-driven executor until the stream ends: it answers
// evaluations with empty counts and training tasks with whatever train
// returns (given the task and the current model), each result preceded by
// the current model's values as its update.
func serveRaw(s pb.Aggregator_SessionClient, train func(*pb.TrainTask, tensor.List) []*pb.TrainResult) {
	serveRawUpdates(s, train, func(id int64, params tensor.List) []*pb.UpdateChunk {
		var out []*pb.UpdateChunk
		_ = pb.Chunks(params, func(off int64, d []float32) error {
			out = append(out, &pb.UpdateChunk{TaskId: id, Offset: off, Data: d})
			return nil
		})
		return out
	})
}

// serveRawUpdates is serveRaw with the chunks sent before each result made
// by update.
func serveRawUpdates(s pb.Aggregator_SessionClient, train func(*pb.TrainTask, tensor.List) []*pb.TrainResult,
	update func(id int64, params tensor.List) []*pb.UpdateChunk) {
	var params tensor.List
	var asm *pb.Assembly
	for {
		m, err := s.Recv()
		if err != nil {
			return
		}
		switch b := m.GetBody().(type) {
		case *pb.AggregatorMessage_Model:
			layout, err := pb.ToLayout(b.Model.GetTensors())
			if err != nil {
				panic(err)
			}
			asm = pb.NewAssembly(layout.ZerosLike())
		case *pb.AggregatorMessage_ModelChunk:
			if err := asm.Add(b.ModelChunk.GetOffset(), b.ModelChunk.GetData()); err != nil {
				panic(err)
			}
			if asm.Complete() {
				params = asm.List()
			}
		case *pb.AggregatorMessage_Eval:
			e := b.Eval
			_ = s.Send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_EvalResult{EvalResult: &pb.EvalResult{Round: e.GetRound(), TaskId: e.GetTaskId(), Shard: e.GetShard(), Count: e.GetEnd() - e.GetStart()}}})
		case *pb.AggregatorMessage_Train:
			for _, r := range train(b.Train, params) {
				for _, c := range update(r.GetTaskId(), params) {
					_ = s.Send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_UpdateChunk{UpdateChunk: c}})
				}
				_ = s.Send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_TrainResult{TrainResult: r}})
			}
		case *pb.AggregatorMessage_Shutdown:
			_ = s.CloseSend()
		}
	}
}

// An aggregator stopped mid-job and started again with the same job resumes
// from its checkpoint, and the executors, still running, reconnect to it on
// their own and see the job through.
func TestAggregatorRestartResumes(t *testing.T) {
	c := baseConf(t)
	c.SaveCheckpoint = true
	c.Rounds = 60
	c.EvalInterval = 2
	first := startAggregator(t, c, 2, nil)
	var execs []<-chan error
	for r := 1; r <= 2; r++ {
		execs = append(execs, startExecutor(t, context.Background(), first, r, 1, nil))
	}
	log := filepath.Join(c.LogDir(), "aggregator", "log")
	deadline := time.Now().Add(time.Minute)
	for {
		if b, _ := os.ReadFile(log); strings.Contains(string(b), "Saved checkpoint of round 2 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint of round 2 was written")
		}
		time.Sleep(2 * time.Millisecond)
	}
	first.cancel()
	<-first.done
	first.srv.Stop()
	if !errors.Is(first.err, context.Canceled) {
		t.Fatalf("first aggregator: %v", first.err)
	}
	c.TimeStamp = "run2"
	second := startAggregatorOn(t, first.addr, c, 2, nil)
	res := second.wait(t)
	for r, e := range execs {
		if err := <-e; err != nil {
			t.Errorf("executor %d: %v", r+1, err)
		}
	}
	if res.ResumedAt < 2 || res.Rounds != 60 || res.RoundsTrained != 60-res.ResumedAt {
		t.Errorf("resumed at %d, ended at round %d after training %d rounds; want a resume at >= 2 and the rest trained", res.ResumedAt, res.Rounds, res.RoundsTrained)
	}
}

// In deployment mode each executor is one client with data of its own:
// its tasks go only to it, every device evaluates its own test data, and a
// device that goes away mid-job drops out of its round instead of stopping
// the job.
func TestDeploymentMode(t *testing.T) {
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprintf("kill=%v", kill), func(t *testing.T) {
			c := baseConf(t)
			c.ExperimentMode = "deployment"
			c.NumClasses = 5
			c.NumParticipants = 3
			c.Overcommitment = 1
			c.Rounds = 8
			const devices = 4
			j := startAggregator(t, c, devices, nil)
			var errs []<-chan error
			for r := 1; r <= devices; r++ {
				dir := t.TempDir()
				if err := jobtest.WriteSynthetic(dir, jobtest.SynthOptions{Clients: 1, PerClient: 60, Test: 40, Classes: 5, Noise: 1.2, Seed: 1, SampleSeed: uint64(r), FirstClient: r}); err != nil {
					t.Fatal(err)
				}
				ec := j.conf
				ec.DataDir = dir
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				backend := cpu.New
				if kill && r == 2 {
					var mu sync.Mutex
					calls := 0
					backend = func(s model.Spec) (model.Trainer, error) {
						tr, err := cpu.New(s)
						return dyingTrainer{Trainer: tr, mu: &mu, calls: &calls, at: 2, cancel: cancel}, err
					}
				}
				ex, err := executor.New(executor.Options{Conf: ec, Rank: r, Backend: backend, Log: fedlog.New(testWriter{t}), ConnectTimeout: 20 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				e := make(chan error, 1)
				go func() { e <- ex.Run(ctx) }()
				errs = append(errs, e)
			}
			res := j.wait(t)
			for r, e := range errs {
				err := <-e
				if kill && r == 1 {
					continue
				}
				if err != nil {
					t.Errorf("executor %d: %v", r+1, err)
				}
			}
			if res.RoundsTrained != c.Rounds || res.Top1 < 0.7 {
				t.Errorf("trained %d rounds to top_1 %v; want %d rounds and at least 0.7", res.RoundsTrained, res.Top1, c.Rounds)
			}
			log, _ := os.ReadFile(filepath.Join(res.LogDir, "aggregator", "log"))
			if strings.Count(string(log), "Registered 4 clients") != 1 {
				t.Errorf("want one client per device:\n%s", log)
			}
			if kill && !strings.Contains(string(log), "giving up client 1") {
				t.Errorf("the lost device's task was not given up:\n%s", log)
			}
		})
	}
}
