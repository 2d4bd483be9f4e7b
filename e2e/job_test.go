package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/fedscale/fedscale-go/launcher/backend/docker"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/mtls"
)

// timeStamp is every job's log folder name: {log_path}/logs/{job}/e2e.
const timeStamp = "e2e"

// jobConf shapes one job file.
type jobConf struct {
	name         string // job name, DNS-safe and unique in the run
	executors    int
	rounds       int
	model        string
	participants int
	localSteps   int
	lr           float64
	evalInterval int
	checkpoint   bool
	dataSet      string // folder under data_path
}

// smallJob is the full job and the benchmark's: 1 aggregator + 2
// executors, 5 rounds of 10 clients, logistic regression; well under a
// second of training, so its time is the containers'.
func smallJob(name string) jobConf {
	return jobConf{name: name, executors: 2, rounds: 5, model: "logistic", participants: 10, localSteps: 20, lr: 0.1, evalInterval: 1, dataSet: "mnist"}
}

// slowJob trains an MLP for about a second a round (in processes on this
// machine), long enough to kill a container in the middle of one.
func slowJob(name string, rounds int) jobConf {
	return jobConf{name: name, executors: 2, rounds: rounds, model: "mlp", participants: 10, localSteps: 30, lr: 0.1, evalInterval: 1, dataSet: "mnist"}
}

// file is the job file, as users write docker jobs: the launcher reads the
// top-level keys, every process reads job_conf.
func (c jobConf) file(s *suite) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `# FedScale job of the e2e suite
use_container: docker
data_path: %s
num_executors: %d
aggregator_image: %s
executor_image: %s
job_conf:
    - job_name: %s
    - log_path: %s
    - time_stamp: %s
    - data_set: mnist
    - grey_input: True
    - data_dir: %s/%s
    - model: %s
    - num_participants: %d
    - rounds: %d
    - eval_interval: %d
    - local_steps: %d
    - batch_size: 20
    - test_bsz: 100
    - filter_less: 20
    - learning_rate: %g
    - save_checkpoint: %s
    - use_cuda: False
`, s.data, c.executors, s.aggImage, s.execImage, c.name, job.ContainerDataPath, timeStamp,
		job.ContainerDataPath, c.dataSet, c.model, c.participants, c.rounds, c.evalInterval, c.localSteps, c.lr,
		map[bool]string{true: "True", false: "False"}[c.checkpoint])
	return b.Bytes()
}

// write puts the job file in a test folder and returns its path.
func (c jobConf) write(tb testing.TB, s *suite) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), c.name+".yml")
	if err := os.WriteFile(path, c.file(s), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// tcJob is one job run with testcontainers-go: a network, the aggregator
// and the executors, made the way the launcher's Docker backend makes them
// (same arguments, job file at /etc/fedscale/job.yml, data_path bind-mounted
// at /FedScale/benchmark, the aggregator reachable as "aggregator").
type tcJob struct {
	tb     testing.TB
	s      *suite
	conf   jobConf
	spec   *job.Spec
	procs  []job.Process
	tls    mtls.Bundle // the job's certificates, as the launcher makes them
	net    *testcontainers.DockerNetwork
	mu     sync.Mutex
	ctrs   map[string]*testcontainers.DockerContainer // by process name
	logDir string                                     // the job's FedScale log folder, on this machine
	closed bool
}

// timing is when a job reached each point, from the start of
// testcontainers (creating the network).
type timing struct {
	ready      time.Duration // every container started and past its wait strategy
	firstRound time.Duration // round 1 aggregated (its line in the FedScale log)
	done       time.Duration // every container exited
}

func (t timing) String() string {
	return fmt.Sprintf("containers ready %.2f s, first round %.2f s, whole job %.2f s",
		t.ready.Seconds(), t.firstRound.Seconds(), t.done.Seconds())
}

// newJob parses the job file as the launcher does and registers the
// cleanup that removes everything of the job, whatever the test did.
func newJob(tb testing.TB, s *suite, c jobConf) *tcJob {
	tb.Helper()
	spec, err := job.Parse(c.file(s), c.name+".yml", job.Options{Backend: job.BackendDocker})
	if err != nil {
		tb.Fatal(err)
	}
	tls, err := spec.IssueTLS(docker.AggregatorAlias)
	if err != nil {
		tb.Fatal(err)
	}
	j := &tcJob{tb: tb, s: s, conf: c, spec: spec, ctrs: map[string]*testcontainers.DockerContainer{}, tls: tls,
		procs:  spec.Processes(job.ContainerConfigPath, docker.AggregatorAlias, job.ContainerTLSDir),
		logDir: filepath.Join(s.data, "logs", c.name, timeStamp)}
	tb.Cleanup(j.close)
	return j
}

func (j *tcJob) labels() map[string]string {
	return map[string]string{labelRun: j.s.runID, labelJob: j.conf.name}
}

// start creates the network, starts the aggregator and waits for its
// /readyz, then starts the executors together, each waited for by its
// first log line (the job may end before an executor's /readyz is polled).
func (j *tcJob) start(ctx context.Context) error {
	var err error
	j.net, err = network.New(ctx, network.WithLabels(j.labels()))
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	agg := j.procs[0]
	if _, err := j.run(ctx, agg, wait.ForHTTP("/readyz").WithPort(portSpec(agg.HealthPort)).
		WithPollInterval(50*time.Millisecond).WithStartupTimeout(time.Minute)); err != nil {
		return err
	}
	errs := make([]error, len(j.procs)-1)
	var wg sync.WaitGroup
	for i, p := range j.procs[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = j.run(ctx, p, wait.ForLog("connecting to aggregator").
				WithPollInterval(50*time.Millisecond).WithStartupTimeout(time.Minute))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func portSpec(p int) string { return strconv.Itoa(p) + "/tcp" }

// run starts the container of one process.
func (j *tcJob) run(ctx context.Context, p job.Process, strategy wait.Strategy) (*testcontainers.DockerContainer, error) {
	health, _ := mobynet.PortFrom(uint16(p.HealthPort), mobynet.TCP)
	labels := j.labels()
	labels["fedscale.e2e.process"] = p.Name
	var aliases []string
	if p.Rank == 0 {
		aliases = []string{docker.AggregatorAlias}
	}
	files := []testcontainers.ContainerFile{{
		Reader: bytes.NewReader(j.spec.Config), ContainerFilePath: job.ContainerConfigPath, FileMode: 0o644,
	}}
	// Copied in as root: readable by the image's user. (The launcher
	// makes them the user's and 0400; TestLauncherDocker runs that path.)
	for name, b := range j.tls.For(p.Rank) {
		files = append(files, testcontainers.ContainerFile{Reader: bytes.NewReader(b), ContainerFilePath: job.ContainerTLSDir + "/" + name, FileMode: 0o444})
	}
	c, err := testcontainers.Run(ctx, p.Image,
		testcontainers.WithLogger(tclog.TestLogger(j.tb)),
		testcontainers.WithName(docker.ContainerName(j.spec.Name, p.Name)),
		testcontainers.WithCmd(p.Args...),
		testcontainers.WithLabels(labels),
		testcontainers.WithEnv(map[string]string{job.EnvHome: job.ContainerHome}),
		testcontainers.WithFiles(files...),
		network.WithNetwork(aliases, j.net),
		testcontainers.WithExposedPorts(portSpec(p.HealthPort)),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: j.s.data, Target: job.ContainerDataPath})
			// Published on 127.0.0.1 only, on an ephemeral port.
			hc.PortBindings = mobynet.PortMap{health: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "0"}}}
		}),
		testcontainers.WithWaitStrategy(strategy),
	)
	if c != nil {
		j.mu.Lock()
		j.ctrs[p.Name] = c
		j.mu.Unlock()
	}
	if err != nil {
		return c, fmt.Errorf("%s: %w", p.Name, err)
	}
	return c, nil
}

// ctr is the container of a process ("aggregator", "executor-2").
func (j *tcJob) ctr(name string) *testcontainers.DockerContainer {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := j.ctrs[name]
	if c == nil {
		j.tb.Fatalf("job %s has no container %s", j.conf.name, name)
	}
	return c
}

// exitCode waits until the container is not running and returns its exit
// code.
func (j *tcJob) exitCode(ctx context.Context, name string) (int, error) {
	res := j.s.docker.ContainerWait(ctx, j.ctr(name).GetContainerID(), client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-res.Result:
		if r.Error != nil && r.Error.Message != "" {
			return int(r.StatusCode), errors.New(r.Error.Message)
		}
		return int(r.StatusCode), nil
	case err := <-res.Error:
		return -1, fmt.Errorf("waiting for %s: %w", name, err)
	case <-ctx.Done():
		return -1, fmt.Errorf("waiting for %s to exit: %w", name, ctx.Err())
	}
}

// waitAll waits for every container to exit and returns the exit codes.
func (j *tcJob) waitAll(ctx context.Context) (map[string]int, error) {
	codes := map[string]int{}
	for _, p := range j.procs {
		code, err := j.exitCode(ctx, p.Name)
		if err != nil {
			return codes, err
		}
		codes[p.Name] = code
	}
	return codes, nil
}

// kill sends SIGKILL to a process's container.
func (j *tcJob) kill(ctx context.Context, name string) error {
	_, err := j.s.docker.ContainerKill(ctx, j.ctr(name).GetContainerID(), client.ContainerKillOptions{Signal: "KILL"})
	return err
}

// aggLog is the aggregator's FedScale log, read from the mounted folder.
func (j *tcJob) aggLog() string {
	b, _ := os.ReadFile(filepath.Join(j.logDir, "aggregator", "log"))
	return string(b)
}

// waitLog polls the aggregator's FedScale log in the mounted folder until
// re matches and returns the submatches. It gives up when ctx ends or the
// aggregator exits without the line.
func (j *tcJob) waitLog(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	agg := j.ctr("aggregator")
	lastState := time.Now()
	for {
		if m := re.FindStringSubmatch(j.aggLog()); m != nil {
			return m, nil
		}
		if time.Since(lastState) > 500*time.Millisecond {
			lastState = time.Now()
			if st, err := agg.State(ctx); err == nil && !st.Running && st.Status != container.StateRestarting {
				if m := re.FindStringSubmatch(j.aggLog()); m != nil {
					return m, nil
				}
				return nil, fmt.Errorf("the aggregator exited (code %d) before logging %q", st.ExitCode, re)
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %q in the aggregator's log: %w", re, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// metrics reads the aggregator's metrics.jsonl.
func (j *tcJob) metrics() ([]fedlog.Record, error) {
	f, err := os.Open(filepath.Join(j.logDir, "metrics.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []fedlog.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r fedlog.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("metrics.jsonl line %q: %w", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// finalTop1 is the top-1 accuracy of the last evaluation in metrics.jsonl.
func finalTop1(recs []fedlog.Record) (round int, top1 float64, ok bool) {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Top1 != nil {
			return recs[i].Round, *recs[i].Top1, true
		}
	}
	return 0, 0, false
}

// Patterns of the FedScale log lines the suites look for.
var (
	// FedScale's own test line, whole: time, level, source, round, clock, results.
	testLineRE = regexp.MustCompile(`(?m)^\(\d\d-\d\d\) \d\d:\d\d:\d\d INFO +\[[\w.]+:\d+\] FL Testing in round: (\d+), virtual_clock: [0-9.e+-]+, ` +
		`results: \{'round': (\d+), 'clock': [0-9.e+-]+, 'top_1': ([0-9.e+-]+), 'top_5': ([0-9.e+-]+), 'loss': ([0-9.e+-]+)\}$`)
	roundLineRE = regexp.MustCompile(`(?m)^\(\d\d-\d\d\) \d\d:\d\d:\d\d INFO +\[[\w.]+:\d+\] Wall clock: \d+ s, round: (\d+), ` +
		`Planned participants: (\d+), Succeed participants: (\d+), Training loss: [0-9.e+-]+$`)
)

func roundLine(r int) *regexp.Regexp {
	return regexp.MustCompile(`(?m)\] Wall clock: \d+ s, round: ` + strconv.Itoa(r) + `, Planned participants: `)
}

// checkRounds asserts that the aggregator's FedScale log holds a round line
// and a test line for every round from..to, in FedScale's format, and that
// the executors' log is there too.
func (j *tcJob) checkRounds(t testing.TB, from, to int) {
	t.Helper()
	log := j.aggLog()
	rounds := map[int]int{}
	for _, m := range roundLineRE.FindAllStringSubmatch(log, -1) {
		r, _ := strconv.Atoi(m[1])
		rounds[r]++
	}
	tested := map[int]int{}
	for _, m := range testLineRE.FindAllStringSubmatch(log, -1) {
		r, _ := strconv.Atoi(m[1])
		tested[r]++
		if m[1] != m[2] {
			t.Errorf("test line of round %s reports round %s", m[1], m[2])
		}
	}
	for r := from; r <= to; r++ {
		if rounds[r] == 0 {
			t.Errorf("the aggregator's log has no line for round %d", r)
		}
		if r%j.conf.evalInterval == 0 && tested[r] == 0 {
			t.Errorf("the aggregator's log has no \"FL Testing in round: %d\" line in FedScale's format", r)
		}
	}
	if t.Failed() {
		t.Logf("aggregator log %s:\n%s", filepath.Join(j.logDir, "aggregator", "log"), tail(log, 60))
	}
	if fi, err := os.Stat(filepath.Join(j.logDir, "executor", "log")); err != nil || fi.Size() == 0 {
		t.Errorf("the executors' FedScale log %s: %v (empty: %v)", filepath.Join(j.logDir, "executor", "log"), err, err == nil)
	}
}

// close removes the job's containers and network (testcontainers'
// Terminate, then anything else carrying the job's label), first logging
// the end of each container's output when the test failed.
func (j *tcJob) close() {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return
	}
	j.closed = true
	ctrs := j.ctrs
	j.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, p := range j.procs {
		c := ctrs[p.Name]
		if c == nil {
			continue
		}
		if j.tb.Failed() {
			j.tb.Logf("--- %s output (last 40 lines):\n%s", p.Name, tail(containerLogs(ctx, c), 40))
		}
		if err := c.Terminate(ctx, testcontainers.StopTimeout(0)); err != nil {
			j.tb.Logf("terminating %s: %v", p.Name, err)
		}
	}
	if j.net != nil {
		if err := j.net.Remove(ctx); err != nil {
			j.tb.Logf("removing network %s: %v", j.net.Name, err)
		}
	}
	if err := removeLabelled(ctx, j.s.docker, labelJob+"="+j.conf.name); err != nil {
		j.tb.Errorf("cleanup of job %s: %v", j.conf.name, err)
	}
}

func containerLogs(ctx context.Context, c *testcontainers.DockerContainer) string {
	rc, err := c.Logs(ctx)
	if err != nil {
		return "(logs: " + err.Error() + ")"
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// removeLabelled force-removes every container, then every network, that
// carries label (key=value).
func removeLabelled(ctx context.Context, cli *client.Client, label string) error {
	f := make(client.Filters).Add("label", label)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cs.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, err)
		}
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, n := range ns.Items {
		if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// countLabelled counts the containers and networks carrying label.
func countLabelled(tb testing.TB, cli *client.Client, label string) (containers, networks int) {
	tb.Helper()
	ctx := context.Background()
	f := make(client.Filters).Add("label", label)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		tb.Fatal(err)
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		tb.Fatal(err)
	}
	return len(cs.Items), len(ns.Items)
}

// runWholeJob runs a job to its end and times it; the caller checks the
// result.
func runWholeJob(ctx context.Context, tb testing.TB, s *suite, c jobConf) (*tcJob, timing, map[string]int) {
	tb.Helper()
	j := newJob(tb, s, c)
	var tm timing
	t0 := time.Now()
	if err := j.start(ctx); err != nil {
		tb.Fatal(err)
	}
	tm.ready = time.Since(t0)
	if _, err := j.waitLog(ctx, roundLine(1)); err != nil {
		tb.Fatal(err)
	}
	tm.firstRound = time.Since(t0)
	codes, err := j.waitAll(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tm.done = time.Since(t0)
	return j, tm, codes
}

func ctxFor(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}
