package aggregator_test

import (
	"context"
	"math"
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
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// attack is how a hostile executor answers its tasks, and what the job
// must show for it.
type attack struct {
	// train and eval answer a task; nil (or an empty answer) is silence.
	train func(tt *pb.TrainTask, params tensor.List) []*pb.ExecutorMessage
	eval  func(et *pb.EvalTask) []*pb.ExecutorMessage
	// evicted: the executor is evicted and its rank refused, and the job
	// trains the honest job's model. Otherwise it stays to the end and
	// its bad values only leave its clients' updates or metrics out.
	evicted bool
	// want are lines the aggregator's log must hold.
	want []string
	// opts adjusts the aggregator's options.
	opts func(*aggregator.Options)
}

// honestResult is the result an honest executor sends for tt (its
// weights aside).
func honestResult(t *testing.T, tt *pb.TrainTask) *pb.TrainResult {
	return &pb.TrainResult{Round: tt.GetRound(), TaskId: tt.GetTaskId(), ClientId: tt.GetClientId(), NumSamples: clientSamples(t, tt.GetClientId()), MovingLoss: 0.5}
}

func trainMsg(r *pb.TrainResult) *pb.ExecutorMessage {
	return &pb.ExecutorMessage{Body: &pb.ExecutorMessage_TrainResult{TrainResult: r}}
}

func evalMsg(r *pb.EvalResult) *pb.ExecutorMessage {
	return &pb.ExecutorMessage{Body: &pb.ExecutorMessage_EvalResult{EvalResult: r}}
}

// updateMsgs are l's values as task id's update.
func updateMsgs(id int64, l tensor.List) []*pb.ExecutorMessage {
	var out []*pb.ExecutorMessage
	_ = pb.Chunks(l, func(off int64, d []float32) error {
		out = append(out, &pb.ExecutorMessage{Body: &pb.ExecutorMessage_UpdateChunk{UpdateChunk: &pb.UpdateChunk{TaskId: id, Offset: off, Data: d}}})
		return nil
	})
	return out
}

// lazyTrain sends the global model back as the client's update, with
// result's fields changed by mod: well formed, finite, accepted.
func lazyTrain(t *testing.T, mod func(*pb.TrainResult)) func(*pb.TrainTask, tensor.List) []*pb.ExecutorMessage {
	return func(tt *pb.TrainTask, params tensor.List) []*pb.ExecutorMessage {
		r := honestResult(t, tt)
		if mod != nil {
			mod(r)
		}
		return append(updateMsgs(tt.GetTaskId(), params), trainMsg(r))
	}
}

// failTrain reports every training task failed.
func failTrain(tt *pb.TrainTask, _ tensor.List) []*pb.ExecutorMessage {
	return []*pb.ExecutorMessage{{Body: &pb.ExecutorMessage_TaskFailure{TaskFailure: &pb.TaskFailure{Round: tt.GetRound(), TaskId: tt.GetTaskId(), Error: "disk on fire"}}}}
}

// blindEval answers an evaluation with the right count and no hits: well
// formed, accepted.
func blindEval(et *pb.EvalTask) []*pb.ExecutorMessage {
	return []*pb.ExecutorMessage{evalMsg(&pb.EvalResult{Round: et.GetRound(), TaskId: et.GetTaskId(), Shard: et.GetShard(), Count: et.GetEnd() - et.GetStart()})}
}

// evalWith is blindEval with the result changed by mod.
func evalWith(mod func(*pb.EvalResult)) func(*pb.EvalTask) []*pb.ExecutorMessage {
	return func(et *pb.EvalTask) []*pb.ExecutorMessage {
		m := blindEval(et)
		mod(m[0].GetEvalResult())
		return m
	}
}

// lateOnce is answer, except that the first answer comes after delay:
// past the deadline, as from a slow but honest executor, which is not
// evicted for it.
func lateOnce(answer func(*pb.EvalTask) []*pb.ExecutorMessage, delay time.Duration) func(*pb.EvalTask) []*pb.ExecutorMessage {
	var once sync.Once
	return func(et *pb.EvalTask) []*pb.ExecutorMessage {
		once.Do(func() { time.Sleep(delay) })
		return answer(et)
	}
}

// serveHostile connects as hello says over a real socket and answers
// tasks as a says, heartbeating like an honest executor, until its stream
// ends. It then reports nil if the aggregator had finished the job
// (Shutdown), else the aggregator's answer to the same Hello on a new
// connection (nil if welcomed).
func serveHostile(t *testing.T, j *job, hello *pb.Hello, a attack) <-chan error {
	t.Helper()
	s, _ := rawSession(t, j, hello)
	out := make(chan error, 1)
	go func() {
		if hostileLoop(s, a) {
			out <- nil
			return
		}
		conn, err := grpc.NewClient(j.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			out <- err
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		again, err := pb.NewAggregatorClient(conn).Session(ctx)
		if err == nil {
			err = again.Send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_Hello{Hello: hello}})
		}
		if err == nil {
			_, err = again.Recv()
		}
		out <- err
	}()
	return out
}

// hostileLoop serves s until it ends; true if the aggregator said the job
// is over.
func hostileLoop(s pb.Aggregator_SessionClient, a attack) bool {
	var mu sync.Mutex
	send := func(m *pb.ExecutorMessage) {
		mu.Lock()
		defer mu.Unlock()
		_ = s.Send(m)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for seq := int64(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_Heartbeat{Heartbeat: &pb.Heartbeat{Seq: seq}}})
			}
		}
	}()
	var params tensor.List
	var asm *pb.Assembly
	for {
		m, err := s.Recv()
		if err != nil {
			return false
		}
		var answer []*pb.ExecutorMessage
		switch b := m.GetBody().(type) {
		case *pb.AggregatorMessage_Model:
			layout, err := pb.ToLayout(b.Model.GetTensors())
			if err != nil {
				return false
			}
			asm = pb.NewAssembly(layout.ZerosLike())
		case *pb.AggregatorMessage_ModelChunk:
			if asm == nil || asm.Add(b.ModelChunk.GetOffset(), b.ModelChunk.GetData()) != nil {
				return false
			}
			if asm.Complete() {
				params = asm.List()
			}
		case *pb.AggregatorMessage_Train:
			if a.train != nil {
				answer = a.train(b.Train, params)
			}
		case *pb.AggregatorMessage_Eval:
			if a.eval != nil {
				answer = a.eval(b.Eval)
			}
		case *pb.AggregatorMessage_Shutdown:
			mu.Lock()
			_ = s.CloseSend()
			mu.Unlock()
			return true
		}
		for _, m := range answer {
			send(m)
		}
	}
}

// attackConf is the job of the attack tests: two evaluated rounds.
func attackConf(t *testing.T) config.Conf {
	c := baseConf(t)
	c.Rounds = 2
	return c
}

// honestModel is the result of c's job run by one honest executor.
func honestModel(t *testing.T, c config.Conf) aggregator.Result {
	t.Helper()
	c.LogPath = t.TempDir()
	return runJob(t, c, 1, 1)
}

// runAttack runs c's job with an honest executor of rank 1 and a hostile
// one of rank 2 playing a, checks what a promises against honest (the
// same job without the attacker), and returns the result and the
// aggregator's log.
func runAttack(t *testing.T, c config.Conf, a attack, honest aggregator.Result) (aggregator.Result, string) {
	t.Helper()
	j := startAggregator(t, c, 2, func(o *aggregator.Options) {
		o.TaskTimeoutFloor = 2 * time.Second
		if a.opts != nil {
			a.opts(o)
		}
	})
	hostile := serveHostile(t, j, helloFor(t, j.conf, 2), a)
	ok := startExecutor(t, context.Background(), j, 1, 1, nil)
	res := j.wait(t)
	select {
	case err := <-ok:
		if err != nil {
			t.Errorf("honest executor: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("the honest executor did not exit after the job")
	}
	b, err := os.ReadFile(filepath.Join(res.LogDir, "aggregator", "log"))
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	for _, w := range a.want {
		if !strings.Contains(log, w) {
			t.Errorf("the aggregator's log lacks %q:\n%s", w, log)
		}
	}
	var back error
	select {
	case back = <-hostile:
	case <-time.After(20 * time.Second):
		t.Fatal("the hostile executor's stream never ended")
	}
	if a.evicted {
		if !strings.Contains(log, "Evicted executor 2: ") {
			t.Errorf("no eviction in the log:\n%s", log)
		}
		if status.Code(back) != codes.FailedPrecondition || !strings.Contains(back.Error(), "executor 2 was evicted from this job") {
			t.Errorf("the evicted executor came back and got %v, want its rank refused", back)
		}
		sameValues(t, "final model", honest.FinalModel, res.FinalModel)
		if res.Top1 != honest.Top1 || res.Top5 != honest.Top5 {
			t.Errorf("final top_1 %v top_5 %v, the honest job's %v %v", res.Top1, res.Top5, honest.Top1, honest.Top5)
		}
	} else {
		if strings.Contains(log, "Evicted executor") {
			t.Errorf("an executor was evicted:\n%s", log)
		}
		if back != nil {
			t.Errorf("the executor did not see the job finish: %v", back)
		}
		if err := res.FinalModel.CheckFinite(); err != nil {
			t.Errorf("final model: %v", err)
		}
	}
	// One line per round (0 is the evaluation before training), every one
	// parsed (readMetrics fails the test otherwise) and finite.
	recs := readMetrics(t, res.MetricsFile)
	if len(recs) != c.Rounds+1 {
		t.Errorf("metrics.jsonl has %d lines, want %d", len(recs), c.Rounds+1)
	}
	for _, r := range recs {
		for _, v := range []*float64{r.Loss, r.Top1, r.Top5, r.TestLoss} {
			if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
				t.Errorf("round %d's metrics hold %v", r.Round, *v)
			}
		}
	}
	return res, log
}

// Every attack of a hostile executor that holds a valid rank drops its
// answer, never the job: the task goes to the honest executor, the
// attacker is evicted once it keeps failing (with a line saying so) and
// the job trains the honest job's model; values an honest executor could
// produce (a diverged loss) only leave that client or metric out.
func TestHostileExecutorIsolated(t *testing.T) {
	honest := honestModel(t, attackConf(t))
	stale := func(tt *pb.TrainTask, params tensor.List) []*pb.ExecutorMessage {
		r := honestResult(t, tt)
		r.TaskId += 1 << 20
		return append(updateMsgs(r.TaskId, params), trainMsg(r))
	}
	for _, tc := range []struct {
		name string
		a    attack
	}{
		{"task failure", attack{train: failTrain, eval: blindEval, evicted: true,
			want: []string{`reported "disk on fire"`, "3 tasks in a row failed"}}},
		{"negative sample count", attack{train: lazyTrain(t, func(r *pb.TrainResult) { r.NumSamples = -5 }), eval: blindEval, evicted: true,
			want: []string{"claimed -5 training samples for client"}}},
		{"2^50 samples and zero weights", attack{
			train: func(tt *pb.TrainTask, params tensor.List) []*pb.ExecutorMessage {
				r := honestResult(t, tt)
				r.NumSamples = 1 << 50
				return append(updateMsgs(tt.GetTaskId(), params.ZerosLike()), trainMsg(r))
			}, eval: blindEval, evicted: true,
			want: []string{"claimed 1125899906842624 training samples for client"}}},
		{"unknown client id", attack{train: lazyTrain(t, func(r *pb.TrainResult) { r.ClientId = 1 << 40 }), eval: blindEval, evicted: true,
			want: []string{"client 1099511627776"}}},
		{"wrong shape", attack{
			train: func(tt *pb.TrainTask, params tensor.List) []*pb.ExecutorMessage {
				bigger := append(params.Clone(), tensor.Tensor{Name: "extra", Shape: []int{10}, Data: make([]float32, 10)})
				return append(updateMsgs(tt.GetTaskId(), bigger), trainMsg(honestResult(t, tt)))
			}, eval: blindEval, evicted: true,
			want: []string{"overruns the model's 3925 values"}}},
		{"negative training loss", attack{train: lazyTrain(t, func(r *pb.TrainResult) { r.MovingLoss = -1 }), eval: blindEval, evicted: true,
			want: []string{"negative training loss -1"}}},
		{"stale task id", attack{train: stale, eval: evalWith(func(r *pb.EvalResult) { r.TaskId += 1 << 20 }), evicted: true,
			want: []string{"Rejected a late or duplicate", "no result within ", "tasks in a row failed or missed their deadline; last: no result within"}}},
		{"top-1 above the sample count", attack{train: failTrain, eval: evalWith(func(r *pb.EvalResult) { r.Top1, r.Top5 = r.Count+1, r.Count+1 }), evicted: true,
			want: []string{"top-1 and", "hits of shard"}}},
		{"negative test loss", attack{train: failTrain, eval: evalWith(func(r *pb.EvalResult) { r.LossSum = -1 }), evicted: true,
			want: []string{"negative test loss sum -1"}}},
		{"NaN training loss", attack{train: lazyTrain(t, func(r *pb.TrainResult) { r.MovingLoss = math.NaN() }), eval: blindEval,
			want: []string{"diverged (training loss NaN); its update is left out"}}},
		{"infinite weights", attack{
			train: func(tt *pb.TrainTask, params tensor.List) []*pb.ExecutorMessage {
				w := params.Clone()
				w[0].Data[0] = float32(math.Inf(1))
				return append(updateMsgs(tt.GetTaskId(), w), trainMsg(honestResult(t, tt)))
			}, eval: blindEval,
			want: []string{"diverged", "its update is left out"}}},
		{"one late answer", attack{train: lazyTrain(t, nil), eval: lateOnce(blindEval, 3*time.Second),
			want: []string{"no result within ", "strike 1 of 3"}}},
		{"NaN test loss", attack{train: lazyTrain(t, nil), eval: evalWith(func(r *pb.EvalResult) { r.LossSum = math.NaN() }),
			want: []string{"the test loss is NaN; metrics.jsonl records it under non_finite"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := runAttack(t, attackConf(t), tc.a, honest)
			if tc.name == "NaN test loss" {
				// The evaluated rounds' lines are written, the loss recorded
				// as non-finite beside the accuracy.
				for _, r := range readMetrics(t, res.MetricsFile) {
					if r.Round%2 == 0 && (r.Top1 == nil || r.TestLoss != nil || r.NonFinite["test_loss"] != "NaN") {
						t.Errorf("round %d: top_1 %v test_loss %v non_finite %v, want the accuracy and test_loss NaN under non_finite", r.Round, r.Top1, r.TestLoss, r.NonFinite)
					}
				}
			}
		})
	}
}

// An executor that heartbeats but never answers (hung on storage, say)
// holds its tasks only until their deadline: from the measured task times
// (here at least the floor, 2s) or --task-timeout. They go to the honest
// executor, the stuck one is evicted after missing them again, and the
// job trains the honest job's model.
func TestStuckExecutorTaskReissued(t *testing.T) {
	honest := honestModel(t, attackConf(t))
	for _, tc := range []struct {
		name  string
		opts  func(*aggregator.Options)
		limit string
	}{
		{"measured", nil, "no result within "},
		{"--task-timeout", func(o *aggregator.Options) { o.TaskTimeout = 1500 * time.Millisecond; o.TaskTimeoutFloor = time.Hour }, "no result within 1.5s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := runAttack(t, attackConf(t), attack{evicted: true, opts: tc.opts,
				want: []string{tc.limit, "Evicted executor 2: ", "tasks in a row failed or missed their deadline; last: " + tc.limit}}, honest)
			if res.Reissued == 0 {
				t.Error("no task was re-issued")
			}
		})
	}
}

// What a Hello claims about the process and its data is bounded and held
// to the job file; a refused Hello changes nothing, and the honest
// executor of that rank then runs the job.
func TestHostileHelloRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*pb.Hello)
		conf func(*config.Conf)
		code codes.Code
		want string
	}{
		{"a million slots", func(h *pb.Hello) { h.Slots = 1_000_000 }, nil, codes.InvalidArgument, "slots 1000000 is outside 1..1024"},
		{"no slots", func(h *pb.Hello) { h.Slots = 0 }, nil, codes.InvalidArgument, "slots 0 is outside 1..1024"},
		{"long incarnation", func(h *pb.Hello) { h.Incarnation = strings.Repeat("x", 100) }, nil, codes.InvalidArgument, "incarnation of 100 bytes"},
		{"newline in incarnation", func(h *pb.Hello) { h.Incarnation = "a\nINFO forged" }, nil, codes.InvalidArgument, "not printable ASCII"},
		{"negative sample count", func(h *pb.Hello) { h.Data.ClientSamples[3] = -7 }, nil, codes.FailedPrecondition, "reports client 3 with -7 training samples"},
		{"classes against num_classes", func(h *pb.Hello) { h.Data.Classes = 9 }, func(c *config.Conf) { c.NumClasses = 5 },
			codes.FailedPrecondition, "reports 9 classes but the job file (grey_input and num_classes) makes 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseConf(t)
			c.Rounds = 1
			if tc.conf != nil {
				tc.conf(&c)
			}
			j := startAggregator(t, c, 1, nil)
			h := helloFor(t, j.conf, 1)
			h.Data.ClientSamples = append([]int64(nil), h.Data.ClientSamples...)
			tc.mod(h)
			s, _ := rawSession(t, j, h)
			_, err := s.Recv()
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Hello answered %v, want %s containing %q", err, tc.code, tc.want)
			}
			ok := startExecutor(t, context.Background(), j, 1, 1, nil)
			j.wait(t)
			if err := <-ok; err != nil {
				t.Errorf("honest executor: %v", err)
			}
		})
	}
}

// The job's data is what the aggregator reads in data_dir when it can:
// a majority of executors agreeing on other data is refused, and honest
// executors of the same ranks then run the job. When it cannot read
// data_dir (the data lives on the executors' hosts only), the job's data
// is what a majority of the executors loaded, not what the first to
// register claims: a wrong first executor is refused and the others run
// the job; with no majority the job fails naming who loaded what, since
// nothing tells right from wrong.
func TestDataAgreedByMajority(t *testing.T) {
	bogus := func(h *pb.Hello) *pb.Hello {
		h.Data.Fingerprint = "bogus"
		h.Data.TestSamples = 7
		return h
	}
	// elsewhere is c with a data_dir the aggregator cannot read; the
	// executors here are handed the data (startExecutor).
	elsewhere := func(c config.Conf) config.Conf {
		c.DataDir = filepath.Join(t.TempDir(), "on-the-executors")
		return c
	}
	t.Run("liars in the majority, data_dir readable", func(t *testing.T) {
		c := attackConf(t)
		honest := honestModel(t, c)
		j := startAggregator(t, c, 3, nil)
		liars := []<-chan error{serveHostile(t, j, bogus(helloFor(t, j.conf, 1)), attack{}), serveHostile(t, j, bogus(helloFor(t, j.conf, 2)), attack{})}
		for i, l := range liars {
			r, back := i+1, <-l
			if status.Code(back) != codes.FailedPrecondition || !strings.Contains(back.Error(), "loaded other data (24 clients, 7 test samples") ||
				!strings.Contains(back.Error(), "as the aggregator reads data_dir") {
				t.Errorf("lying executor %d got %v, want its data refused", r, back)
			}
		}
		var errs []<-chan error
		for r := 1; r <= 3; r++ {
			errs = append(errs, startExecutor(t, context.Background(), j, r, 1, nil))
		}
		res := j.wait(t)
		for i, e := range errs {
			if err := <-e; err != nil {
				t.Errorf("executor %d: %v", i+1, err)
			}
		}
		sameValues(t, "final model", honest.FinalModel, res.FinalModel)
		log, _ := os.ReadFile(filepath.Join(res.LogDir, "aggregator", "log"))
		if !strings.Contains(string(log), "The job's data is data_dir "+c.DataDir+" as the aggregator reads it (24 clients, 200 test samples") {
			t.Errorf("the log does not say where the data comes from:\n%s", log)
		}
	})
	t.Run("wrong first executor outvoted", func(t *testing.T) {
		c := elsewhere(attackConf(t))
		honest := honestModel(t, c)
		j := startAggregator(t, c, 3, nil)
		hostile := serveHostile(t, j, bogus(helloFor(t, j.conf, 1)), attack{})
		// Let it register first.
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(filepath.Join(c.LogDir(), "aggregator", "log"))
			if strings.Contains(string(b), "Executor 1 registered") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the hostile executor never registered")
			}
			time.Sleep(5 * time.Millisecond)
		}
		var errs []<-chan error
		for r := 2; r <= 3; r++ {
			errs = append(errs, startExecutor(t, context.Background(), j, r, 1, nil))
		}
		res := j.wait(t)
		for i, e := range errs {
			if err := <-e; err != nil {
				t.Errorf("executor %d: %v", i+2, err)
			}
		}
		sameValues(t, "final model", honest.FinalModel, res.FinalModel)
		back := <-hostile
		if status.Code(back) != codes.FailedPrecondition || !strings.Contains(back.Error(), "loaded other data (24 clients, 7 test samples") {
			t.Errorf("the outvoted executor came back and got %v, want its data refused", back)
		}
		log, _ := os.ReadFile(filepath.Join(res.LogDir, "aggregator", "log"))
		if !strings.Contains(string(log), "Refusing executor 1: it loaded other data (24 clients, 7 test samples") ||
			!strings.Contains(string(log), "which executors 2, 3 agree on") {
			t.Errorf("the log does not say why executor 1 was refused:\n%s", log)
		}
		if !strings.Contains(string(log), "The aggregator cannot read job_conf.data_dir here") {
			t.Errorf("the log does not say the data is the majority's:\n%s", log)
		}
	})
	t.Run("no majority", func(t *testing.T) {
		c := elsewhere(attackConf(t))
		j := startAggregator(t, c, 2, nil)
		serveHostile(t, j, bogus(helloFor(t, j.conf, 1)), attack{})
		ok := startExecutor(t, context.Background(), j, 2, 1, nil)
		select {
		case <-j.done:
		case <-time.After(time.Minute):
			t.Fatal("the job did not fail")
		}
		if j.err == nil || !strings.Contains(j.err.Error(), "no majority of the 2 agrees: executor(s) 1 loaded 24 clients, 7 test samples") ||
			!strings.Contains(j.err.Error(), "executor(s) 2 loaded 24 clients, 200 test samples") {
			t.Errorf("job error %v, want one naming both data sets", j.err)
		}
		if err := <-ok; err == nil {
			t.Error("the honest executor was not told the job failed")
		}
	})
}
