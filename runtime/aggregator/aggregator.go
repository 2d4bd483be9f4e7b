// Package aggregator is the server side of a federated job: it registers
// executors and their clients, selects each round's participants from the
// device traces on a virtual clock, hands out training and evaluation tasks,
// aggregates the results in a fixed order, evaluates, checkpoints, and
// survives executors that die, hang or misbehave: it checks every claim it
// can, re-issues what a bad executor failed and evicts one that keeps
// failing (state.taskFailed).
//
// All job state is owned by one event-loop goroutine; gRPC stream handlers
// only translate messages into events. That keeps the round logic free of
// locks and makes the order of aggregation independent of network timing.
package aggregator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fedscale/fedscale-go/runtime/aggregate"
	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/inputfile"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/safetensors"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
	"github.com/fedscale/fedscale-go/runtime/tensor"
	"github.com/fedscale/fedscale-go/runtime/trace"
)

// DefaultHelloTimeout is Options.HelloTimeout's default.
const DefaultHelloTimeout = 30 * time.Second

// Options configures an Aggregator.
type Options struct {
	// Conf is the job's merged job_conf after command-line overrides.
	Conf config.Conf
	// Executors is the number of executor processes the job starts with.
	Executors int
	// Log receives FedScale-format lines; nil discards them.
	Log *fedlog.Logger
	// Capacities and Behaviors are the device traces; nil means every
	// client is always online with equal speed.
	Capacities []trace.Capacity
	Behaviors  []trace.Behavior
	// HeartbeatInterval is how often executors report (default 1s).
	HeartbeatInterval time.Duration
	// ExecutorTimeout is how long an executor may stay silent before it is
	// declared lost and its tasks are re-issued (default 10s); it must be
	// longer than HeartbeatInterval.
	ExecutorTimeout time.Duration
	// ExecutorWait bounds how long the job waits with no executor at all
	// connected, at the start or after losing all of them (default 10m).
	ExecutorWait time.Duration
	// TaskTimeout, when positive, is every task's deadline (--task-timeout);
	// zero derives it from the measured task times: TaskTimeoutFactor
	// times the median time a task kind takes, never under
	// TaskTimeoutFloor (default DefaultTaskTimeoutFloor), and 10 minutes
	// before any task of the kind has finished. A task past its deadline
	// is queued again for another executor and counts as a failure of the
	// one that held it.
	TaskTimeout      time.Duration
	TaskTimeoutFloor time.Duration
	// HelloTimeout bounds how long a new connection may take to say Hello
	// before it is closed (default DefaultHelloTimeout), so connections
	// that never do cannot pile up.
	HelloTimeout time.Duration
	// Resume picks up the job's last checkpoint when its configuration
	// matches (default true through the command); on a job that finished
	// (finished.go) Run reports the results and returns without training.
	Resume bool
	// FinishedGrace is how long Run, on a job that finished, waits for
	// executors to tell them so before it returns (default
	// DefaultFinishedGrace); it returns sooner once every rank was told.
	FinishedGrace time.Duration
	// Metrics, if set, receives the aggregator's Prometheus collectors.
	Metrics prometheus.Registerer
	// Now is the wall clock; tests may replace it.
	Now func() time.Time
}

// Result summarises a finished job.
type Result struct {
	Rounds        int
	VirtualClock  float64
	Top1, Top5    float64
	TestLoss      float64
	Reissued      int
	Rejected      int
	ResumedAt     int
	FinalModel    tensor.List
	LogDir        string
	MetricsFile   string
	RoundsTrained int
	// ModelFile is the safetensors file holding FinalModel ("" when none
	// was written, e.g. the job failed).
	ModelFile string
}

// Aggregator runs one job. Create it with New, register it on a gRPC server
// (pb.RegisterAggregatorServer), then call Run.
//
// It owns the event loop (Run), the gRPC service (Session, in session.go)
// and the public API; the job itself is st, which only the loop touches.
type Aggregator struct {
	pb.UnimplementedAggregatorServer
	*env

	events  chan event
	stopped chan struct{}
	ready   chan struct{}

	st state // owned by the event loop
}

// env is what every part of the aggregator reads and none changes after
// New: the options, the job's configuration, the log, the metrics, the
// wall clock and the log folder; and the evicted ranks, which the loop
// adds to and sessions read (bans is safe for both). The Aggregator, its
// state and the scheduler share one.
type env struct {
	opt    Options
	conf   config.Conf
	log    *fedlog.Logger
	now    func() time.Time
	prom   *promMetrics
	logDir string
	bans   *bans
	mon    *monitor // what /api/v1/job shows (view.go)
}

// bans are the evicted ranks, with the reason. Sessions read them too, so
// an evicted rank is refused even once the loop has ended.
type bans struct {
	mu sync.Mutex
	m  map[int32]string
}

func (b *bans) add(rank int32, why string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[rank] = why
}

func (b *bans) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// reason is why rank was evicted, "" when it was not.
func (b *bans) reason(rank int32) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[rank]
}

// refused is the error for a Hello of an evicted rank, nil for any other.
func (b *bans) refused(rank int32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if why, ok := b.m[rank]; ok {
		return status.Errorf(codes.FailedPrecondition, "executor %d was evicted from this job (%s)", rank, why)
	}
	return nil
}

// aggregatorDir is the aggregator's log folder, FedScale's logDir:
// {log_path}/logs/{job_name}/{time_stamp}/aggregator.
func (e *env) aggregatorDir() string { return filepath.Join(e.logDir, "aggregator") }

// modelPath is ModelPath.
func (e *env) modelPath() string {
	return filepath.Join(e.aggregatorDir(), "model.safetensors")
}

// New validates opt and returns an Aggregator ready to serve.
func New(opt Options) (*Aggregator, error) {
	if err := opt.Conf.Validate(); err != nil {
		return nil, err
	}
	if opt.Executors < 1 || opt.Executors > config.MaxExecutors {
		return nil, fmt.Errorf("executors: expected 1..%d, got %d", config.MaxExecutors, opt.Executors)
	}
	if err := model.CheckName(opt.Conf.Model); err != nil {
		return nil, fmt.Errorf("job_conf.model: %w", err)
	}
	if _, err := aggregate.New(serverOptions(opt.Conf)); err != nil {
		return nil, fmt.Errorf("job_conf.gradient_policy: %w", err)
	}
	if opt.HeartbeatInterval <= 0 {
		opt.HeartbeatInterval = time.Second
	}
	if opt.HeartbeatInterval < time.Millisecond || opt.HeartbeatInterval > pb.MaxHeartbeatInterval {
		// Welcome carries it in whole milliseconds; executors refuse more.
		return nil, fmt.Errorf("heartbeat interval %s (--heartbeat) must be 1ms to %s", opt.HeartbeatInterval, pb.MaxHeartbeatInterval)
	}
	if opt.ExecutorTimeout <= 0 {
		opt.ExecutorTimeout = 10 * time.Second
	}
	if opt.HelloTimeout <= 0 {
		opt.HelloTimeout = DefaultHelloTimeout
	}
	if opt.ExecutorWait <= 0 {
		opt.ExecutorWait = 10 * time.Minute
	}
	if opt.FinishedGrace <= 0 {
		opt.FinishedGrace = DefaultFinishedGrace
	}
	if opt.TaskTimeout < 0 {
		return nil, fmt.Errorf("task timeout %s (--task-timeout): want 0 (from the measured task times) or more", opt.TaskTimeout)
	}
	if opt.TaskTimeoutFloor < 0 {
		return nil, fmt.Errorf("task timeout floor %s: want 0 (the default, %s) or more", opt.TaskTimeoutFloor, DefaultTaskTimeoutFloor)
	}
	if opt.TaskTimeoutFloor == 0 {
		opt.TaskTimeoutFloor = DefaultTaskTimeoutFloor
	}
	if opt.ExecutorTimeout <= opt.HeartbeatInterval {
		// Every executor would be declared lost between two heartbeats,
		// and the job would churn re-issued tasks instead of failing.
		return nil, fmt.Errorf("executor timeout %s (--executor-timeout) must be longer than the heartbeat interval %s (--heartbeat)",
			opt.ExecutorTimeout, opt.HeartbeatInterval)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = fedlog.New(discard{})
	}
	var initModel tensor.List
	var initDigest string
	if path := opt.Conf.ModelInitFile; path != "" {
		var err error
		if initModel, initDigest, err = loadInitModel(path); err != nil {
			return nil, fmt.Errorf("job_conf.model_init_file: %w", err)
		}
	}
	// After the cheap checks: it may read the whole data set.
	expect, err := newJobData(opt.Conf)
	if err != nil {
		return nil, err
	}
	e := &env{
		opt:    opt,
		conf:   opt.Conf,
		log:    opt.Log,
		now:    opt.Now,
		prom:   newPromMetrics(opt.Metrics),
		logDir: opt.Conf.LogDir(),
		bans:   &bans{m: map[int32]string{}},
		mon:    newMonitor(),
	}
	a := &Aggregator{
		env:     e,
		events:  make(chan event, 256),
		stopped: make(chan struct{}),
		ready:   make(chan struct{}),
		st:      newState(e, newMode(opt.Conf, opt.Executors), expect, initModel, initDigest),
	}
	e.mon.publish(&a.st, "")
	return a, nil
}

// loadInitModel reads a safetensors model file and digests its bytes,
// both from one open of it (the file may be another job's model, replaced
// by rename at any time). Its size is bounded by the largest model before
// anything is read. The names and shapes are checked against the model
// when the job starts (the data decides the number of classes); the
// values here.
func loadInitModel(path string) (tensor.List, string, error) {
	// The widest dtype read is 8 bytes a value; the header is at most
	// safetensors.MaxHeaderSize.
	f, size, err := inputfile.Open(path, int64(model.MaxParams)*8+safetensors.MaxHeaderSize+8)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	l, _, err := safetensors.Read(f, size)
	if err != nil {
		return nil, "", fmt.Errorf("safetensors file %s: %w", path, err)
	}
	if err := l.CheckFinite(); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return l, hex.EncodeToString(h.Sum(nil)), nil
}

// ModelPath is where the global model is written as safetensors: beside
// the aggregator's log, {log_path}/logs/{job_name}/{time_stamp}/aggregator/
// model.safetensors, as FedScale keeps its model_0.npy in that folder.
func (a *Aggregator) ModelPath() string { return a.modelPath() }

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func serverOptions(c config.Conf) aggregate.Options {
	return aggregate.Options{
		Policy:    c.GradientPolicy,
		YogiEta:   c.YogiEta,
		YogiTau:   c.YogiTau,
		YogiBeta:  c.YogiBeta,
		YogiBeta2: c.YogiBeta2,
		QFedQ:     c.QfedQ,
		ProxMu:    c.ProxyMu,

		TrimFraction:  c.TrimFraction,
		KrumMalicious: c.NumMaliciousClients,
		KrumKeep:      c.NumClientsToKeep,
		ClipNorm:      c.ClipNorm,
	}
}

// post hands an event to the loop; false once the loop has stopped.
func (a *Aggregator) post(ev event) bool {
	select {
	case a.events <- ev:
		return true
	case <-a.stopped:
		return false
	}
}

// Run drives the job until every round is trained and evaluated, an
// unrecoverable error occurs, or ctx ends. On a job that finished before
// (resuming, same settings, no more rounds) it returns that job's results
// without training, once the executors that connect within FinishedGrace
// have been told. Cancelling ctx does not tell the
// executors to exit: a restarted aggregator resumes and they reconnect.
func (a *Aggregator) Run(ctx context.Context) (Result, error) {
	defer close(a.stopped)
	if c, err := a.finishedBefore(); err != nil {
		return Result{}, err
	} else if c != nil {
		return a.serveFinished(ctx, c)
	}
	a.st.open()
	close(a.ready)
	a.log.Infof("Aggregator of job %s waiting for %d executor(s); logs in %s", a.conf.JobName, a.opt.Executors, a.logDir)
	tick := time.NewTicker(a.opt.HeartbeatInterval)
	defer tick.Stop()
	for {
		if a.st.done {
			return a.finish()
		}
		select {
		case <-ctx.Done():
			a.st.sched.abortAll("aggregator stopped")
			a.st.closeFiles()
			a.mon.publish(&a.st, jobapi.StateStopped)
			return a.st.result(), ctx.Err()
		case ev := <-a.events:
			ev.apply(&a.st)
			a.mon.maybePublish(&a.st)
		case <-tick.C:
			a.st.checkLiveness()
			a.mon.publish(&a.st, "")
		}
	}
}

// finish tells every executor the job is over, and those that say Hello
// meanwhile, gives them a moment to read that and hang up, and returns the
// result, marking a job that succeeded finished (finished.go).
func (a *Aggregator) finish() (Result, error) {
	st := &a.st
	reason := "job finished"
	if st.err != nil {
		reason = st.err.Error()
	}
	st.sched.shutdown(reason, st.err == nil)
	late := newTold(reason, st.err == nil)
	deadline := time.After(hangUpWait)
	for st.sched.connected() > 0 || len(late.open) > 0 {
		select {
		case ev := <-a.events:
			if e, ok := ev.(evClosed); ok {
				st.sched.closed(e.s)
			}
			late.apply(ev, a.conf.JobName, a.opt.Executors)
		case <-deadline:
			st.sched.abortAll(reason)
			late.abort(reason)
		}
	}
	res, err := st.finish()
	if err == nil {
		a.recordCompletion(res)
		a.mon.event(a.now(), fedlog.Info, "Job finished: %d rounds", res.Rounds)
	}
	a.mon.publish(st, "")
	return res, err
}

// Ready is closed once Run has started accepting executors.
func (a *Aggregator) Ready() <-chan struct{} { return a.ready }

// LogDir is where this job's logs go ({log_path}/logs/{job_name}/{time_stamp}).
func (a *Aggregator) LogDir() string { return a.logDir }

// splitmix64 mixes seeds; used to derive per-round, per-client streams.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// TaskSeed is the seed of client's mini-batch stream in round: a pure
// function of the job seed, round and client, so any executor that trains
// the task produces the same update.
func TaskSeed(jobSeed int64, round int, client int64) uint64 {
	return splitmix64(splitmix64(splitmix64(uint64(jobSeed))^uint64(round)) ^ uint64(client))
}

// ModelSeed is the seed of the initial model's parameters.
func ModelSeed(jobSeed int64) uint64 { return splitmix64(uint64(jobSeed) ^ 0x6d6f64656c) }

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
