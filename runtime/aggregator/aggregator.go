// Package aggregator is the server side of a federated job: it registers
// executors and their clients, selects each round's participants from the
// device traces on a virtual clock, hands out training and evaluation tasks,
// aggregates the results in a fixed order, evaluates, checkpoints, and
// survives executors that die or hang.
//
// All job state is owned by one event-loop goroutine; gRPC stream handlers
// only translate messages into events. That keeps the round logic free of
// locks and makes the order of aggregation independent of network timing.
package aggregator

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fedscale/fedscale-go/runtime/aggregate"
	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/model"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
	"github.com/fedscale/fedscale-go/runtime/tensor"
	"github.com/fedscale/fedscale-go/runtime/trace"
)

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
	// Resume picks up the job's last checkpoint when its configuration
	// matches (default true through the command).
	Resume bool
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
}

// Aggregator runs one job. Create it with New, register it on a gRPC server
// (pb.RegisterAggregatorServer), then call Run.
type Aggregator struct {
	pb.UnimplementedAggregatorServer

	opt     Options
	conf    config.Conf
	log     *fedlog.Logger
	now     func() time.Time
	events  chan event
	stopped chan struct{}
	ready   chan struct{}
	prom    *promMetrics
	logDir  string

	st state // owned by the event loop
}

// New validates opt and returns an Aggregator ready to serve.
func New(opt Options) (*Aggregator, error) {
	if err := opt.Conf.Validate(); err != nil {
		return nil, err
	}
	if opt.Executors < 1 {
		return nil, fmt.Errorf("executors: expected at least 1, got %d", opt.Executors)
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
	if opt.ExecutorTimeout <= 0 {
		opt.ExecutorTimeout = 10 * time.Second
	}
	if opt.ExecutorWait <= 0 {
		opt.ExecutorWait = 10 * time.Minute
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
	a := &Aggregator{
		opt:     opt,
		conf:    opt.Conf,
		log:     opt.Log,
		now:     opt.Now,
		events:  make(chan event, 256),
		stopped: make(chan struct{}),
		ready:   make(chan struct{}),
		prom:    newPromMetrics(opt.Metrics),
		logDir:  opt.Conf.LogDir(),
	}
	return a, nil
}

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
// unrecoverable error occurs, or ctx ends. Cancelling ctx does not tell the
// executors to exit: a restarted aggregator resumes and they reconnect.
func (a *Aggregator) Run(ctx context.Context) (Result, error) {
	defer close(a.stopped)
	a.st.init(a)
	close(a.ready)
	a.log.Infof("Aggregator of job %s waiting for %d executor(s); logs in %s", a.conf.JobName, a.opt.Executors, a.logDir)
	tick := time.NewTicker(a.opt.HeartbeatInterval)
	defer tick.Stop()
	for {
		if a.st.done {
			return a.st.finish(a)
		}
		select {
		case <-ctx.Done():
			a.st.abortAll(a, "aggregator stopped")
			a.st.closeFiles()
			return a.st.result(a), ctx.Err()
		case ev := <-a.events:
			ev.apply(a)
		case <-tick.C:
			a.st.checkLiveness(a)
		}
	}
}

// deployment reports experiment_mode deployment: one executor per client.
func (a *Aggregator) deployment() bool { return a.conf.ExperimentMode == "deployment" }

func (a *Aggregator) mode() string {
	if a.deployment() {
		return "deployment"
	}
	return "simulation"
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
