package aggregator

// What differs between experiment_mode simulation and deployment. See mode.

import (
	"fmt"
	"io"
	"math"

	"github.com/fedscale/fedscale-go/runtime/config"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

// mode is everything that differs between job_conf.experiment_mode
// simulation and deployment, which is where the data lives. In simulation
// every executor loads the same data set, so any executor may run any
// task. In deployment each executor is one device holding one client's
// training data and its own test data, so the client's tasks are pinned
// to it; a pinned task whose executor is away is given up (see
// scheduler.orphans), as a real device that went away drops out.
//
// New chooses the implementation once (newMode). Its methods run on the
// event loop, like state's.
type mode interface {
	// admit checks the data description d that executor rank reports at
	// Hello against job, the job's own (the first executor's; nil while
	// none has registered), and remembers what this mode needs of it.
	// started is true once the client registry is built. d has at least
	// one client. On error nothing is remembered.
	admit(job *pb.DataInfo, rank int32, d *pb.DataInfo, started bool) error
	// clients returns the training samples of every client, in client id
	// order. It is called once every rank has registered.
	clients(job *pb.DataInfo) []int64
	// owner is the executor rank that must train client: 0 for any.
	owner(client int64) int32
	// evalTasks returns round's evaluation tasks, in shard order (shard i
	// is the i-th), each pinned where its test data lives only on one
	// executor. The split depends only on the data and job_conf, never on
	// which executors are connected, so the summed metrics do not either.
	evalTasks(job *pb.DataInfo, round int) []*task
	// fingerprint writes what the checkpoint fingerprint must hold beyond
	// job's data digest: nothing in simulation, every device's data
	// digest in rank order in deployment.
	fingerprint(w io.Writer)
}

// newMode returns c's experiment_mode for a job of executors executors.
func newMode(c config.Conf, executors int) mode {
	if c.ExperimentMode == config.Deployment {
		return &deployment{executors: executors, testRatio: c.TestRatio, infos: map[int32]*pb.DataInfo{}}
	}
	return simulation{testRatio: c.TestRatio, testBsz: c.TestBsz}
}

// simulation is experiment_mode simulation: every executor holds the whole
// data set, so every executor must report the same one.
type simulation struct {
	testRatio float64
	testBsz   int
}

// admit requires every executor to agree with the first: a mismatch would
// silently train on different clients.
func (simulation) admit(job *pb.DataInfo, _ int32, d *pb.DataInfo, _ bool) error {
	if job == nil {
		return nil
	}
	if d.GetFingerprint() != job.GetFingerprint() || len(d.GetClientSamples()) != len(job.GetClientSamples()) ||
		d.GetTestSamples() != job.GetTestSamples() || d.GetClasses() != job.GetClasses() {
		return fmt.Errorf("loaded different data (%d clients, %d test samples, %d classes, digest %.12s) than the first executor (%d clients, %d test samples, %d classes, digest %.12s): point every executor at the same data_dir",
			len(d.GetClientSamples()), d.GetTestSamples(), d.GetClasses(), d.GetFingerprint(),
			len(job.GetClientSamples()), job.GetTestSamples(), job.GetClasses(), job.GetFingerprint())
	}
	return nil
}

func (simulation) clients(job *pb.DataInfo) []int64 { return job.GetClientSamples() }

func (simulation) owner(int64) int32 { return 0 }

// evalTasks splits the job's test set (test_ratio of it) into shards of
// whole test batches that any executor may evaluate.
func (m simulation) evalTasks(job *pb.DataInfo, round int) []*task {
	n := max(int64(math.Floor(float64(job.GetTestSamples())*m.testRatio)), 1)
	var out []*task
	for i, sh := range evalShards(n, m.testBsz) {
		out = append(out, &task{kind: evalKind, round: round, shard: i, start: sh[0], end: sh[1]})
	}
	return out
}

func (simulation) fingerprint(io.Writer) {}

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

// deployment is experiment_mode deployment: executor k+1 is client k's
// device, with that client's training data and a test set of its own.
type deployment struct {
	executors int
	testRatio float64
	infos     map[int32]*pb.DataInfo // each executor's own data, by rank
}

// admit requires one client with samples per executor and, of all of them,
// only the model's input and output sizes to agree; a rank that rejoins
// after the registry is built must bring as many training samples as
// before.
func (m *deployment) admit(job *pb.DataInfo, rank int32, d *pb.DataInfo, started bool) error {
	if len(d.GetClientSamples()) != 1 || d.GetClientSamples()[0] < 1 {
		return fmt.Errorf("a deployment executor must hold exactly one client with samples")
	}
	if job != nil && (d.GetClasses() != job.GetClasses() || d.GetHeight() != job.GetHeight() || d.GetWidth() != job.GetWidth() || d.GetChannels() != job.GetChannels()) {
		return fmt.Errorf("has %d classes of %dx%d images but the first executor has %d classes of %dx%d: set job_conf.num_classes so every client's model has the same size",
			d.GetClasses(), d.GetWidth(), d.GetHeight(), job.GetClasses(), job.GetWidth(), job.GetHeight())
	}
	if old := m.infos[rank]; old != nil && old.GetClientSamples()[0] != d.GetClientSamples()[0] && started {
		return fmt.Errorf("rejoined with %d training samples, it registered with %d", d.GetClientSamples()[0], old.GetClientSamples()[0])
	}
	m.infos[rank] = d
	return nil
}

// clients is each device's training samples: client k is executor k+1's.
func (m *deployment) clients(*pb.DataInfo) []int64 {
	samples := make([]int64, m.executors)
	for r := range samples {
		samples[r] = m.infos[int32(r+1)].GetClientSamples()[0]
	}
	return samples
}

func (m *deployment) owner(client int64) int32 { return int32(client + 1) }

// evalTasks has each device evaluate test_ratio of its own test data (as
// last reported): shard i is rank i+1's.
func (m *deployment) evalTasks(_ *pb.DataInfo, round int) []*task {
	out := make([]*task, 0, m.executors)
	for r := 1; r <= m.executors; r++ {
		n := max(int64(math.Floor(float64(m.infos[int32(r)].GetTestSamples())*m.testRatio)), 1)
		out = append(out, &task{kind: evalKind, round: round, shard: r - 1, start: 0, end: n, owner: int32(r)})
	}
	return out
}

func (m *deployment) fingerprint(w io.Writer) {
	for r := 1; r <= m.executors; r++ {
		fmt.Fprintf(w, " %d=%s", r, m.infos[int32(r)].GetFingerprint())
	}
}
