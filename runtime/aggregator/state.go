package aggregator

// The job's state and the events that change it: registration, rounds,
// aggregation and evaluation. Scheduling is in scheduler.go, the
// simulation/deployment difference in mode.go, checkpoints in
// checkpoint.go.

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
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
	"github.com/fedscale/fedscale-go/runtime/tfevents"
)

// phase is what the job is doing: waiting for every executor to register,
// training a round, or evaluating the model.
type phase int

const (
	waiting phase = iota
	training
	evaluating
)

// state is the job, owned by the event loop: registration, the rounds
// (selection, training, aggregation, evaluation), the model, the metrics
// file and the checkpoint (checkpoint.go). Who runs which task is its
// scheduler's; what differs between simulation and deployment is its
// mode's. Events (below) are applied to it on the loop goroutine.
type state struct {
	*env
	mode  mode
	sched scheduler

	// initModel is job_conf.model_init_file's tensors until the job
	// starts; initDigest is the file's SHA-256 (part of the checkpoint
	// fingerprint), "" without the key.
	initModel  tensor.List
	initDigest string

	// expect is what the job file fixes of the data (jobdata.go). data is
	// the job's data description: the one the aggregator derived from
	// data_dir (expect.derived) or else the one a majority of the ranks
	// agreed on (agree); until then claims holds each rank's latest.
	expect jobData
	data   *pb.DataInfo
	claims map[int32]*pb.DataInfo
	// samples is every client's training sample count, from data: what a
	// result's num_samples must say.
	samples  []int64
	registry *selection.Registry
	server   aggregate.Server

	phase   phase
	round   int // current round (training) or the round just evaluated
	clock   float64
	lr      float64
	model   tensor.List
	version int64

	planned      int
	kept         []selection.Selected
	roundTime    float64
	trainResults map[int64]trainResult
	evalResults  map[int]*pb.EvalResult
	shards       int
	skipped      map[int]bool // deployment: shards whose executor was lost

	started       time.Time
	wallOffset    float64 // wall seconds of earlier runs of a resumed job
	pendingRecord *fedlog.Record

	rejected      int
	resumedAt     int
	roundsTrained int
	last          fedlog.Record
	timeStamp     string

	metrics *fedlog.Metrics
	events  *tfevents.Writer // tensorboard.go
	// modelSaved is 1 + the round whose model saveModel wrote last; 0 =
	// none yet.
	modelSaved int
	done       bool
	err        error
}

func newState(e *env, m mode, expect jobData, initModel tensor.List, initDigest string) state {
	return state{env: e, mode: m, sched: newScheduler(e), expect: expect, data: expect.derived, initModel: initModel, initDigest: initDigest}
}

// open starts the job's clocks: Run calls it as it begins accepting
// executors.
func (st *state) open() {
	st.lr = st.conf.LearningRate
	st.started = st.now()
	st.sched.open(st.started)
	st.timeStamp = st.conf.TimeStamp
	if n := st.expect.note(st.conf); n != "" {
		st.log.Infof("%s", n)
	}
}

// ---- events ----

// event is what a session goroutine hands the loop; apply runs on the loop.
type event interface{ apply(st *state) }

// evHello is a new session's Hello; reply gets nil to welcome it or the
// status to end the stream with.
type evHello struct {
	s     *session
	hello *pb.Hello
	reply chan error
}

// evMessage is a message received on a registered session.
type evMessage struct {
	s *session
	m *pb.ExecutorMessage
}

// evClosed is a session's stream ending; err is nil for a clean hang-up.
type evClosed struct {
	s   *session
	err error
}

func (e evHello) apply(st *state) {
	err := st.hello(e.s, e.hello)
	e.reply <- err
}

func (e evMessage) apply(st *state) {
	s := e.s
	if !st.sched.current(s) {
		return // a message from a session we already dropped
	}
	s.lastSeen = st.now()
	switch b := e.m.GetBody().(type) {
	case *pb.ExecutorMessage_Heartbeat:
	case *pb.ExecutorMessage_UpdateChunk:
		st.updateChunk(s, b.UpdateChunk)
	case *pb.ExecutorMessage_TrainResult:
		st.trainResult(s, b.TrainResult)
	case *pb.ExecutorMessage_EvalResult:
		st.evalResult(s, b.EvalResult)
	case *pb.ExecutorMessage_TaskFailure:
		st.taskFailure(s, b.TaskFailure)
	case *pb.ExecutorMessage_Hello:
		st.log.Warnf("Executor %d sent a second Hello on one session; ignored", s.rank)
	}
}

func (e evClosed) apply(st *state) {
	if !st.sched.current(e.s) {
		return
	}
	reason := "disconnected"
	if e.err != nil {
		reason = "disconnected: " + status.Convert(e.err).Message()
	}
	st.dropSession(e.s, reason)
}

// ---- registration ----

func (st *state) hello(s *session, h *pb.Hello) error {
	if st.done {
		return status.Error(codes.Unavailable, "the job has finished")
	}
	if h.GetJobName() != st.conf.JobName {
		return status.Errorf(codes.FailedPrecondition, "executor belongs to job %q, this aggregator runs job %q", h.GetJobName(), st.conf.JobName)
	}
	if r := h.GetRank(); r < 1 || int(r) > st.opt.Executors {
		return status.Errorf(codes.FailedPrecondition, "executor rank %d is outside 1..%d (the job's num_executors)", r, st.opt.Executors)
	}
	if err := st.bans.refused(h.GetRank()); err != nil {
		return err
	}
	mode := config.Mode(h.GetMode())
	if mode == "" {
		mode = config.Simulation // the proto3 default: an executor that did not say
	}
	if want := st.conf.ExperimentMode; mode != want {
		return status.Errorf(codes.FailedPrecondition, "executor %d runs experiment_mode %q but the aggregator runs %q: use one job file for both", h.GetRank(), mode, want)
	}
	if err := st.checkData(h.GetRank(), h.GetData()); err != nil {
		return status.Errorf(codes.FailedPrecondition, "executor %d: %v", h.GetRank(), err)
	}
	old, rejoin := st.sched.register(s)
	s.send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Welcome{Welcome: &pb.Welcome{
		ProtocolVersion:     pb.ProtocolVersion,
		JobName:             st.conf.JobName,
		TimeStamp:           st.timeStamp,
		HeartbeatIntervalMs: st.opt.HeartbeatInterval.Milliseconds(),
		Training: &pb.TrainingConfig{
			Model:       st.conf.Model,
			BatchSize:   int32(st.conf.BatchSize),
			LocalSteps:  int32(st.conf.LocalSteps),
			Momentum:    0.9,
			WeightDecay: st.conf.WeightDecay,
			LossDecay:   st.conf.LossDecay,
			TestBsz:     int32(st.conf.TestBsz),
			Classes:     h.GetData().GetClasses(), // the job's, once agreed: checkData
		},
	}}})
	if old != nil {
		// A restarted executor: replace its old stream (after the new one
		// is welcomed, so tasks re-issued to it follow the Welcome). Its
		// clients are already registered and are not added again.
		st.dropSession(old, fmt.Sprintf("replaced by a new connection (incarnation %s)", s.incarnation))
	}
	if rejoin {
		st.log.Infof("Executor %d rejoined (incarnation %s, %d slots); its clients stay registered", s.rank, s.incarnation, s.slots)
	} else {
		st.log.Infof("Executor %d registered (incarnation %s, %d slots), %d clients, %d test samples",
			s.rank, s.incarnation, s.slots, len(h.GetData().GetClientSamples()), h.GetData().GetTestSamples())
	}
	if st.phase == waiting && st.model == nil && st.sched.registered() == st.opt.Executors {
		if err := st.agree(); err != nil {
			st.fail(err)
			return nil
		}
		if err := st.start(); err != nil {
			st.fail(err)
			return nil
		}
	}
	st.abandonOrphans()
	st.dispatch()
	return nil
}

// checkData admits executor rank's data description d: its counts and
// sizes must be possible, it must fit what the job file fixes (jobData:
// the model's sizes, a pinned digest), agree with the job's data once
// that is known (derived by the aggregator from the start, or fixed by a
// majority of the ranks, agree; until then d is kept as rank's claim),
// and pass the mode's own checks. A refused description changes nothing:
// one executor's claim never locks the others out.
func (st *state) checkData(rank int32, d *pb.DataInfo) error {
	if d == nil || len(d.GetClientSamples()) == 0 {
		return fmt.Errorf("reports no training clients")
	}
	for i, n := range d.GetClientSamples() {
		if n < 0 {
			return fmt.Errorf("reports client %d with %d training samples", i, n)
		}
	}
	if d.GetTestSamples() < 0 || d.GetClasses() < 1 || d.GetChannels() < 1 || d.GetHeight() < 1 || d.GetWidth() < 1 {
		return fmt.Errorf("reports impossible data: %d test samples, %d classes of %dx%dx%d inputs",
			d.GetTestSamples(), d.GetClasses(), d.GetChannels(), d.GetHeight(), d.GetWidth())
	}
	if err := st.expect.check(d); err != nil {
		return err
	}
	if st.data != nil {
		if got, want := st.mode.agreement(d), st.mode.agreement(st.data); got != want {
			whose := "which most executors agreed on"
			if st.expect.derived != nil {
				whose = "as the aggregator reads data_dir"
			}
			return fmt.Errorf("loaded other data (%s) than the job's (%s, %s): point every executor at the same data_dir", got, want, whose)
		}
	}
	if err := st.mode.admit(rank, d, st.registry != nil); err != nil {
		return err
	}
	if st.data == nil {
		if st.claims == nil {
			st.claims = map[int32]*pb.DataInfo{}
		}
		st.claims[rank] = d
	}
	return nil
}

// agree fixes the job's data description once every rank has registered:
// the one a strict majority of the ranks reported (the lowest such rank's
// message). Connected executors with another description are dropped,
// and refused when they come back with it. Without a majority the job
// fails, naming who reported what: nothing tells the right data from the
// wrong.
func (st *state) agree() error {
	if st.data != nil {
		return nil
	}
	n := int32(st.opt.Executors) // New bounds it by config.MaxExecutors
	groups := map[dataKey][]int32{}
	var order []dataKey // by lowest rank
	for r := int32(1); r <= n; r++ {
		k := st.mode.agreement(st.claims[r])
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var agreed dataKey
	for _, k := range order {
		if 2*len(groups[k]) > int(n) {
			agreed = k
			st.data = st.claims[groups[k][0]]
		}
	}
	if st.data == nil {
		var who []string
		for _, k := range order {
			who = append(who, fmt.Sprintf("executor(s) %s loaded %s", joinRanks(groups[k]), k))
		}
		return fmt.Errorf("the executors disagree on the data and no majority of the %d agrees: %s; point every executor at the same data_dir",
			n, strings.Join(who, "; "))
	}
	for _, k := range order {
		if k == agreed {
			continue
		}
		for _, r := range groups[k] {
			reason := fmt.Sprintf("loaded other data (%s) than the job's (%s, which executors %s agree on)", k, agreed, joinRanks(groups[agreed]))
			st.log.Errorf("Refusing executor %d: it %s; point it at the same data_dir", r, reason)
			if s := st.sched.sessions[r]; s != nil {
				st.dropSession(s, reason)
			}
		}
	}
	st.claims = nil
	return nil
}

func joinRanks(ranks []int32) string {
	s := make([]string, len(ranks))
	for i, r := range ranks {
		s[i] = strconv.Itoa(int(r))
	}
	return strings.Join(s, ", ")
}

// start builds the client registry and the initial model (or resumes the
// checkpoint), then evaluates the starting model.
func (st *state) start() error {
	c := st.conf
	d := st.data
	spec := model.Spec{Name: c.Model, Channels: int(d.GetChannels()), Height: int(d.GetHeight()), Width: int(d.GetWidth()), Classes: int(d.GetClasses())}
	if c.NumClasses > 0 && c.NumClasses != spec.Classes {
		return fmt.Errorf("job_conf.num_classes is %d but the data has %d classes", c.NumClasses, spec.Classes)
	}
	params, err := st.initialModel(spec)
	if err != nil {
		return err
	}
	srv, err := aggregate.New(serverOptions(c))
	if err != nil {
		return fmt.Errorf("job_conf.gradient_policy: %w", err)
	}
	samples := st.mode.clients(d)
	reg, err := selection.NewRegistry(samples, st.opt.Capacities, st.opt.Behaviors, selection.Options{
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
	if e := reg.Eligible(); c.NumParticipants > e {
		st.log.Warnf("job_conf.num_participants is %d but only %d clients are eligible: each round trains at most %d", c.NumParticipants, e, e)
	}
	st.registry, st.server, st.model, st.samples = reg, srv, params, samples
	st.prom.clients.Set(float64(reg.Eligible()))
	st.prom.rounds.Set(float64(c.Rounds))
	st.log.Infof("Registered %d clients (%d eligible), model %s with %d parameters, %d test samples",
		len(samples), reg.Eligible(), c.Model, params.NumElements(), d.GetTestSamples())

	if st.opt.Resume {
		if ck, ok, err := loadCheckpoint(st.checkpointPath(), st.fingerprint()); err != nil {
			st.log.Warnf("Not resuming: %v", err)
		} else if ok {
			if err := st.restore(ck); err != nil {
				st.log.Warnf("Not resuming from %s: %v", st.checkpointPath(), err)
				st.model, st.server = params, srv
				st.round, st.clock, st.lr, st.version = 0, 0, c.LearningRate, 0
			} else {
				st.log.Infof("Resumed job %s from checkpoint after round %d (virtual clock %s)", c.JobName, st.round, fedlog.PyFloat(st.clock))
			}
		}
	}
	if err := st.openFiles(); err != nil {
		return err
	}
	if st.round > 0 {
		st.resumedAt = st.round
		// The job document goes on from the earlier runs' rounds, so a
		// page opened now draws the whole curve.
		if recs, dropped, err := earlierHistory(filepath.Dir(st.logDir), filepath.Join(st.logDir, "metrics.jsonl"), st.round); err != nil {
			st.log.Warnf("The job document holds this run's rounds only: reading the earlier runs' metrics: %v", err)
		} else {
			st.mon.seed(recs, dropped)
		}
		if st.round >= c.Rounds {
			st.done = true
			return nil
		}
		st.startTraining(st.round + 1)
		return nil
	}
	st.startEval(0)
	return nil
}

// initialModel is job_conf.model_init_file's model, checked against spec's
// names and shapes, or else spec's model initialised from the job's seed.
func (st *state) initialModel(spec model.Spec) (tensor.List, error) {
	if st.initModel == nil {
		params, err := model.Init(spec, ModelSeed(st.conf.SampleSeed))
		if err != nil {
			return nil, fmt.Errorf("job_conf.model: %w", err)
		}
		return params, nil
	}
	want, err := model.Layout(spec)
	if err != nil {
		return nil, fmt.Errorf("job_conf.model: %w", err)
	}
	params, err := safetensors.Match(want, st.initModel)
	if err != nil {
		return nil, fmt.Errorf("job_conf.model_init_file %s does not fit model %s: %w", st.conf.ModelInitFile, spec, err)
	}
	st.initModel = nil // the list lives on in params
	st.log.Infof("Starting from the model in %s (job_conf.model_init_file)", st.conf.ModelInitFile)
	return params, nil
}

// saveModel writes the global model as safetensors to ModelPath, once per
// round. A failure is logged; the job goes on.
func (st *state) saveModel() {
	if st.model == nil || st.modelSaved == st.round+1 {
		return
	}
	path := st.modelPath()
	meta := map[string]string{"format": "pt", "model": st.conf.Model, "round": strconv.Itoa(st.round)}
	if err := safetensors.WriteFile(path, st.model, meta); err != nil {
		st.log.Errorf("Saving the model: %v", err)
		return
	}
	st.modelSaved = st.round + 1
	st.log.Infof("Saved the model of round %d to %s", st.round, path)
}

func (st *state) openFiles() error {
	m, err := fedlog.OpenMetrics(filepath.Join(st.logDir, "metrics.jsonl"))
	if err != nil {
		return err
	}
	st.metrics = m
	return st.openEvents()
}

func (st *state) closeFiles() {
	if st.metrics != nil {
		_ = st.metrics.Close()
		st.metrics = nil
	}
	if st.events != nil {
		_ = st.events.Close()
		st.events = nil
	}
}

// ---- rounds ----

func (st *state) startTraining(round int) {
	st.phase, st.round = training, round
	st.trainResults = map[int64]trainResult{}
	var sel selection.Round
	var err error
	// With traces, nobody may be online at this instant: move the virtual
	// clock on until someone is, as a real deployment would wait.
	for tries := 0; ; tries++ {
		sel, err = st.registry.Select(round, st.clock)
		if err != nil {
			st.fail(fmt.Errorf("round %d: selecting participants: %w", round, err))
			return
		}
		if len(sel.Kept) > 0 {
			break
		}
		if tries == 10000 {
			st.fail(fmt.Errorf("round %d: no client came online within %s s of virtual time", round, fedlog.PyFloat(float64(tries)*60)))
			return
		}
		st.clock += 60
	}
	st.kept, st.roundTime = sel.Kept, sel.Duration
	st.planned = len(sel.Kept) + len(sel.Stragglers)
	for _, k := range sel.Kept {
		st.sched.add(&task{kind: trainKind, round: round, client: k.Client, owner: st.mode.owner(k.Client)})
	}
	st.abandonOrphans()
	st.prom.round.Set(float64(round))
	st.log.Debugf("Round %d: %d planned, training %d clients at lr %s", round, st.planned, len(sel.Kept), fedlog.PyFloat(st.lr))
	st.dispatch()
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
func (st *state) updateChunk(s *session, c *pb.UpdateChunk) {
	t := st.sched.held(s, c.GetTaskId())
	if t == nil || t.kind != trainKind {
		return
	}
	if t.update == nil {
		t.update = pb.NewAssembly(st.model.ZerosLike())
	}
	if err := t.update.Add(c.GetOffset(), c.GetData()); err != nil {
		st.taskFailed(s, t, fmt.Sprintf("malformed update: %v", err), false)
	}
}

func (st *state) trainResult(s *session, r *pb.TrainResult) {
	t := st.sched.held(s, r.GetTaskId())
	if t == nil {
		st.reject(s, "train", r.GetRound(), r.GetTaskId())
		return
	}
	if why := st.checkTrain(t, r); why != "" {
		// The task is live and this executor holds it, yet the result is
		// not one an honest executor sends: the executor's failure, not
		// the job's.
		st.taskFailed(s, t, why, false)
		return
	}
	st.sched.accepted(s, t, st.now())
	st.trainResults[t.client] = trainResult{r: r, w: t.update.List()}
	if len(st.trainResults) == len(st.kept) {
		st.finishTraining()
		return
	}
	st.dispatch()
}

// checkTrain says what is wrong with r as the result of t, a training
// task its executor held, or "" when nothing is: it must describe t, bring
// the whole update, claim the client's true sample count (the FedAvg
// weight: the aggregator knows it, a claim cannot buy weight) and a loss
// that is not negative. A non-finite loss or update is not refused here:
// honest training diverges too, and such an update is left out at
// aggregation.
func (st *state) checkTrain(t *task, r *pb.TrainResult) string {
	if t.kind != trainKind || int64(t.round) != r.GetRound() || t.client != r.GetClientId() {
		return fmt.Sprintf("answered task %d (round %d, client %d) with a train result for round %d, client %d",
			t.id, t.round, t.client, r.GetRound(), r.GetClientId())
	}
	if t.update == nil || !t.update.Complete() {
		var got, want int64
		if t.update != nil {
			got, want = t.update.Progress()
		} else {
			want = int64(st.model.NumElements())
		}
		return fmt.Sprintf("malformed update for client %d: %d of the model's %d values arrived", t.client, got, want)
	}
	if want := st.samples[t.client]; r.GetNumSamples() != want {
		return fmt.Sprintf("claimed %d training samples for client %d, which has %d", r.GetNumSamples(), t.client, want)
	}
	if r.GetMovingLoss() < 0 {
		return fmt.Sprintf("reported a negative training loss %v for client %d", r.GetMovingLoss(), t.client)
	}
	return ""
}

func (st *state) finishTraining() {
	c := st.conf
	updates := make([]aggregate.Update, 0, len(st.kept))
	// st.kept is in client-id order: the aggregation order never depends
	// on which executor finished first.
	for _, k := range st.kept {
		res := st.trainResults[k.Client]
		r, w := res.r, res.w
		err := w.CheckFinite()
		if loss := r.GetMovingLoss(); err == nil && !finite(loss) {
			err = fmt.Errorf("training loss %v", loss)
		}
		if err != nil {
			st.log.Warnf("Round %d: client %d diverged (%v); its update is left out", st.round, k.Client, err)
			continue
		}
		updates = append(updates, aggregate.Update{ClientID: k.Client, Weights: w, NumSamples: r.GetNumSamples(), Loss: r.GetMovingLoss()})
	}
	switch {
	case len(updates) == 0 && len(st.kept) > 0:
		st.fail(fmt.Errorf("round %d: every client's update diverged (non-finite weights); lower learning_rate", st.round))
		return
	case len(updates) == 0:
		// Deployment mode: every participant's device went away.
		st.log.Warnf("Round %d: no participant reported; the model is unchanged", st.round)
	default:
		next, kept, err := st.step(updates)
		if err != nil {
			st.fail(fmt.Errorf("round %d: aggregation: %w", st.round, err))
			return
		}
		if next != nil {
			st.model = next
		}
		updates = kept
	}
	losses := make([]float64, len(updates))
	for i, u := range updates {
		losses[i] = u.Loss
	}
	st.version = int64(st.round)
	st.trainResults = nil
	st.clock += st.roundTime
	st.roundsTrained++
	if st.round%c.DecayRound == 0 {
		st.lr = math.Max(st.lr*c.DecayFactor, c.MinLearningRate)
	}
	loss := mean(losses)
	wall := st.wall()
	st.log.Infof("%s", fedlog.RoundLine(wall, st.round, st.planned, len(updates), loss))
	st.prom.roundsDone.Inc()
	st.prom.clock.Set(st.clock)
	rec := fedlog.Record{Round: st.round, VirtualClock: st.clock, WallClock: wall, Participants: len(updates), Planned: st.planned, LearningRate: st.lr}
	if len(losses) > 0 {
		rec.Loss = st.metric(&rec, "loss", loss)
	}
	st.pendingRecord = &rec
	if st.round%c.EvalInterval == 0 || st.round >= c.Rounds {
		st.startEval(st.round)
		return
	}
	st.flushRecord()
	st.startTraining(st.round + 1)
}

// step aggregates updates, leaving out each update the policy refuses as
// its client's fault (aggregate.ClientError), one at a time, and returns
// the next model (nil when every update was refused: the model stays) and
// the updates it holds.
func (st *state) step(updates []aggregate.Update) (tensor.List, []aggregate.Update, error) {
	for {
		next, err := st.server.Step(st.model, updates, st.lr)
		var ce *aggregate.ClientError
		if err == nil || !errors.As(err, &ce) {
			return next, updates, err
		}
		i := slices.IndexFunc(updates, func(u aggregate.Update) bool { return u.ClientID == ce.ClientID })
		if i < 0 {
			return nil, nil, err
		}
		st.log.Warnf("Round %d: client %d's update is left out: %v", st.round, ce.ClientID, ce.Err)
		updates = slices.Delete(slices.Clone(updates), i, i+1)
		if len(updates) == 0 {
			st.log.Warnf("Round %d: every update was left out; the model is unchanged", st.round)
			return nil, nil, nil
		}
	}
}

// metric sets one of rec's values: v, or, with a warning, its record
// under non_finite when v is NaN or infinite (JSON cannot hold it as a
// number; the line is still written).
func (st *state) metric(rec *fedlog.Record, key string, v float64) *float64 {
	if !finite(v) {
		st.log.Warnf("Round %d: the %s is %v; metrics.jsonl records it under non_finite", st.round, strings.ReplaceAll(key, "_", " "), v)
	}
	return rec.Value(key, v)
}

func (st *state) wall() float64 {
	return st.wallOffset + st.now().Sub(st.started).Seconds()
}

func (st *state) flushRecord() {
	if st.pendingRecord == nil {
		return
	}
	st.pendingRecord.ReissuedTasks = st.sched.reissued
	st.last = *st.pendingRecord
	st.mon.recorded(st.now(), st.last)
	st.writeEvents(st.last)
	if st.metrics != nil {
		if err := st.metrics.Write(*st.pendingRecord); err != nil {
			st.log.Errorf("%v", err)
		}
	}
	st.pendingRecord = nil
}

// startEval queues round's evaluation of the model, one task per test
// shard as the mode splits the test data.
func (st *state) startEval(round int) {
	st.phase, st.round = evaluating, round
	st.evalResults = map[int]*pb.EvalResult{}
	st.skipped = map[int]bool{}
	tasks := st.mode.evalTasks(st.data, round)
	st.shards = len(tasks)
	for _, t := range tasks {
		st.sched.add(t)
	}
	st.abandonOrphans()
	st.dispatch()
}

func (st *state) evalResult(s *session, r *pb.EvalResult) {
	t := st.sched.held(s, r.GetTaskId())
	if t == nil {
		st.reject(s, "eval", r.GetRound(), r.GetTaskId())
		return
	}
	if why := checkEval(t, r); why != "" {
		st.taskFailed(s, t, why, false)
		return
	}
	st.sched.accepted(s, t, st.now())
	st.evalResults[t.shard] = r
	st.maybeFinishEval()
}

// checkEval says what is wrong with r as the result of t, an evaluation
// task its executor held, or "" when nothing is: it must describe t, count
// exactly t's samples, and claim between 0 and that many top-1 and top-5
// hits, and a loss sum that is not negative. A non-finite loss sum is not
// refused (an honest model can overflow); the test loss is then left out
// of the metrics.
func checkEval(t *task, r *pb.EvalResult) string {
	n := t.end - t.start
	switch {
	case t.kind != evalKind || int64(t.round) != r.GetRound() || int32(t.shard) != r.GetShard():
		return fmt.Sprintf("answered task %d (round %d, test shard %d) with an eval result for round %d, shard %d",
			t.id, t.round, t.shard, r.GetRound(), r.GetShard())
	case r.GetCount() != n:
		return fmt.Sprintf("evaluated %d samples of shard %d, want %d", r.GetCount(), t.shard, n)
	case r.GetTop1() < 0 || r.GetTop1() > n || r.GetTop5() < 0 || r.GetTop5() > n:
		return fmt.Sprintf("claimed %d top-1 and %d top-5 hits of shard %d's %d samples", r.GetTop1(), r.GetTop5(), t.shard, n)
	case r.GetLossSum() < 0:
		return fmt.Sprintf("reported a negative test loss sum %v for shard %d", r.GetLossSum(), t.shard)
	}
	return ""
}

// maybeFinishEval combines the evaluation once every shard has reported or
// (deployment mode) been given up with its executor.
func (st *state) maybeFinishEval() {
	if len(st.evalResults)+len(st.skipped) < st.shards {
		st.dispatch()
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
		st.pendingRecord = &fedlog.Record{Round: st.round, VirtualClock: st.clock, WallClock: st.wall(), LearningRate: st.lr}
	}
	if count > 0 {
		acc1, acc5, loss := float64(top1)/float64(count), float64(top5)/float64(count), lossSum/float64(count)
		st.log.Infof("%s", fedlog.TestLine(st.round, st.clock, acc1, acc5, loss))
		st.prom.top1.Set(acc1)
		st.pendingRecord.Top1, st.pendingRecord.Top5, st.pendingRecord.TestLoss = &acc1, &acc5, st.metric(st.pendingRecord, "test_loss", loss)
	} else {
		st.log.Warnf("Round %d: no executor was available to evaluate the model", st.round)
	}
	st.flushRecord()
	if st.conf.SaveCheckpoint {
		path := st.checkpointPath()
		if err := saveCheckpoint(path, st.checkpoint()); err != nil {
			st.log.Errorf("Checkpoint: %v", err)
		} else {
			st.log.Infof("Saved checkpoint of round %d to %s", st.round, path)
			st.mon.checkpointed(st.now(), st.round)
		}
		st.saveModel()
	}
	st.evalResults = nil
	if st.round >= st.conf.Rounds {
		st.done = true
		return
	}
	st.startTraining(st.round + 1)
}

// reject counts a result for a task its executor does not hold (late,
// duplicate, for work another copy finished or that was given up, or
// never issued) and drops it. The task it may have meant stays with its
// deadline.
func (st *state) reject(s *session, kind string, round, id int64) {
	st.rejected++
	st.prom.rejected.Inc()
	st.log.Warnf("Rejected a late or duplicate %s result from executor %d (round %d, task %d)", kind, s.rank, round, id)
}

// taskFailure is an executor reporting that it could not do a task.
func (st *state) taskFailure(s *session, f *pb.TaskFailure) {
	t := st.sched.held(s, f.GetTaskId())
	if t == nil {
		st.reject(s, "failure", f.GetRound(), f.GetTaskId())
		return
	}
	msg := f.GetError()
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	st.taskFailed(s, t, fmt.Sprintf("reported %q", msg), false)
}

// taskFailed handles a task that s holds and did not do (why): a failure
// it reported or a result that was refused, or (missed) its deadline
// passing. s gets a strike and may be evicted; the work goes to another
// executor (a task past its deadline stays s's too, which may still
// answer first), or after maxTaskFailures is given up for the round like
// a client whose device went away.
func (st *state) taskFailed(s *session, t *task, why string, missed bool) {
	var gaveUp *task
	var evict string
	if missed {
		gaveUp, evict = st.sched.missed(s, t, st.now())
	} else {
		gaveUp, evict = st.sched.failed(s, t)
	}
	st.log.Warnf("Executor %d failed %s of round %d (task %d; strike %d of %d): %s",
		s.rank, t.what(), t.round, t.id, s.strikes, maxStrikes, why)
	if evict != "" {
		st.evict(s, evict+"; last: "+why)
	}
	if gaveUp != nil {
		st.giveUp([]*task{gaveUp}, fmt.Sprintf("after %d failures", gaveUp.work.failures))
		return
	}
	st.dispatch()
}

// evict bans s's rank and drops it, re-issuing its tasks; the job fails
// once every rank is evicted.
func (st *state) evict(s *session, reason string) {
	st.sched.ban(s, reason)
	st.dropSession(s, "evicted: "+reason)
	if st.sched.allBanned() {
		st.fail(fmt.Errorf("every executor was evicted; the last, executor %d: %s", s.rank, reason))
	}
}

// ---- executors coming and going ----

// dispatch hands queued tasks to executors with free slots (see
// scheduler.dispatch), with the current model and learning rate; nothing
// once the job is done.
func (st *state) dispatch() {
	if st.done {
		return
	}
	st.sched.dispatch(st.model, st.version, st.lr)
}

// dropSession forgets an executor and re-issues its unfinished tasks under
// new ids to the survivors.
func (st *state) dropSession(s *session, reason string) {
	st.sched.remove(s, reason)
	if st.done {
		return
	}
	st.sched.reissue(s, reason, st.round)
	st.abandonOrphans()
	st.dispatch()
}

// abandonOrphans gives up the queued tasks pinned to an executor that is
// not connected (deployment mode, see scheduler.orphans): the client's data
// lives only on that device, so like a real device that went away it drops
// out of this round (or this evaluation), which may then be complete.
func (st *state) abandonOrphans() {
	if st.done {
		return
	}
	orphans := st.sched.orphans()
	if len(orphans) == 0 {
		return
	}
	st.giveUp(orphans, "the executor holding the data is not connected")
}

// giveUp drops tasks, already retired, from the current round or
// evaluation (why they are given up is logged): a training task's client
// leaves the round, an evaluation task's test shard is left out of the
// metrics; either may complete the round or the evaluation.
func (st *state) giveUp(tasks []*task, why string) {
	if st.done {
		return
	}
	var gone []string
	for _, t := range tasks {
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
			if t.owner != 0 {
				gone = append(gone, fmt.Sprintf("the test data of executor %d", t.owner))
			} else {
				gone = append(gone, t.what())
			}
		}
	}
	st.log.Warnf("Round %d: giving up %s: %s", st.round, strings.Join(gone, ", "), why)
	switch st.phase {
	case training:
		if len(st.trainResults) == len(st.kept) {
			st.finishTraining()
		}
	case evaluating:
		st.maybeFinishEval()
	}
}

// checkLiveness drops the executors that went silent and fails the job
// when executors stay away too long (see scheduler.silent and overdue).
func (st *state) checkLiveness() {
	now := st.now()
	for _, l := range st.sched.silent(now) {
		st.dropSession(l.s, l.reason)
	}
	for _, o := range st.sched.overdueTasks(now) {
		if st.done {
			return
		}
		if st.sched.held(o.s, o.t.id) != o.t {
			continue // retired already in this loop: its executor was evicted, or its work given up
		}
		st.taskFailed(o.s, o.t, fmt.Sprintf("no result within %s", o.limit), true)
	}
	if st.done {
		return
	}
	if err := st.sched.overdue(now, st.started, st.model != nil, st.round); err != nil {
		st.fail(err)
	}
}

// fail stops the job with err and tells the executors why.
func (st *state) fail(err error) {
	if st.done {
		return
	}
	st.log.Errorf("Job failed: %v", err)
	st.mon.failed(st.now(), err)
	st.err = err
	st.done = true
}

// finish closes the job's files, saves the final model of a job that
// succeeded and returns the result, once the executors have been told
// (Aggregator.finish).
func (st *state) finish() (Result, error) {
	st.closeFiles()
	if st.err == nil {
		st.saveModel()
		st.log.Infof("Job %s finished: %d rounds, virtual clock %s s, wall clock %d s", st.conf.JobName, st.round, fedlog.PyFloat(st.clock), int64(st.wall()))
	}
	return st.result(), st.err
}

func (st *state) result() Result {
	r := Result{Rounds: st.round, VirtualClock: st.clock, Reissued: st.sched.reissued, Rejected: st.rejected, ResumedAt: st.resumedAt,
		FinalModel: st.model, LogDir: st.logDir, MetricsFile: filepath.Join(st.logDir, "metrics.jsonl"), RoundsTrained: st.roundsTrained}
	// Only when the file holds FinalModel: a failed job, or a failed last
	// write, may leave an older checkpoint's model there.
	if st.err == nil && st.modelSaved == st.round+1 {
		r.ModelFile = st.modelPath()
	}
	if st.last.Top1 != nil {
		r.Top1, r.Top5, r.TestLoss = *st.last.Top1, *st.last.Top5, math.NaN()
		if st.last.TestLoss != nil {
			r.TestLoss = *st.last.TestLoss
		}
	}
	return r
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
