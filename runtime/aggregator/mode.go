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
	// agreement is what every executor's data description must agree on
	// with the job's: the one the aggregator derived from data_dir
	// (jobData), or else the one state.agree takes from a majority of the
	// ranks; the others are refused.
	agreement(d *pb.DataInfo) dataKey
	// admit checks what this mode requires of executor rank's data
	// description d on its own, once d agrees with the job's (when there
	// is one yet), and remembers what this mode needs of it. started is
	// true once the client registry is built. d has at least one client.
	// On error nothing is remembered.
	admit(rank int32, d *pb.DataInfo, started bool) error
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

// agreement is the whole data set: executors that disagree would
// silently train different clients.
func (simulation) agreement(d *pb.DataInfo) dataKey {
	k := inputKey(d)
	k.clients, k.test, k.digest = len(d.GetClientSamples()), d.GetTestSamples(), d.GetFingerprint()
	return k
}

func (simulation) admit(int32, *pb.DataInfo, bool) error { return nil }

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

// agreement is only the model's input and output sizes: each device has
// data of its own. Devices rarely hold every class, so job_conf.num_classes
// should name the model's size.
func (*deployment) agreement(d *pb.DataInfo) dataKey { return inputKey(d) }

// admit requires one client with samples per executor; a rank that
// rejoins after the registry is built must bring as many training samples
// as before.
func (m *deployment) admit(rank int32, d *pb.DataInfo, started bool) error {
	if len(d.GetClientSamples()) != 1 || d.GetClientSamples()[0] < 1 {
		return fmt.Errorf("a deployment executor must hold exactly one client with samples")
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

// dataKey is the part of a data description that executors must agree
// on: the model's input and output sizes and, in simulation, the data set
// (its client and test counts and digest; zero in deployment).
type dataKey struct {
	classes, channels, height, width int32
	clients                          int
	test                             int64
	digest                           string
}

// inputKey is d's model input and output sizes.
func inputKey(d *pb.DataInfo) dataKey {
	return dataKey{classes: d.GetClasses(), channels: d.GetChannels(), height: d.GetHeight(), width: d.GetWidth()}
}

func (k dataKey) String() string {
	s := fmt.Sprintf("%d classes of %dx%dx%d inputs", k.classes, k.channels, k.height, k.width)
	if k.digest != "" {
		s = fmt.Sprintf("%d clients, %d test samples, %s, digest %.12s", k.clients, k.test, s, k.digest)
	}
	return s
}
