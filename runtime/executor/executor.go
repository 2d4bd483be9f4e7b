// Package executor is the client side of a federated job: it loads the data
// set, registers with the aggregator, trains the clients it is told to train
// (many simulated clients in one process), evaluates its share of the test
// set, and reconnects when the aggregator restarts.
package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/data"
	"github.com/fedscale/fedscale-go/runtime/datadesc"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/health"
	"github.com/fedscale/fedscale-go/runtime/model"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// NewTrainer makes the compute backend for a model: cpu.New, or the one
// runtime/device selects.
type NewTrainer func(model.Spec) (model.Trainer, error)

// Options configures an Executor.
type Options struct {
	Conf config.Conf // job_conf after overrides: job name, data, aggregator address
	Rank int         // 1..num_executors
	// Slots is how many tasks run at once (default 1). Training is
	// single-threaded and CPU-bound, so at most GOMAXPROCS of them compute
	// at the same time; the others wait for a free trainer. More would
	// only time-slice the cores and multiply the memory a model needs
	// (its weights, momentum and activations per trainer).
	Slots int
	// Backend builds trainers (required).
	Backend NewTrainer
	Log     *fedlog.Logger
	// Health, if set, is marked ready while the executor is registered.
	Health *health.Server
	// ConnectTimeout bounds how long the executor keeps trying to reach the
	// aggregator, at start and after losing it (default 2m).
	ConnectTimeout time.Duration
	// Credentials secure the connection to the aggregator (runtime/mtls's
	// ClientCredentials); nil is plain text.
	Credentials credentials.TransportCredentials
	// Data, if set, is used instead of loading Conf.DataDir (tests share
	// one), with its own pipeline (data.Load's is the grey one).
	Data *data.Dataset
	// ImageCacheBytes bounds the decoded images kept in memory (train and
	// test together); 0 keeps them all.
	ImageCacheBytes int64
	// TuneGC sets the collector's GOGC from the model once it is known
	// (see GCPercent). It changes process-wide state: for the executor's
	// main, not for tests or other embedders.
	TuneGC bool
}

// GCPercent is the GOGC an executor runs with when its model takes
// modelBytes and it has trainers trainers: the heap may grow by 32 MiB or
// by 20% of what the models take (each trainer's weights and momentum and
// the global model), whichever is more, up to Go's default of 100%. The
// model-sized slices dominate a large model's heap, and the collector
// does not scan them, so a small slack costs little there (a ResNet-18
// executor with two trainers: about 60 collections of a few milliseconds
// in 20 s, for a peak near 380 MiB instead of 480); a small model's heap
// is mostly batches and decoded images, where a small slack would only
// mean many more collections.
func GCPercent(modelBytes int64, trainers int) int {
	models := max(modelBytes, 0) * int64(2*trainers+1)
	if models <= 0 {
		return 100
	}
	p := 100 * int64(32<<20) / models
	return int(min(max(p, 20), 100))
}

// Executor runs tasks for one aggregator.
type Executor struct {
	opt         Options
	log         *fedlog.Logger
	data        *data.Dataset
	info        *pb.DataInfo
	incarnation string

	// trainers is a pool of compute slots: a trainer and the parameter
	// buffer it trains in, held from training until the result is sent.
	// At most GOMAXPROCS of them exist (see Options.Slots).
	trainers chan *computeSlot
	spec     model.Spec
	layout   tensor.List // spec's tensor names and shapes
	classes  int
	// deployment: this executor is the single client rank-1 (all its data).
	deployment bool

	logOnce sync.Once
	allOnce sync.Once
	all     []int32 // every training sample, for deployment mode
}

// New loads the data and returns an executor ready to Run.
func New(opt Options) (*Executor, error) {
	if opt.Rank < 1 || opt.Rank > config.MaxExecutors {
		return nil, fmt.Errorf("rank: executors are numbered 1..%d, got %d", config.MaxExecutors, opt.Rank)
	}
	if opt.Backend == nil {
		return nil, errors.New("executor: no compute backend")
	}
	switch {
	case opt.Slots < 0:
		return nil, fmt.Errorf("slots: at least 1 task at a time, got %d", opt.Slots)
	case opt.Slots == 0:
		opt.Slots = 1
	case opt.Slots > pb.MaxSlots:
		return nil, fmt.Errorf("slots: at most %d tasks at a time, got %d", pb.MaxSlots, opt.Slots)
	}
	if opt.ConnectTimeout <= 0 {
		opt.ConnectTimeout = 2 * time.Minute
	}
	if opt.Log == nil {
		opt.Log = fedlog.New(io.Discard)
	}
	if err := model.CheckName(opt.Conf.Model); err != nil {
		return nil, fmt.Errorf("job_conf.model: %w", err)
	}
	ds := opt.Data
	if ds == nil {
		var err error
		ds, err = data.Open(datadesc.Options(opt.Conf))
		if err != nil {
			return nil, err
		}
		if opt.ImageCacheBytes > 0 {
			// The test set goes first: it is read whole at every evaluation.
			b := data.NewCacheBudget(opt.ImageCacheBytes)
			ds.Test.SetCacheBudget(b)
			ds.Train.SetCacheBudget(b)
		}
	}
	info, err := datadesc.Describe(opt.Conf, ds)
	if err != nil {
		return nil, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &Executor{opt: opt, log: opt.Log, data: ds, info: info, incarnation: hex.EncodeToString(id[:]),
		trainers: make(chan *computeSlot, computeSlots(opt.Slots)),
		classes:  int(info.GetClasses()), deployment: opt.Conf.ExperimentMode == config.Deployment}, nil
}

// Addr is the aggregator address from the job configuration.
func Addr(c config.Conf) string {
	return net.JoinHostPort(c.PsIP, strconv.Itoa(c.PsPort))
}

// oversized is the error for a message from the aggregator over
// pb.MaxMessageBytes.
func oversized(err error) error {
	return fmt.Errorf("the aggregator sent a message over the %d-byte limit (%s): it is not this protocol's aggregator, or it is broken", pb.MaxMessageBytes, status.Convert(err).Message())
}

// errPermanent marks failures that reconnecting cannot fix.
type errPermanent struct{ error }

// errSilent is a welcomed session dropped because the aggregator sent
// nothing for limit; heard is when it last sent something after its
// Welcome (zero: never).
type errSilent struct {
	limit time.Duration
	heard time.Time
}

func (e errSilent) Error() string {
	if e.heard.IsZero() {
		return fmt.Sprintf("the aggregator welcomed this executor, then sent nothing for %s", e.limit)
	}
	return fmt.Sprintf("the aggregator sent nothing for %s", e.limit)
}

// Run serves the aggregator until the job ends. It returns nil when the
// aggregator reports the job finished, and an error when the job failed,
// the aggregator refused this executor, or it stayed unreachable for
// ConnectTimeout.
func (e *Executor) Run(ctx context.Context) error {
	addr := Addr(e.opt.Conf)
	creds := e.opt.Credentials
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(pb.MaxMessageBytes), grpc.MaxCallSendMsgSize(pb.MaxMessageBytes)))
	if err != nil {
		return fmt.Errorf("aggregator address %s: %w", addr, err)
	}
	defer conn.Close()
	client := pb.NewAggregatorClient(conn)
	e.log.Infof("Executor %d (incarnation %s) connecting to aggregator %s; %d clients, %d test samples",
		e.opt.Rank, e.incarnation, addr, len(e.info.GetClientSamples()), e.info.GetTestSamples())

	lastGood := time.Now()
	backoff := 100 * time.Millisecond
	for {
		done, err := e.session(ctx, client, lastGood.Add(e.opt.ConnectTimeout))
		if done {
			return err
		}
		var perm errPermanent
		if errors.As(err, &perm) {
			return perm.error
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var silent errSilent
		switch {
		case err == nil: // the session ran and then broke: the clock restarts
			lastGood = time.Now()
			backoff = 100 * time.Millisecond
		case errors.As(err, &silent) && !silent.heard.IsZero():
			// The clock restarts from the last time the aggregator said
			// anything. A Welcome alone does not count, or an aggregator
			// that welcomes and goes silent would hold this executor in a
			// loop of reconnections forever.
			lastGood = silent.heard
			backoff = 100 * time.Millisecond
		}
		if time.Since(lastGood) > e.opt.ConnectTimeout {
			return fmt.Errorf("aggregator %s unreachable for %s: %v", addr, e.opt.ConnectTimeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// session runs one Session stream. done reports that the job is over (err
// then tells whether it failed); otherwise err is nil when an established
// session broke, or the reason a connection attempt failed.
func (e *Executor) session(ctx context.Context, client pb.AggregatorClient, deadline time.Time) (done bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Waiting for the aggregator (WaitForReady) is bounded by the connect
	// deadline; once welcomed, the stream lives as long as the job.
	timer := time.AfterFunc(time.Until(deadline), cancel)
	defer timer.Stop()
	stream, err := client.Session(ctx, grpc.WaitForReady(true))
	if err != nil {
		return false, err
	}
	hello := &pb.Hello{
		ProtocolVersion: pb.ProtocolVersion,
		Rank:            int32(e.opt.Rank),
		JobName:         e.opt.Conf.JobName,
		Incarnation:     e.incarnation,
		Slots:           int32(e.opt.Slots),
		Data:            e.info,
		Mode:            string(e.opt.Conf.ExperimentMode),
	}
	if err := stream.Send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_Hello{Hello: hello}}); err != nil {
		return false, err
	}
	first, err := stream.Recv()
	if err != nil {
		switch status.Code(err) {
		case codes.FailedPrecondition, codes.InvalidArgument:
			return false, errPermanent{fmt.Errorf("aggregator refused executor %d: %s", e.opt.Rank, status.Convert(err).Message())}
		case codes.ResourceExhausted:
			return false, errPermanent{oversized(err)}
		}
		return false, err
	}
	if sd := first.GetShutdown(); sd != nil {
		// The job was over before this executor joined (an aggregator
		// started again on a finished job): the same word as at the end.
		_ = stream.CloseSend()
		return true, e.shutdown(sd)
	}
	w := first.GetWelcome()
	if w == nil {
		return false, errPermanent{errors.New("aggregator did not answer Hello with Welcome")}
	}
	if !timer.Stop() {
		return false, errors.New("timed out waiting for the aggregator's welcome")
	}
	if err := e.welcome(w); err != nil {
		return false, errPermanent{err}
	}
	e.opt.Health.SetReady(true, "")
	defer e.opt.Health.SetReady(false, "not connected to the aggregator")

	s := &run{e: e, stream: stream, models: map[int64]*version{}, newest: -1, tasks: make(chan queued, 4096), training: w.GetTraining()}
	var workers, hb sync.WaitGroup
	for i := 0; i < e.opt.Slots; i++ {
		workers.Add(1)
		go func() { defer workers.Done(); s.worker(ctx) }()
	}
	defer func() {
		cancel()
		close(s.tasks)
		hb.Wait()
		// A worker inside a task cannot be interrupted (a training step,
		// a read from storage that hangs): give the workers a moment to
		// finish, then leave them. Nothing they make can be sent any
		// more, and a signal must end the process promptly.
		waitFor(&workers, workerGrace)
	}()
	every := time.Duration(w.GetHeartbeatIntervalMs()) * time.Millisecond
	hb.Add(1)
	go func() {
		defer hb.Done()
		s.heartbeat(ctx, every)
	}()

	// A live aggregator sends something at least once per heartbeat
	// interval (HeartbeatAck when it has nothing else); one silent for
	// pb.SilenceLimit is dead, frozen or hostile, and waiting on it would
	// hang this executor. The watchdog runs only while Recv waits, so the
	// time this loop spends handing tasks to busy workers is not counted.
	limit := pb.SilenceLimit(every)
	watchdog := time.AfterFunc(limit, cancel)
	defer watchdog.Stop()
	var heard time.Time // the last message after the Welcome
	for {
		watchdog.Reset(limit)
		m, err := stream.Recv()
		if !watchdog.Stop() {
			// The watchdog fired (ctx is cancelled): whatever Recv returned
			// came too late.
			e.log.Warnf("The aggregator sent nothing for %s (heartbeat interval %s): dropping the connection; reconnecting", limit, every)
			return false, errSilent{limit: limit, heard: heard}
		}
		if err == nil {
			heard = time.Now()
		}
		if err != nil {
			// Models and updates travel in chunks: a message over the limit
			// is a broken or hostile aggregator, not a network fault.
			if status.Code(err) == codes.ResourceExhausted {
				return true, oversized(err)
			}
			e.log.Warnf("Lost the aggregator: %s; reconnecting", status.Convert(err).Message())
			return false, nil
		}
		switch b := m.GetBody().(type) {
		case *pb.AggregatorMessage_Model:
			if err := s.announce(b.Model); err != nil {
				return true, fmt.Errorf("model version %d: %w", b.Model.GetVersion(), err)
			}
		case *pb.AggregatorMessage_ModelChunk:
			if err := s.chunk(b.ModelChunk); err != nil {
				return true, fmt.Errorf("model version %d: %w", b.ModelChunk.GetVersion(), err)
			}
		case *pb.AggregatorMessage_Train:
			if !s.enqueue(ctx, m, b.Train.GetModelVersion()) {
				return false, nil
			}
		case *pb.AggregatorMessage_Eval:
			if !s.enqueue(ctx, m, b.Eval.GetModelVersion()) {
				return false, nil
			}
		case *pb.AggregatorMessage_Shutdown:
			s.closeSend()
			return true, e.shutdown(b.Shutdown)
		case *pb.AggregatorMessage_Welcome, *pb.AggregatorMessage_HeartbeatAck:
			// Nothing to do: hearing it was the point.
		}
	}
}

// shutdown is the aggregator's word that the job is over: nil when it
// finished (the executor exits 0), the reason when it failed.
func (e *Executor) shutdown(sd *pb.Shutdown) error {
	if sd.GetJobDone() {
		e.log.Infof("Aggregator finished the job: %s", sd.GetReason())
		return nil
	}
	return &JobStoppedError{Reason: sd.GetReason()}
}

// JobStoppedError is the aggregator's word that the job failed: the
// executor exits with health.ExitJobStopped on it, so it is not restarted.
type JobStoppedError struct{ Reason string }

func (e *JobStoppedError) Error() string { return "aggregator stopped the job: " + e.Reason }

// workerGrace is how long a session that ends waits for its workers to
// finish the task they are in.
const workerGrace = time.Second

// waitFor waits for wg for at most d.
func waitFor(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// checkWelcome holds the aggregator's settings to the job file's rules
// (config owns them) before any of them sizes an allocation or names a
// path: a broken or hostile aggregator gets an error naming the key.
func (e *Executor) checkWelcome(w *pb.Welcome) error {
	t := w.GetTraining()
	if t == nil {
		return errors.New("aggregator's welcome has no training settings")
	}
	c := e.opt.Conf
	c.Model, c.TimeStamp = t.GetModel(), w.GetTimeStamp()
	c.BatchSize, c.LocalSteps, c.TestBsz = int(t.GetBatchSize()), int(t.GetLocalSteps()), int(t.GetTestBsz())
	c.WeightDecay, c.LossDecay = t.GetWeightDecay(), t.GetLossDecay()
	if err := c.Validate(); err != nil {
		return fmt.Errorf("aggregator's settings: %w", err)
	}
	if w.GetTimeStamp() == "" {
		return errors.New("aggregator's settings: job_conf.time_stamp is empty")
	}
	if m := t.GetMomentum(); !(m >= 0 && m < 1) {
		return fmt.Errorf("aggregator's settings: momentum must be in [0, 1), got %v", m)
	}
	if hb := w.GetHeartbeatIntervalMs(); hb < 1 || hb > pb.MaxHeartbeatInterval.Milliseconds() {
		return fmt.Errorf("aggregator's settings: heartbeat interval must be 1 ms to %s, got %d ms", pb.MaxHeartbeatInterval, hb)
	}
	return nil
}

// welcome applies the aggregator's settings and opens the log file under
// the aggregator's time stamp.
func (e *Executor) welcome(w *pb.Welcome) error {
	if err := e.checkWelcome(w); err != nil {
		return err
	}
	t := w.GetTraining()
	c, h, wd := e.data.Input()
	spec := model.Spec{Name: t.GetModel(), Channels: c, Height: h, Width: wd, Classes: e.classes}
	if spec != e.spec {
		layout, err := model.Layout(spec)
		if err != nil {
			return fmt.Errorf("model %s: %w", spec.Name, err)
		}
		e.layout = layout
		// The trainer pool is rebuilt only when the model changes, which
		// is at the first welcome.
		for len(e.trainers) > 0 {
			// A GPU trainer holds device memory until closed.
			if c, ok := (<-e.trainers).tr.(io.Closer); ok {
				if err := c.Close(); err != nil {
					e.log.Warnf("closing the trainer of model %s: %v", e.spec.Name, err)
				}
			}
		}
		for i := 0; i < cap(e.trainers); i++ {
			tr, err := e.opt.Backend(spec)
			if err != nil {
				return fmt.Errorf("model %s: %w", spec.Name, err)
			}
			e.trainers <- &computeSlot{tr: tr}
		}
		e.spec = spec
		if e.opt.TuneGC {
			var values int64
			for _, t := range layout {
				values += int64(tensor.Size(t.Shape))
			}
			debug.SetGCPercent(GCPercent(4*values, cap(e.trainers)))
		}
	}
	var ferr error
	e.logOnce.Do(func() {
		if e.opt.Conf.LogPath == "" {
			return
		}
		c := e.opt.Conf
		path := filepath.Join(c.LogPath, "logs", c.JobName, w.GetTimeStamp(), "executor", "log")
		if _, err := e.log.AttachFile(path); err != nil {
			ferr = err
		}
	})
	if ferr != nil {
		return ferr
	}
	e.log.Infof("Executor %d registered with the aggregator (job %s, model %s)", e.opt.Rank, w.GetJobName(), t.GetModel())
	return nil
}

// run is the state of one session.
type run struct {
	e        *Executor
	stream   pb.Aggregator_SessionClient
	training *pb.TrainingConfig
	tasks    chan queued

	mu     sync.Mutex
	models map[int64]*version
	newest int64 // newest complete version; -1 none
	// incoming is the version being received (nil between versions);
	// only the receive loop touches it.
	incoming *incoming
	sendMu   sync.Mutex
	busy     int32
}

// version is a received global model and the number of queued or running
// tasks that use it. A version no task uses is dropped once a newer one
// exists, so an executor holds one model, two while tasks still run on
// the old one as the new one arrives.
type version struct {
	params tensor.List
	refs   int
}

type incoming struct {
	v   int64
	asm *pb.Assembly
}

// queued is a task with the model it starts from (nil if that version was
// never received), referenced until the task ends.
type queued struct {
	m       *pb.AggregatorMessage
	v       int64
	params  tensor.List
	release bool
}

// announce starts receiving a model version. The announced layout must be
// this executor's model exactly; the buffer of a version no task uses any
// more is reused for the values.
func (s *run) announce(m *pb.Model) error {
	v := m.GetVersion()
	if s.incoming != nil {
		return fmt.Errorf("announced while version %d was still arriving", s.incoming.v)
	}
	layout, err := pb.ToLayout(m.GetTensors())
	if err != nil {
		return err
	}
	if err := s.e.layout.CheckLayout(layout); err != nil {
		return fmt.Errorf("the aggregator's model is not %s as this executor builds it: %w", s.e.spec.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v <= s.newest {
		return fmt.Errorf("announced after version %d", s.newest)
	}
	var buf tensor.List
	for old, ver := range s.models {
		if ver.refs == 0 {
			delete(s.models, old)
			buf = ver.params
		}
	}
	if buf == nil {
		buf = s.e.layout.ZerosLike()
	}
	s.incoming = &incoming{v: v, asm: pb.NewAssembly(buf)}
	return nil
}

// chunk adds values to the version being received.
func (s *run) chunk(c *pb.ModelChunk) error {
	in := s.incoming
	if in == nil || c.GetVersion() != in.v {
		return errors.New("values for a version that was not announced")
	}
	if err := in.asm.Add(c.GetOffset(), c.GetData()); err != nil {
		return err
	}
	if !in.asm.Complete() {
		return nil
	}
	s.incoming = nil
	s.mu.Lock()
	defer s.mu.Unlock()
	s.models[in.v] = &version{params: in.asm.List()}
	s.newest = in.v
	for old, ver := range s.models {
		if old != in.v && ver.refs == 0 {
			delete(s.models, old)
		}
	}
	return nil
}

// queue references the model version a task starts from.
func (s *run) queue(m *pb.AggregatorMessage, v int64) queued {
	s.mu.Lock()
	defer s.mu.Unlock()
	ver, ok := s.models[v]
	if !ok {
		return queued{m: m, v: v}
	}
	ver.refs++
	return queued{m: m, v: v, params: ver.params, release: true}
}

// enqueue hands a task to the workers; false when ctx ends first (the
// workers may all be stuck in tasks, the queue full).
func (s *run) enqueue(ctx context.Context, m *pb.AggregatorMessage, v int64) bool {
	q := s.queue(m, v)
	select {
	case s.tasks <- q:
		return true
	case <-ctx.Done():
		s.done(q)
		return false
	}
}

// done drops a finished task's reference to its model version.
func (s *run) done(q queued) {
	if !q.release {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ver := s.models[q.v]
	ver.refs--
	if ver.refs == 0 && q.v != s.newest {
		delete(s.models, q.v)
	}
}

func (s *run) send(m *pb.ExecutorMessage) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(m)
}

// closeSend half-closes the stream. grpc forbids CloseSend concurrently
// with SendMsg, and the heartbeat and worker goroutines may be sending.
func (s *run) closeSend() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	_ = s.stream.CloseSend()
}

func (s *run) heartbeat(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var seq int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			seq++
			s.mu.Lock()
			busy := s.busy
			s.mu.Unlock()
			if err := s.send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_Heartbeat{Heartbeat: &pb.Heartbeat{Seq: seq, Busy: busy}}}); err != nil {
				return
			}
		}
	}
}

func (s *run) worker(ctx context.Context) {
	for q := range s.tasks {
		if ctx.Err() != nil {
			s.done(q)
			continue // drain: the session is over, the aggregator re-issues
		}
		s.mu.Lock()
		s.busy++
		s.mu.Unlock()
		var reply *pb.ExecutorMessage
		var err error
		var round, id int64
		var held *computeSlot // its parameters are the reply's weights until sent
		switch b := q.m.GetBody().(type) {
		case *pb.AggregatorMessage_Train:
			round, id = b.Train.GetRound(), b.Train.GetTaskId()
			reply, held, err = s.train(b.Train, q.params)
		case *pb.AggregatorMessage_Eval:
			round, id = b.Eval.GetRound(), b.Eval.GetTaskId()
			reply, err = s.eval(b.Eval, q.params)
		}
		s.done(q)
		s.mu.Lock()
		s.busy--
		s.mu.Unlock()
		if err != nil && ctx.Err() != nil {
			continue // the session is over: nobody to tell (train keeps no slot on error)
		}
		if err != nil {
			s.e.log.Errorf("Task %d of round %d failed: %v", id, round, err)
			reply = &pb.ExecutorMessage{Body: &pb.ExecutorMessage_TaskFailure{TaskFailure: &pb.TaskFailure{Round: round, TaskId: id, Error: err.Error()}}}
		}
		if held != nil {
			// The weights go first, in chunks straight from the slot's
			// buffer: gRPC encodes each before Send returns.
			err = pb.Chunks(held.params, func(off int64, d []float32) error {
				return s.send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_UpdateChunk{UpdateChunk: &pb.UpdateChunk{TaskId: id, Offset: off, Data: d}}})
			})
			s.e.trainers <- held
			if err != nil {
				continue // the stream broke; the aggregator re-issues the task
			}
		}
		_ = s.send(reply)
	}
}

// computeSlot is a trainer with the buffer it trains a task's copy of the
// global model in, reused from task to task.
type computeSlot struct {
	tr     model.Trainer
	params tensor.List
}

// load copies global into the slot's buffer, allocating it on first use.
func (c *computeSlot) load(global tensor.List) tensor.List {
	if c.params.CheckCompatible(global) != nil {
		c.params = global.ZerosLike()
	}
	for i := range global {
		copy(c.params[i].Data, global[i].Data)
	}
	return c.params
}

// computeSlots is how many trainers an executor with slots task slots
// keeps: no more than the processors that can run them.
func computeSlots(slots int) int {
	return max(1, min(slots, runtime.GOMAXPROCS(0)))
}

// train runs a training task. On success it returns the compute slot
// whose parameters the reply carries; the caller returns it to the pool
// once the reply is sent.
func (s *run) train(t *pb.TrainTask, global tensor.List) (*pb.ExecutorMessage, *computeSlot, error) {
	start := time.Now()
	if global == nil {
		return nil, nil, fmt.Errorf("model version %d was never received", t.GetModelVersion())
	}
	client := t.GetClientId()
	samples, err := s.e.clientSamples(client)
	if err != nil {
		return nil, nil, err
	}
	// The slot is taken before the batches are made: making them is
	// compute too, and a task waiting for a trainer holds no batches.
	slot := <-s.e.trainers
	bs, steps := int(s.training.GetBatchSize()), int(s.training.GetLocalSteps())
	batches, err := clientBatches(s.e.data, samples, bs, steps, t.GetSeed())
	if err != nil {
		s.e.trainers <- slot
		return nil, nil, fmt.Errorf("client %d: %w", client, err)
	}
	opt := model.SGD{
		LR:          float32(t.GetLearningRate()),
		Momentum:    float32(s.training.GetMomentum()),
		WeightDecay: float32(s.training.GetWeightDecay()),
		LossDecay:   s.training.GetLossDecay(),
		Seed:        t.GetSeed(),
	}
	if mu := t.GetProxMu(); mu > 0 {
		opt.ProxMu, opt.Anchor = float32(mu), global
	}
	params := slot.load(global)
	stats, err := slot.tr.Train(params, batches, opt)
	if err != nil {
		s.e.trainers <- slot
		return nil, nil, fmt.Errorf("training client %d: %w", client, err)
	}
	return &pb.ExecutorMessage{Body: &pb.ExecutorMessage_TrainResult{TrainResult: &pb.TrainResult{
		Round: t.GetRound(), TaskId: t.GetTaskId(), ClientId: client,
		MovingLoss: stats.MovingLoss, MeanLoss: stats.MeanLoss, NumSamples: int64(len(samples)),
		WallSeconds: time.Since(start).Seconds(),
	}}}, slot, nil
}

// clientSamples returns the training samples of client.
func (e *Executor) clientSamples(client int64) ([]int32, error) {
	train := e.data.Train
	if e.deployment {
		if client != int64(e.opt.Rank-1) {
			return nil, fmt.Errorf("client %d is not this deployment executor's client (%d)", client, e.opt.Rank-1)
		}
		e.allOnce.Do(func() {
			e.all = make([]int32, train.Len())
			for i := range e.all {
				e.all[i] = int32(i)
			}
		})
		return e.all, nil
	}
	if client < 0 || client >= int64(len(train.ClientSamples)) {
		return nil, fmt.Errorf("client %d does not exist (this executor has %d clients)", client, len(train.ClientSamples))
	}
	return train.ClientSamples[client], nil
}

// clientBatches draws steps mini-batches from a client's training samples,
// walking a seeded permutation and reshuffling at each epoch's end, as a
// DataLoader with shuffle would, and passes them through the dataset's
// pipeline with its training augmentation. The seed makes the batches a
// pure function of the task, so any executor produces the same update:
// the permutation and the augmentation each draw from a stream of their
// own, both seeded by it.
func clientBatches(ds *data.Dataset, samples []int32, bs, steps int, seed uint64) ([]model.Batch, error) {
	if len(samples) == 0 {
		return nil, errors.New("has no training samples")
	}
	bs = min(bs, len(samples))
	p := ds.Pipe()
	n := p.SampleSize()
	rng := mrand.New(mrand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	aug := mrand.New(mrand.NewPCG(seed, seed^0xda3e39cb94b95bdb))
	perm := append([]int32(nil), samples...)
	shuffle := func() { rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] }) }
	shuffle()
	pos := 0
	batches := make([]model.Batch, steps)
	x := make([]float32, steps*bs*n)
	idx := make([]int32, bs)
	for s := range batches {
		for k := range idx {
			if pos == len(perm) {
				shuffle()
				pos = 0
			}
			idx[k] = perm[pos]
			pos++
		}
		xs := x[s*bs*n : (s+1)*bs*n]
		labels, err := p.Batch(ds.Train, idx, xs, aug)
		if err != nil {
			return nil, err
		}
		batches[s] = model.Batch{X: xs, Y: labels, N: bs}
	}
	return batches, nil
}

func (s *run) eval(t *pb.EvalTask, params tensor.List) (*pb.ExecutorMessage, error) {
	if params == nil {
		return nil, fmt.Errorf("model version %d was never received", t.GetModelVersion())
	}
	test := s.e.data.Test
	if t.GetStart() < 0 || t.GetEnd() > int64(test.Len()) || t.GetStart() >= t.GetEnd() {
		return nil, fmt.Errorf("test shard [%d,%d) is outside the %d test samples", t.GetStart(), t.GetEnd(), test.Len())
	}
	p := s.e.data.Pipe()
	n := p.SampleSize()
	bsz := int64(max(s.training.GetTestBsz(), 1))
	x := make([]float32, int(bsz)*n)
	idx := make([]int32, 0, bsz)
	var total model.EvalStats
	slot := <-s.e.trainers
	defer func() { s.e.trainers <- slot }()
	tr := slot.tr
	for lo := t.GetStart(); lo < t.GetEnd(); lo += bsz {
		hi := min(lo+bsz, t.GetEnd())
		idx = idx[:0]
		for i := lo; i < hi; i++ {
			idx = append(idx, int32(i))
		}
		// Evaluation is deterministic: no augmentation.
		labels, err := p.Batch(test, idx, x, nil)
		if err != nil {
			return nil, err
		}
		st, err := tr.Evaluate(params, model.Batch{X: x[:len(idx)*n], Y: labels, N: len(idx)})
		if err != nil {
			return nil, err
		}
		total.Add(st)
	}
	return &pb.ExecutorMessage{Body: &pb.ExecutorMessage_EvalResult{EvalResult: &pb.EvalResult{
		Round: t.GetRound(), TaskId: t.GetTaskId(), Shard: t.GetShard(),
		LossSum: total.LossSum, Top1: total.Top1, Top5: total.Top5, Count: total.Count,
	}}}, nil
}
