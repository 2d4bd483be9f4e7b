package aggregator

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fedscale/fedscale-go/runtime/aggregate"
	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/safetensors"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
	"github.com/fedscale/fedscale-go/runtime/selection"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

type phase int

const (
	waiting phase = iota
	training
	evaluating
)

type taskKind int

const (
	trainKind taskKind = iota
	evalKind
)

// task is one unit of work. A re-issued task gets a new id, so a result
// for the old id (from an executor presumed lost) is rejected.
type task struct {
	id       int64
	kind     taskKind
	round    int
	client   int64
	shard    int
	start    int64
	end      int64
	assigned *session
	// update receives a training task's weights as they arrive.
	update *pb.Assembly
	// owner pins the task to one executor rank (deployment mode: the
	// client's data lives there); 0 means any executor.
	owner int32
}

// state is the job, owned by the event loop.
type state struct {
	sessions map[int32]*session
	everSeen map[int32]bool
	data     *pb.DataInfo
	infos    map[int32]*pb.DataInfo // deployment mode: each executor's own data
	registry *selection.Registry
	server   aggregate.Server

	phase   phase
	round   int // current round (training) or the round just evaluated
	clock   float64
	lr      float64
	model   tensor.List
	version int64

	queue  []*task
	tasks  map[int64]*task
	nextID int64

	planned      int
	kept         []selection.Selected
	roundTime    float64
	trainResults map[int64]trainResult
	evalResults  map[int]*pb.EvalResult
	shards       int
	skipped      map[int]bool // deployment: shards whose executor was lost

	started       time.Time
	wallOffset    float64 // wall seconds of earlier runs of a resumed job
	lastExecutor  time.Time
	warnedNoExecs bool
	pendingRecord *fedlog.Record

	reissued, rejected int
	resumedAt          int
	roundsTrained      int
	last               fedlog.Record
	timeStamp          string

	metrics *fedlog.Metrics
	// modelSaved is 1 + the round whose model saveModel wrote last; 0 =
	// none yet.
	modelSaved int
	done       bool
	err        error
}

func (st *state) init(a *Aggregator) {
	st.sessions = map[int32]*session{}
	st.everSeen = map[int32]bool{}
	st.infos = map[int32]*pb.DataInfo{}
	st.tasks = map[int64]*task{}
	st.lr = a.conf.LearningRate
	st.started = a.now()
	st.lastExecutor = st.started
	st.timeStamp = a.conf.TimeStamp
}

// ---- events ----

type event interface{ apply(a *Aggregator) }

type evHello struct {
	s     *session
	hello *pb.Hello
	reply chan error
}

type evMessage struct {
	s *session
	m *pb.ExecutorMessage
}

type evClosed struct {
	s   *session
	err error
}

func (e evHello) apply(a *Aggregator) {
	err := a.st.hello(a, e.s, e.hello)
	e.reply <- err
}

func (e evMessage) apply(a *Aggregator) {
	st := &a.st
	s := e.s
	if s.gone || st.sessions[s.rank] != s {
		return // a message from a session we already dropped
	}
	s.lastSeen = a.now()
	switch b := e.m.GetBody().(type) {
	case *pb.ExecutorMessage_Heartbeat:
	case *pb.ExecutorMessage_UpdateChunk:
		st.updateChunk(a, s, b.UpdateChunk)
	case *pb.ExecutorMessage_TrainResult:
		st.trainResult(a, s, b.TrainResult)
	case *pb.ExecutorMessage_EvalResult:
		st.evalResult(a, s, b.EvalResult)
	case *pb.ExecutorMessage_TaskFailure:
		f := b.TaskFailure
		st.fail(a, fmt.Errorf("executor %d failed task %d of round %d: %s", s.rank, f.GetTaskId(), f.GetRound(), f.GetError()))
	case *pb.ExecutorMessage_Hello:
		a.log.Warnf("Executor %d sent a second Hello on one session; ignored", s.rank)
	}
}

func (e evClosed) apply(a *Aggregator) {
	st := &a.st
	if e.s.gone || st.sessions[e.s.rank] != e.s {
		return
	}
	reason := "disconnected"
	if e.err != nil {
		reason = "disconnected: " + status.Convert(e.err).Message()
	}
	st.dropSession(a, e.s, reason)
}

// ---- registration ----

func (st *state) hello(a *Aggregator, s *session, h *pb.Hello) error {
	if st.done {
		return status.Error(codes.Unavailable, "the job has finished")
	}
	if h.GetJobName() != a.conf.JobName {
		return status.Errorf(codes.FailedPrecondition, "executor belongs to job %q, this aggregator runs job %q", h.GetJobName(), a.conf.JobName)
	}
	if r := h.GetRank(); r < 1 || int(r) > a.opt.Executors {
		return status.Errorf(codes.FailedPrecondition, "executor rank %d is outside 1..%d (the job's num_executors)", r, a.opt.Executors)
	}
	mode := config.Mode(h.GetMode())
	if mode == "" {
		mode = config.Simulation // the proto3 default: an executor that did not say
	}
	if want := a.conf.ExperimentMode; mode != want {
		return status.Errorf(codes.FailedPrecondition, "executor %d runs experiment_mode %q but the aggregator runs %q: use one job file for both", h.GetRank(), mode, want)
	}
	if err := st.checkData(a, h.GetRank(), h.GetData()); err != nil {
		return status.Errorf(codes.FailedPrecondition, "executor %d: %v", h.GetRank(), err)
	}
	old := st.sessions[s.rank]
	st.sessions[s.rank] = s
	st.lastExecutor = a.now()
	st.warnedNoExecs = false
	rejoin := st.everSeen[s.rank]
	st.everSeen[s.rank] = true
	a.prom.executors.Set(float64(len(st.sessions)))
	s.send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Welcome{Welcome: &pb.Welcome{
		ProtocolVersion:     pb.ProtocolVersion,
		JobName:             a.conf.JobName,
		TimeStamp:           st.timeStamp,
		HeartbeatIntervalMs: a.opt.HeartbeatInterval.Milliseconds(),
		Training: &pb.TrainingConfig{
			Model:       a.conf.Model,
			BatchSize:   int32(a.conf.BatchSize),
			LocalSteps:  int32(a.conf.LocalSteps),
			Momentum:    0.9,
			WeightDecay: a.conf.WeightDecay,
			LossDecay:   a.conf.LossDecay,
			TestBsz:     int32(a.conf.TestBsz),
			Classes:     st.data.GetClasses(),
		},
	}}})
	if old != nil {
		// A restarted executor: replace its old stream (after the new one
		// is welcomed, so tasks re-issued to it follow the Welcome). Its
		// clients are already registered and are not added again.
		st.dropSession(a, old, fmt.Sprintf("replaced by a new connection (incarnation %s)", s.incarnation))
	}
	if rejoin {
		a.log.Infof("Executor %d rejoined (incarnation %s, %d slots); its clients stay registered", s.rank, s.incarnation, s.slots)
	} else {
		a.log.Infof("Executor %d registered (incarnation %s, %d slots), %d clients, %d test samples",
			s.rank, s.incarnation, s.slots, len(h.GetData().GetClientSamples()), h.GetData().GetTestSamples())
	}
	if st.phase == waiting && st.model == nil && len(st.everSeen) == a.opt.Executors {
		if err := st.start(a); err != nil {
			st.fail(a, err)
			return nil
		}
	}
	st.abandonOrphans(a)
	st.dispatch(a)
	return nil
}

// checkData fixes the job's data description from the first executor and
// requires every later one to agree: in simulation mode all executors load
// the same data, and a mismatch would silently train on different clients.
func (st *state) checkData(a *Aggregator, rank int32, d *pb.DataInfo) error {
	if d == nil || len(d.GetClientSamples()) == 0 {
		return fmt.Errorf("reports no training clients")
	}
	if a.deployment() {
		// Each executor is one client with data of its own: only the
		// model's input and output sizes must agree.
		if len(d.GetClientSamples()) != 1 || d.GetClientSamples()[0] < 1 {
			return fmt.Errorf("a deployment executor must hold exactly one client with samples")
		}
		if st.data != nil && (d.GetClasses() != st.data.GetClasses() || d.GetHeight() != st.data.GetHeight() || d.GetWidth() != st.data.GetWidth() || d.GetChannels() != st.data.GetChannels()) {
			return fmt.Errorf("has %d classes of %dx%d images but the first executor has %d classes of %dx%d: set job_conf.num_classes so every client's model has the same size",
				d.GetClasses(), d.GetWidth(), d.GetHeight(), st.data.GetClasses(), st.data.GetWidth(), st.data.GetHeight())
		}
		if old := st.infos[rank]; old != nil && old.GetClientSamples()[0] != d.GetClientSamples()[0] && st.registry != nil {
			return fmt.Errorf("rejoined with %d training samples, it registered with %d", d.GetClientSamples()[0], old.GetClientSamples()[0])
		}
		if st.data == nil {
			st.data = d
		}
		st.infos[rank] = d
		return nil
	}
	if st.data == nil {
		st.data = d
		return nil
	}
	if d.GetFingerprint() != st.data.GetFingerprint() || len(d.GetClientSamples()) != len(st.data.GetClientSamples()) ||
		d.GetTestSamples() != st.data.GetTestSamples() || d.GetClasses() != st.data.GetClasses() {
		return fmt.Errorf("loaded different data (%d clients, %d test samples, %d classes, digest %.12s) than the first executor (%d clients, %d test samples, %d classes, digest %.12s): point every executor at the same data_dir",
			len(d.GetClientSamples()), d.GetTestSamples(), d.GetClasses(), d.GetFingerprint(),
			len(st.data.GetClientSamples()), st.data.GetTestSamples(), st.data.GetClasses(), st.data.GetFingerprint())
	}
	return nil
}

// start builds the client registry and the initial model (or resumes the
// checkpoint), then evaluates the starting model.
func (st *state) start(a *Aggregator) error {
	c := a.conf
	d := st.data
	spec := model.Spec{Name: c.Model, Channels: int(d.GetChannels()), Height: int(d.GetHeight()), Width: int(d.GetWidth()), Classes: int(d.GetClasses())}
	if c.NumClasses > 0 && c.NumClasses != spec.Classes {
		return fmt.Errorf("job_conf.num_classes is %d but the data has %d classes", c.NumClasses, spec.Classes)
	}
	params, err := st.initialModel(a, spec)
	if err != nil {
		return err
	}
	srv, err := aggregate.New(serverOptions(c))
	if err != nil {
		return fmt.Errorf("job_conf.gradient_policy: %w", err)
	}
	samples := d.GetClientSamples()
	if a.deployment() {
		// Client k is executor k+1's device.
		samples = make([]int64, a.opt.Executors)
		for r := range samples {
			samples[r] = st.infos[int32(r+1)].GetClientSamples()[0]
		}
	}
	reg, err := selection.NewRegistry(samples, a.opt.Capacities, a.opt.Behaviors, selection.Options{
		Participants:   c.NumParticipants,
		Overcommitment: c.Overcommitment,
		BatchSize:      c.BatchSize,
		LocalSteps:     c.LocalSteps,
		ModelBytes:     params.Bytes(),
		FilterLess:     int64(c.FilterLess),
		FilterMore:     c.FilterMore,
		Seed:           c.SampleSeed,
	})
	if err != nil {
		return fmt.Errorf("client registry: %w", err)
	}
	if reg.Eligible() == 0 {
		return fmt.Errorf("no client has between filter_less=%d and filter_more=%d training samples", c.FilterLess, c.FilterMore)
	}
	st.registry, st.server, st.model = reg, srv, params
	a.prom.clients.Set(float64(reg.Eligible()))
	a.log.Infof("Registered %d clients (%d eligible), model %s with %d parameters, %d test samples",
		len(samples), reg.Eligible(), c.Model, params.NumElements(), d.GetTestSamples())

	if a.opt.Resume {
		if ck, ok, err := loadCheckpoint(st.checkpointPath(a), st.fingerprint(a)); err != nil {
			a.log.Warnf("Not resuming: %v", err)
		} else if ok {
			if err := st.restore(a, ck); err != nil {
				a.log.Warnf("Not resuming from %s: %v", st.checkpointPath(a), err)
				st.model, st.server = params, srv
				st.round, st.clock, st.lr, st.version = 0, 0, c.LearningRate, 0
			} else {
				a.log.Infof("Resumed job %s from checkpoint after round %d (virtual clock %s)", c.JobName, st.round, fedlog.PyFloat(st.clock))
			}
		}
	}
	if err := st.openFiles(a); err != nil {
		return err
	}
	if st.round > 0 {
		st.resumedAt = st.round
		if st.round >= c.Rounds {
			st.done = true
			return nil
		}
		st.startTraining(a, st.round+1)
		return nil
	}
	st.startEval(a, 0)
	return nil
}

// initialModel is job_conf.model_init_file's model, checked against spec's
// names and shapes, or else spec's model initialised from the job's seed.
func (st *state) initialModel(a *Aggregator, spec model.Spec) (tensor.List, error) {
	if a.initModel == nil {
		params, err := model.Init(spec, ModelSeed(a.conf.SampleSeed))
		if err != nil {
			return nil, fmt.Errorf("job_conf.model: %w", err)
		}
		return params, nil
	}
	want, err := model.Layout(spec)
	if err != nil {
		return nil, fmt.Errorf("job_conf.model: %w", err)
	}
	params, err := safetensors.Match(want, a.initModel)
	if err != nil {
		return nil, fmt.Errorf("job_conf.model_init_file %s does not fit model %s: %w", a.conf.ModelInitFile, spec, err)
	}
	a.initModel = nil // the list lives on in params
	a.log.Infof("Starting from the model in %s (job_conf.model_init_file)", a.conf.ModelInitFile)
	return params, nil
}

// saveModel writes the global model as safetensors to ModelPath, once per
// round. A failure is logged; the job goes on.
func (st *state) saveModel(a *Aggregator) {
	if st.model == nil || st.modelSaved == st.round+1 {
		return
	}
	path := a.ModelPath()
	meta := map[string]string{"format": "pt", "model": a.conf.Model, "round": strconv.Itoa(st.round)}
	if err := safetensors.WriteFile(path, st.model, meta); err != nil {
		a.log.Errorf("Saving the model: %v", err)
		return
	}
	st.modelSaved = st.round + 1
	a.log.Infof("Saved the model of round %d to %s", st.round, path)
}

func (st *state) openFiles(a *Aggregator) error {
	m, err := fedlog.OpenMetrics(filepath.Join(a.logDir, "metrics.jsonl"))
	if err != nil {
		return err
	}
	st.metrics = m
	return nil
}

func (st *state) closeFiles() {
	if st.metrics != nil {
		_ = st.metrics.Close()
		st.metrics = nil
	}
}

// ---- rounds ----

func (st *state) newTask(t *task) {
	st.nextID++
	t.id = st.nextID
	st.tasks[t.id] = t
	st.queue = append(st.queue, t)
}

func (st *state) startTraining(a *Aggregator, round int) {
	st.phase, st.round = training, round
	st.trainResults = map[int64]trainResult{}
	var sel selection.Round
	var err error
	// With traces, nobody may be online at this instant: move the virtual
	// clock on until someone is, as a real deployment would wait.
	for tries := 0; ; tries++ {
		sel, err = st.registry.Select(round, st.clock)
		if err != nil {
			st.fail(a, fmt.Errorf("round %d: selecting participants: %w", round, err))
			return
		}
		if len(sel.Kept) > 0 {
			break
		}
		if tries == 10000 {
			st.fail(a, fmt.Errorf("round %d: no client came online within %s s of virtual time", round, fedlog.PyFloat(float64(tries)*60)))
			return
		}
		st.clock += 60
	}
	st.kept, st.roundTime = sel.Kept, sel.Duration
	st.planned = len(sel.Kept) + len(sel.Stragglers)
	for _, k := range sel.Kept {
		t := &task{kind: trainKind, round: round, client: k.Client}
		if a.deployment() {
			t.owner = int32(k.Client + 1)
		}
		st.newTask(t)
	}
	st.abandonOrphans(a)
	a.prom.round.Set(float64(round))
	a.log.Debugf("Round %d: %d planned, training %d clients at lr %s", round, st.planned, len(sel.Kept), fedlog.PyFloat(st.lr))
	st.dispatch(a)
}

// trainResult is a client's finished training: the executor's report and
// the weights that arrived before it.
type trainResult struct {
	r *pb.TrainResult
	w tensor.List
}

// updateChunk adds values to the weights of a training task that this
// session holds. Chunks of a task it no longer holds (re-issued after a
// disconnect, or finished) are dropped without a word: the result that
// follows them is what gets rejected and counted.
func (st *state) updateChunk(a *Aggregator, s *session, c *pb.UpdateChunk) {
	t, ok := st.tasks[c.GetTaskId()]
	if !ok || t.assigned != s || t.kind != trainKind {
		return
	}
	if t.update == nil {
		t.update = pb.NewAssembly(st.model.ZerosLike())
	}
	if err := t.update.Add(c.GetOffset(), c.GetData()); err != nil {
		st.fail(a, fmt.Errorf("executor %d returned a malformed update for client %d: %w", s.rank, t.client, err))
	}
}

func (st *state) trainResult(a *Aggregator, s *session, r *pb.TrainResult) {
	t, ok := st.tasks[r.GetTaskId()]
	if !ok || t.assigned != s {
		st.reject(a, s, "train", r.GetRound(), r.GetTaskId())
		return
	}
	if t.kind != trainKind || int64(t.round) != r.GetRound() || t.client != r.GetClientId() {
		// The task is live and this executor holds it, yet the result
		// describes another one: a broken executor, not a late message.
		// Rejecting it would strand the task, so stop with the reason.
		st.fail(a, fmt.Errorf("executor %d answered task %d (round %d, client %d) with a train result for round %d, client %d",
			s.rank, t.id, t.round, t.client, r.GetRound(), r.GetClientId()))
		return
	}
	st.complete(s, t)
	if t.update == nil || !t.update.Complete() {
		var got, want int64
		if t.update != nil {
			got, want = t.update.Progress()
		} else {
			want = int64(st.model.NumElements())
		}
		st.fail(a, fmt.Errorf("executor %d returned a malformed update for client %d: %d of the model's %d values arrived", s.rank, t.client, got, want))
		return
	}
	st.trainResults[t.client] = trainResult{r: r, w: t.update.List()}
	if len(st.trainResults) == len(st.kept) {
		st.finishTraining(a)
		return
	}
	st.dispatch(a)
}

func (st *state) finishTraining(a *Aggregator) {
	c := a.conf
	updates := make([]aggregate.Update, 0, len(st.kept))
	losses := make([]float64, 0, len(st.kept))
	// st.kept is in client-id order: the aggregation order never depends
	// on which executor finished first.
	for _, k := range st.kept {
		res := st.trainResults[k.Client]
		r, w := res.r, res.w
		if err := w.CheckFinite(); err != nil {
			a.log.Warnf("Round %d: client %d diverged (%v); its update is left out", st.round, k.Client, err)
			continue
		}
		updates = append(updates, aggregate.Update{ClientID: k.Client, Weights: w, NumSamples: r.GetNumSamples(), Loss: r.GetMovingLoss()})
		losses = append(losses, r.GetMovingLoss())
	}
	switch {
	case len(updates) == 0 && len(st.kept) > 0:
		st.fail(a, fmt.Errorf("round %d: every client's update diverged (non-finite weights); lower learning_rate", st.round))
		return
	case len(updates) == 0:
		// Deployment mode: every participant's device went away.
		a.log.Warnf("Round %d: no participant reported; the model is unchanged", st.round)
	default:
		next, err := st.server.Step(st.model, updates, st.lr)
		if err != nil {
			st.fail(a, fmt.Errorf("round %d: aggregation: %w", st.round, err))
			return
		}
		st.model = next
	}
	st.version = int64(st.round)
	st.trainResults = nil
	st.clock += st.roundTime
	st.roundsTrained++
	if st.round%c.DecayRound == 0 {
		st.lr = math.Max(st.lr*c.DecayFactor, c.MinLearningRate)
	}
	loss := mean(losses)
	wall := st.wall(a)
	a.log.Infof("%s", fedlog.RoundLine(wall, st.round, st.planned, len(updates), loss))
	a.prom.roundsDone.Inc()
	a.prom.clock.Set(st.clock)
	rec := fedlog.Record{Round: st.round, VirtualClock: st.clock, WallClock: wall, Participants: len(updates), Planned: st.planned, LearningRate: st.lr}
	if len(losses) > 0 {
		rec.Loss = &loss
	}
	st.pendingRecord = &rec
	if st.round%c.EvalInterval == 0 || st.round >= c.Rounds {
		st.startEval(a, st.round)
		return
	}
	st.flushRecord(a)
	st.startTraining(a, st.round+1)
}

func (st *state) wall(a *Aggregator) float64 {
	return st.wallOffset + a.now().Sub(st.started).Seconds()
}

func (st *state) flushRecord(a *Aggregator) {
	if st.pendingRecord == nil {
		return
	}
	st.pendingRecord.ReissuedTasks = st.reissued
	st.last = *st.pendingRecord
	if st.metrics != nil {
		if err := st.metrics.Write(*st.pendingRecord); err != nil {
			a.log.Errorf("%v", err)
		}
	}
	st.pendingRecord = nil
}

// evalShards splits the first n test samples into fixed shards of whole
// test batches. The split depends only on n and test_bsz, never on the
// number of executors, so summed metrics are identical however many run.
func evalShards(n int64, bsz int) [][2]int64 {
	const maxShards = 32
	b := int64(bsz)
	batches := (n + b - 1) / b
	per := (batches + maxShards - 1) / maxShards
	var out [][2]int64
	for start := int64(0); start < n; start += per * b {
		end := min(start+per*b, n)
		out = append(out, [2]int64{start, end})
	}
	return out
}

func (st *state) startEval(a *Aggregator, round int) {
	c := a.conf
	st.phase, st.round = evaluating, round
	n := int64(math.Floor(float64(st.data.GetTestSamples()) * c.TestRatio))
	n = max(n, 1)
	st.evalResults = map[int]*pb.EvalResult{}
	st.skipped = map[int]bool{}
	if a.deployment() {
		// Each device evaluates its own test data; shard i is rank i+1.
		st.shards = a.opt.Executors
		for r := 1; r <= a.opt.Executors; r++ {
			n := max(int64(math.Floor(float64(st.infos[int32(r)].GetTestSamples())*c.TestRatio)), 1)
			st.newTask(&task{kind: evalKind, round: round, shard: r - 1, start: 0, end: n, owner: int32(r)})
		}
		st.abandonOrphans(a)
		st.dispatch(a)
		return
	}
	shards := evalShards(n, c.TestBsz)
	st.shards = len(shards)
	for i, sh := range shards {
		st.newTask(&task{kind: evalKind, round: round, shard: i, start: sh[0], end: sh[1]})
	}
	st.dispatch(a)
}

func (st *state) evalResult(a *Aggregator, s *session, r *pb.EvalResult) {
	t, ok := st.tasks[r.GetTaskId()]
	if !ok || t.assigned != s {
		st.reject(a, s, "eval", r.GetRound(), r.GetTaskId())
		return
	}
	if t.kind != evalKind || int64(t.round) != r.GetRound() || int32(t.shard) != r.GetShard() {
		st.fail(a, fmt.Errorf("executor %d answered task %d (round %d, test shard %d) with an eval result for round %d, shard %d",
			s.rank, t.id, t.round, t.shard, r.GetRound(), r.GetShard()))
		return
	}
	if r.GetCount() != t.end-t.start {
		st.fail(a, fmt.Errorf("executor %d evaluated %d samples of shard %d, want %d", s.rank, r.GetCount(), t.shard, t.end-t.start))
		return
	}
	st.complete(s, t)
	st.evalResults[t.shard] = r
	st.maybeFinishEval(a)
}

// maybeFinishEval combines the evaluation once every shard has reported or
// (deployment mode) been given up with its executor.
func (st *state) maybeFinishEval(a *Aggregator) {
	if len(st.evalResults)+len(st.skipped) < st.shards {
		st.dispatch(a)
		return
	}
	var lossSum float64
	var top1, top5, count int64
	for i := 0; i < st.shards; i++ { // shard order: a fixed summation order
		e, ok := st.evalResults[i]
		if !ok {
			continue
		}
		lossSum += e.GetLossSum()
		top1 += e.GetTop1()
		top5 += e.GetTop5()
		count += e.GetCount()
	}
	if st.pendingRecord == nil {
		st.pendingRecord = &fedlog.Record{Round: st.round, VirtualClock: st.clock, WallClock: st.wall(a), LearningRate: st.lr}
	}
	if count > 0 {
		acc1, acc5, loss := float64(top1)/float64(count), float64(top5)/float64(count), lossSum/float64(count)
		a.log.Infof("%s", fedlog.TestLine(st.round, st.clock, acc1, acc5, loss))
		a.prom.top1.Set(acc1)
		st.pendingRecord.Top1, st.pendingRecord.Top5, st.pendingRecord.TestLoss = &acc1, &acc5, &loss
	} else {
		a.log.Warnf("Round %d: no executor was available to evaluate the model", st.round)
	}
	st.flushRecord(a)
	if a.conf.SaveCheckpoint {
		path := st.checkpointPath(a)
		if err := saveCheckpoint(path, st.checkpoint(a)); err != nil {
			a.log.Errorf("Checkpoint: %v", err)
		} else {
			a.log.Infof("Saved checkpoint of round %d to %s", st.round, path)
		}
		st.saveModel(a)
	}
	st.evalResults = nil
	if st.round >= a.conf.Rounds {
		st.done = true
		return
	}
	st.startTraining(a, st.round+1)
}

func (st *state) complete(s *session, t *task) {
	delete(st.tasks, t.id)
	delete(s.busy, t.id)
}

func (st *state) reject(a *Aggregator, s *session, kind string, round, id int64) {
	st.rejected++
	a.prom.rejected.Inc()
	a.log.Warnf("Rejected a late or duplicate %s result from executor %d (round %d, task %d)", kind, s.rank, round, id)
}

// ---- dispatch and liveness ----

// dispatch hands queued tasks to executors with free slots, sending each
// executor the current model first if it does not have it yet.
func (st *state) dispatch(a *Aggregator) {
	if len(st.queue) == 0 || st.done {
		return
	}
	ranks := st.ranks()
	if len(ranks) == 0 {
		return
	}
	rest := st.queue[:0]
	next := 0
	for _, t := range st.queue {
		if _, live := st.tasks[t.id]; !live {
			continue
		}
		var s *session
		if t.owner != 0 {
			if cand := st.sessions[t.owner]; cand != nil && cand.free() > 0 {
				s = cand
			}
		} else {
			for i := 0; i < len(ranks); i++ {
				cand := st.sessions[ranks[(next+i)%len(ranks)]]
				if cand.free() > 0 {
					s = cand
					next = (next + i + 1) % len(ranks)
					break
				}
			}
		}
		if s == nil {
			rest = append(rest, t)
			continue
		}
		st.assign(a, s, t)
	}
	st.queue = rest
}

func (st *state) ranks() []int32 {
	ranks := make([]int32, 0, len(st.sessions))
	for r := range st.sessions {
		ranks = append(ranks, r)
	}
	sort.Slice(ranks, func(i, j int) bool { return ranks[i] < ranks[j] })
	return ranks
}

func (st *state) assign(a *Aggregator, s *session, t *task) {
	if s.modelVersion != st.version {
		// The announcement, then the values in chunks that share
		// st.model's memory (aggregation makes a new list, it never
		// writes into the one sent).
		v := st.version
		s.send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Model{Model: &pb.Model{Version: v, Tensors: pb.Layout(st.model)}}})
		_ = pb.Chunks(st.model, func(off int64, d []float32) error {
			s.send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_ModelChunk{ModelChunk: &pb.ModelChunk{Version: v, Offset: off, Data: d}}})
			return nil
		})
		s.modelVersion = st.version
	}
	t.assigned = s
	s.busy[t.id] = t
	switch t.kind {
	case trainKind:
		mu := serverOptions(a.conf).ClientProxMu()
		s.send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Train{Train: &pb.TrainTask{
			Round: int64(t.round), TaskId: t.id, ClientId: t.client, ModelVersion: st.version,
			LearningRate: st.lr, Seed: TaskSeed(a.conf.SampleSeed, t.round, t.client), ProxMu: mu,
		}}})
		a.prom.tasks.WithLabelValues("train").Inc()
	case evalKind:
		s.send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Eval{Eval: &pb.EvalTask{
			Round: int64(t.round), TaskId: t.id, ModelVersion: st.version, Shard: int32(t.shard), Start: t.start, End: t.end,
		}}})
		a.prom.tasks.WithLabelValues("eval").Inc()
	}
}

// dropSession forgets an executor and re-issues its unfinished tasks under
// new ids to the survivors.
func (st *state) dropSession(a *Aggregator, s *session, reason string) {
	s.gone = true
	s.abort(reason)
	if st.sessions[s.rank] == s {
		delete(st.sessions, s.rank)
	}
	a.prom.executors.Set(float64(len(st.sessions)))
	if len(st.sessions) == 0 {
		st.lastExecutor = a.now()
	}
	if st.done {
		return
	}
	var ids []int64
	for id := range s.busy {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var what []string
	for _, id := range ids {
		old := s.busy[id]
		delete(st.tasks, id)
		t := &task{kind: old.kind, round: old.round, client: old.client, shard: old.shard, start: old.start, end: old.end, owner: old.owner}
		st.newTask(t)
		if t.kind == trainKind {
			what = append(what, fmt.Sprintf("client %d", t.client))
		} else {
			what = append(what, fmt.Sprintf("test shard %d", t.shard))
		}
	}
	s.busy = map[int64]*task{}
	st.reissued += len(ids)
	a.prom.reissued.Add(float64(len(ids)))
	if len(ids) > 0 {
		a.log.Warnf("Executor %d lost (%s) in round %d; re-issuing %d task(s): %s", s.rank, reason, st.round, len(ids), strings.Join(what, ", "))
	} else {
		a.log.Warnf("Executor %d lost (%s)", s.rank, reason)
	}
	st.abandonOrphans(a)
	st.dispatch(a)
}

// abandonOrphans gives up, in deployment mode, the queued tasks whose
// executor is not connected: the client's data lives only on that device,
// so like a real device that went away it drops out of this round (or this
// evaluation). While no executor at all is connected nothing is given up:
// the job waits for executors (bounded by ExecutorWait) instead of rushing
// through empty rounds.
func (st *state) abandonOrphans(a *Aggregator) {
	if !a.deployment() || len(st.sessions) == 0 || st.done {
		return
	}
	var gone []string
	rest := st.queue[:0]
	for _, t := range st.queue {
		if _, live := st.tasks[t.id]; !live {
			continue
		}
		if t.owner == 0 || st.sessions[t.owner] != nil {
			rest = append(rest, t)
			continue
		}
		delete(st.tasks, t.id)
		if t.kind == trainKind {
			kept := st.kept[:0]
			for _, k := range st.kept {
				if k.Client != t.client {
					kept = append(kept, k)
				}
			}
			st.kept = kept
			gone = append(gone, fmt.Sprintf("client %d", t.client))
		} else {
			st.skipped[t.shard] = true
			gone = append(gone, fmt.Sprintf("the test data of executor %d", t.owner))
		}
	}
	st.queue = rest
	if len(gone) == 0 {
		return
	}
	a.log.Warnf("Round %d: giving up %s: the executor holding the data is not connected", st.round, strings.Join(gone, ", "))
	switch st.phase {
	case training:
		if len(st.trainResults) == len(st.kept) {
			st.finishTraining(a)
		}
	case evaluating:
		st.maybeFinishEval(a)
	}
}

func (st *state) checkLiveness(a *Aggregator) {
	now := a.now()
	for _, r := range st.ranks() {
		s := st.sessions[r]
		seen := s.lastSeen
		if r := time.Unix(0, s.lastRecv.Load()); r.After(seen) {
			seen = r
		}
		if silent := now.Sub(seen); silent > a.opt.ExecutorTimeout {
			st.dropSession(a, s, fmt.Sprintf("no heartbeat for %s", silent.Round(time.Millisecond)))
		}
	}
	if len(st.sessions) == 0 && !st.done {
		idle := now.Sub(st.lastExecutor)
		if idle > a.opt.ExecutorWait {
			st.fail(a, fmt.Errorf("no executor connected for %s (waited for %d executor(s) at %s:%d)", idle.Round(time.Second), a.opt.Executors, a.conf.PsIP, a.conf.PsPort))
		} else if st.model != nil && !st.warnedNoExecs && idle > a.opt.ExecutorTimeout {
			st.warnedNoExecs = true
			a.log.Warnf("No executor is connected; round %d waits for one to rejoin (up to %s)", st.round, a.opt.ExecutorWait)
		}
	} else if st.model == nil && !st.done {
		// The job starts once every rank has registered; one that never
		// does (it exited on bad data, say) must not leave the others
		// waiting forever.
		if waited := now.Sub(st.started); waited > a.opt.ExecutorWait {
			var missing []string
			for r := int32(1); r <= int32(a.opt.Executors); r++ {
				if !st.everSeen[r] {
					missing = append(missing, fmt.Sprint(r))
				}
			}
			st.fail(a, fmt.Errorf("executor(s) %s of %d never registered within %s (waited at %s:%d); check their logs",
				strings.Join(missing, ", "), a.opt.Executors, waited.Round(time.Second), a.conf.PsIP, a.conf.PsPort))
		}
	}
}

// fail stops the job with err and tells the executors why.
func (st *state) fail(a *Aggregator, err error) {
	if st.done {
		return
	}
	a.log.Errorf("Job failed: %v", err)
	st.err = err
	st.done = true
}

func (st *state) abortAll(a *Aggregator, reason string) {
	for _, r := range st.ranks() {
		s := st.sessions[r]
		s.gone = true
		s.abort(reason)
		delete(st.sessions, r)
	}
}

// finish tells every executor the job is over and returns the result.
func (st *state) finish(a *Aggregator) (Result, error) {
	reason := "job finished"
	if st.err != nil {
		reason = st.err.Error()
	}
	for _, r := range st.ranks() {
		s := st.sessions[r]
		s.send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Shutdown{Shutdown: &pb.Shutdown{Reason: reason, JobDone: st.err == nil}}})
		s.close()
	}
	// Give the executors a moment to read Shutdown and hang up.
	deadline := time.After(5 * time.Second)
	for len(st.sessions) > 0 {
		select {
		case ev := <-a.events:
			switch e := ev.(type) {
			case evClosed:
				if st.sessions[e.s.rank] == e.s {
					delete(st.sessions, e.s.rank)
				}
			case evHello:
				e.reply <- status.Error(codes.Unavailable, "the job has finished")
			}
		case <-deadline:
			st.abortAll(a, reason)
		}
	}
	st.closeFiles()
	if st.err == nil {
		st.saveModel(a)
		a.log.Infof("Job %s finished: %d rounds, virtual clock %s s, wall clock %d s", a.conf.JobName, st.round, fedlog.PyFloat(st.clock), int64(st.wall(a)))
	}
	return st.result(a), st.err
}

func (st *state) result(a *Aggregator) Result {
	r := Result{Rounds: st.round, VirtualClock: st.clock, Reissued: st.reissued, Rejected: st.rejected, ResumedAt: st.resumedAt,
		FinalModel: st.model, LogDir: a.logDir, MetricsFile: filepath.Join(a.logDir, "metrics.jsonl"), RoundsTrained: st.roundsTrained}
	// Only when the file holds FinalModel: a failed job, or a failed last
	// write, may leave an older checkpoint's model there.
	if st.err == nil && st.modelSaved == st.round+1 {
		r.ModelFile = a.ModelPath()
	}
	if st.last.Top1 != nil {
		r.Top1, r.Top5, r.TestLoss = *st.last.Top1, *st.last.Top5, *st.last.TestLoss
	}
	return r
}
