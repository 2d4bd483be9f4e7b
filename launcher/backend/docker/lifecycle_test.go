package docker_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/backend/docker"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/launcher/results"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

// A job of one aggregator and two executors runs to the end: Wait sees it
// running and ready, then done; the FedScale logs land in data_path; Stop
// leaves nothing, and a second Stop says the job is unknown.
func TestJobLifecycle(t *testing.T) {
	b := engine(t)
	j := newJob(t, b, 2, 150)
	ctx := timeout(t, 4*time.Minute)

	start := time.Now()
	if err := b.Submit(ctx, j.spec); err != nil {
		t.Fatal(err)
	}
	t.Logf("submit: %v", time.Since(start))
	st, err := b.Wait(ctx, j.name, backend.UntilRunning)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("running and ready: %v after submit began", time.Since(start))
	if st.Phase != backend.Running {
		t.Fatalf("Wait(UntilRunning) phase %s, want Running (%+v); make the job longer?", st.Phase, st.Processes)
	}
	st, err = b.Status(ctx, j.name)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Processes) != 3 {
		t.Fatalf("%d processes, want 3: %+v", len(st.Processes), st.Processes)
	}
	for i, want := range []string{"aggregator", "executor-1", "executor-2"} {
		p := st.Processes[i]
		if p.Name != want || p.Phase != backend.Running || !p.Ready {
			t.Errorf("process %d: %+v, want %s Running and ready", i, p, want)
		}
	}
	if st.Backend != "docker" || st.Job != j.name || st.Created.IsZero() {
		t.Errorf("status header: %+v", st)
	}
	if st.Round == nil {
		t.Errorf("no round from the aggregator's metrics while it runs")
	}
	checkLiveResults(t, ctx, b, j.name, 150)
	checkContainer(t, b.Client(), j)
	list, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range list {
		found = found || s.Job == j.name && len(s.Processes) == 3
	}
	if !found {
		t.Errorf("List does not show %s with 3 processes: %+v", j.name, list)
	}

	st, err = b.Wait(ctx, j.name, backend.UntilDone)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("done: %v after submit began", time.Since(start))
	if st.Phase != backend.Succeeded {
		t.Errorf("phase %s, want Succeeded: %+v", st.Phase, st.Processes)
	}
	for _, p := range st.Processes {
		if p.ExitCode == nil || *p.ExitCode != 0 || p.Phase != backend.Succeeded {
			t.Errorf("process %s: phase %s exit %v, want Succeeded with exit 0", p.Name, p.Phase, p.ExitCode)
		}
	}

	logFile := filepath.Join(j.data, "logs", j.name, "run1", "aggregator", "log")
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("the aggregator's FedScale log: %v", err)
	}
	if !strings.Contains(string(log), "FL Testing in round: 150,") {
		t.Errorf("%s has no final test line:\n%s", logFile, log)
	}
	if _, err := os.Stat(filepath.Join(j.data, "logs", j.name, "run1", "executor", "log")); err != nil {
		t.Errorf("the executors' FedScale log: %v", err)
	}

	// launcher results once it has ended: metrics.jsonl in the mounted
	// data path, and a plot of it.
	res, err := results.Load(ctx, b, j.name)
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != results.SourceFiles || len(res.Records) != 151 || res.Records[150].Round != 150 || res.Records[150].Top1 == nil {
		t.Errorf("results of the finished job: from %s, %d records", res.Source, len(res.Records))
	}
	var plot bytes.Buffer
	if err := results.Plot(&plot, "svg", res); err != nil || !strings.Contains(plot.String(), ">top-1<") {
		t.Errorf("plot: %v", err)
	}

	var out bytes.Buffer
	if err := b.Logs(ctx, j.name, backend.LogOptions{}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[aggregator] ", "[executor-1] ", "[executor-2] ", "Final test accuracy"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, out.String())
		}
	}
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		if !strings.HasPrefix(line, "[") {
			t.Errorf("unprefixed log line %q", line)
			break
		}
	}
	out.Reset()
	if err := b.Logs(ctx, j.name, backend.LogOptions{Process: "executor-2", Follow: true}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() == 0 || strings.Contains(out.String(), "[executor-2]") {
		t.Errorf("one process's logs should be unprefixed and not empty:\n%s", out.String())
	}

	start = time.Now()
	if err := b.Stop(ctx, j.name); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop: %v", time.Since(start))
	if c, n := leftovers(t, b.Client(), j.name); c != 0 || n != 0 {
		t.Errorf("after Stop: %d containers and %d networks carry the job's label", c, n)
	}
	if _, err := b.Client().NetworkInspect(ctx, docker.NetworkName(j.spec), client.NetworkInspectOptions{}); err == nil {
		t.Errorf("network %s is still there", docker.NetworkName(j.spec))
	}

	err = b.Stop(ctx, j.name)
	if !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("second Stop: %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "Docker engine at ") {
		t.Errorf("second Stop does not say where it looked: %v", err)
	}
	if _, err := b.Status(ctx, j.name); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Status after Stop: %v, want ErrNotFound", err)
	}
	if _, err := b.Wait(ctx, j.name, backend.UntilDone); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Wait after Stop: %v, want ErrNotFound", err)
	}
	if err := b.Logs(ctx, j.name, backend.LogOptions{}, &out); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Logs after Stop: %v, want ErrNotFound", err)
	}
}

// Submitting a job whose name runs is ErrExists and creates nothing.
func TestSubmitExisting(t *testing.T) {
	b := engine(t)
	j := newJob(t, b, 2, 100000)
	ctx := timeout(t, 2*time.Minute)
	if err := b.Submit(ctx, j.spec); err != nil {
		t.Fatal(err)
	}
	before := containerIDs(t, b.Client(), j.name)
	err := b.Submit(ctx, j.spec)
	if !errors.Is(err, backend.ErrExists) {
		t.Fatalf("second Submit: %v, want ErrExists", err)
	}
	t.Logf("second Submit: %v", err)
	after := containerIDs(t, b.Client(), j.name)
	if strings.Join(before, ",") != strings.Join(after, ",") {
		t.Errorf("containers changed: %v -> %v", before, after)
	}
	st, err := b.Status(ctx, j.name)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Processes {
		if p.Phase == backend.Failed {
			t.Errorf("the first job was disturbed: %+v", p)
		}
	}
	if err := b.Stop(ctx, j.name); err != nil {
		t.Fatal(err)
	}
	if c, n := leftovers(t, b.Client(), j.name); c != 0 || n != 0 {
		t.Errorf("after Stop: %d containers and %d networks", c, n)
	}
}

// checkContainer looks at the aggregator's container as the engine has it.
func checkContainer(t *testing.T, c *client.Client, j *testJob) {
	t.Helper()
	res, err := c.ContainerInspect(context.Background(), docker.ContainerName(j.name, "aggregator"), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ci := res.Container
	if len(ci.Mounts) != 1 || ci.Mounts[0].Source != j.data || ci.Mounts[0].Destination != job.ContainerDataPath || !ci.Mounts[0].RW {
		t.Errorf("mounts %+v, want only data_path read-write at %s", ci.Mounts, job.ContainerDataPath)
	}
	if ci.HostConfig.RestartPolicy.Name != "no" {
		t.Errorf("restart policy %q", ci.HostConfig.RestartPolicy.Name)
	}
	if ci.Config.User != "65532" {
		t.Errorf("user %q, want the image's 65532 (data_path is root's)", ci.Config.User)
	}
	if l := ci.Config.Labels; l[job.LabelJob] != j.name || l[job.LabelComponent] != "aggregator" || l[job.LabelRank] != "0" ||
		l[job.LabelManagedBy] != job.ManagedBy || l[job.AnnotationJobFile] != j.file {
		t.Errorf("labels %v", l)
	}
	for port, bs := range ci.NetworkSettings.Ports {
		for _, bd := range bs {
			if !bd.HostIP.IsLoopback() {
				t.Errorf("port %s published on %s, want 127.0.0.1", port, bd.HostIP)
			}
		}
	}
	if ep := ci.NetworkSettings.Networks[docker.NetworkName(j.spec)]; ep == nil || !slices.Contains(ep.Aliases, docker.AggregatorAlias) {
		t.Errorf("networks %v: want %s with the alias %s", ci.NetworkSettings.Networks, docker.NetworkName(j.spec), docker.AggregatorAlias)
	}
}

func containerIDs(t *testing.T, c *client.Client, name string) []string {
	t.Helper()
	res, err := c.ContainerList(context.Background(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", job.LabelJob+"="+name)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range res.Items {
		ids = append(ids, it.ID)
	}
	return ids
}

// An image that is neither on the engine nor pullable fails the submit
// before anything is created, with an error naming it and the way out.
func TestSubmitMissingImage(t *testing.T) {
	b := engine(t)
	j := newJob(t, b, 2, 4)
	// A registry on this machine that refuses connections: the pull fails
	// at once and nothing leaves the machine.
	const missing = "127.0.0.1:1/fedscale-test/missing:nope"
	j.spec.ExecutorImage = missing
	err := b.Submit(timeout(t, time.Minute), j.spec)
	if err == nil {
		t.Fatal("Submit with a missing image succeeded")
	}
	var ie *docker.ImageError
	if !errors.As(err, &ie) || ie.Image != missing {
		t.Fatalf("error %v (%T), want an ImageError for %s", err, err, missing)
	}
	for _, want := range []string{missing, "neither", "fsbuild exec --output docker"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	t.Logf("error: %v", err)
	if c, n := leftovers(t, b.Client(), j.name); c != 0 || n != 0 {
		t.Errorf("after the failed Submit: %d containers and %d networks", c, n)
	}
}

// A Submit that fails half way (the last container's name is taken)
// removes the containers and the network it made, and nothing else.
func TestSubmitRollback(t *testing.T) {
	b := engine(t)
	j := newJob(t, b, 2, 4)
	ctx := timeout(t, time.Minute)
	blocker := docker.ContainerName(j.name, "executor-2")
	res, err := b.Client().ContainerCreate(ctx, client.ContainerCreateOptions{Name: blocker, Image: aggImage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Client().ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
	})
	err = b.Submit(ctx, j.spec)
	if err == nil || !strings.Contains(err.Error(), blocker) {
		t.Fatalf("Submit: %v, want an error naming %s", err, blocker)
	}
	t.Logf("error: %v", err)
	if c, n := leftovers(t, b.Client(), j.name); c != 0 || n != 0 {
		t.Errorf("after the failed Submit: %d containers and %d networks", c, n)
	}
	if _, err := b.Client().ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{}); err != nil {
		t.Errorf("the container that was in the way was touched: %v", err)
	}
}

// An executor that exits non-zero while the others run does not fail the
// job (the aggregator carries on): Wait sees it running, Degraded, and
// the process's message names its exit code and the last error line of
// its output. (Before the shared lifecycle this failed the wait.)
func TestExecutorFails(t *testing.T) {
	b := engine(t)
	j := newJob(t, b, 2, 100000)
	// One executor more than the job file has: executor-3 is told
	// --rank 3 and exits 1 (its rank is outside the job's 1..2).
	j.spec.Executors = 3
	ctx := timeout(t, 2*time.Minute)
	if err := b.Submit(ctx, j.spec); err != nil {
		t.Fatal(err)
	}
	st, err := b.Wait(ctx, j.name, backend.UntilRunning)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if st.Phase != backend.Running {
		t.Errorf("phase %s, want Running", st.Phase)
	}
	p := st.Processes[3]
	if p.Name != "executor-3" || p.Phase != backend.Failed || p.ExitCode == nil || *p.ExitCode != 1 {
		t.Errorf("executor-3: %+v, want Failed with exit code 1", p)
	}
	for _, want := range []string{"exit code 1", "outside 1..2"} {
		if !strings.Contains(p.Message, want) {
			t.Errorf("executor-3's message %q lacks %q", p.Message, want)
		}
	}
	if c := degraded(st); !strings.Contains(c, "executor-3") || !strings.Contains(c, "outside 1..2") {
		t.Errorf("conditions %+v, want Degraded naming executor-3 and its error", st.Conditions)
	}
	if err := b.Stop(ctx, j.name); err != nil {
		t.Fatal(err)
	}
	if c, n := leftovers(t, b.Client(), j.name); c != 0 || n != 0 {
		t.Errorf("after Stop: %d containers and %d networks", c, n)
	}
}

// degraded is the message of st's Degraded condition ("" without one).
func degraded(st backend.Status) string {
	c, _ := st.Condition(backend.Degraded)
	return c.Message
}

// An executor killed during the job: the aggregator re-issues its tasks and
// finishes every round, so the job succeeded, with a Degraded condition
// naming the executor and its exit code.
func TestExecutorKilled(t *testing.T) {
	b := engine(t)
	const rounds = 3000 // a few seconds per 400 here: the job must outlast the kill
	j := newJob(t, b, 2, rounds)
	ctx := timeout(t, 4*time.Minute)
	if err := b.Submit(ctx, j.spec); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(ctx, j.name, backend.UntilRunning); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client().ContainerKill(ctx, docker.ContainerName(j.name, "executor-2"), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	if st, err := b.Status(ctx, j.name); err != nil || st.Round != nil && *st.Round >= rounds {
		t.Fatalf("status after the kill: %+v %v; the job must still run (make it longer?)", st, err)
	}
	st, err := b.Wait(ctx, j.name, backend.UntilDone)
	if err != nil {
		t.Fatalf("Wait(UntilDone): %v", err)
	}
	if st.Phase != backend.Succeeded || st.Round == nil || *st.Round != rounds {
		t.Errorf("phase %s round %v, want Succeeded at round %d", st.Phase, st.Round, rounds)
	}
	if p := st.Processes[2]; p.Phase != backend.Failed || p.ExitCode == nil || *p.ExitCode != 137 {
		t.Errorf("executor-2: %+v, want Failed with exit code 137", p)
	}
	if c := degraded(st); !strings.Contains(c, "executor-2") || !strings.Contains(c, "exit code 137") {
		t.Errorf("conditions %+v, want Degraded naming executor-2 and exit code 137", st.Conditions)
	}
	for _, i := range []int{0, 1} {
		if p := st.Processes[i]; p.Phase != backend.Succeeded {
			t.Errorf("%s: %+v, want Succeeded", p.Name, p)
		}
	}
	if err := b.Stop(ctx, j.name); err != nil {
		t.Fatal(err)
	}
}

// With executor restarts, an executor whose process is killed during the
// job (from outside, as the OOM killer would: `docker kill` would disable
// the restart policy) is restarted by the engine, rejoins the aggregator
// under its rank and ends with the job; the job succeeded, and status
// shows the restart and the Degraded condition.
func TestExecutorRestarted(t *testing.T) {
	b := engine(t)
	const rounds = 3000 // a few seconds per 400 here: long enough for a restart
	j := newJob(t, b, 2, rounds)
	j.spec.ExecutorRestarts = 1
	ctx := timeout(t, 4*time.Minute)
	if err := b.Submit(ctx, j.spec); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(ctx, j.name, backend.UntilRunning); err != nil {
		t.Fatal(err)
	}
	res, err := b.Client().ContainerInspect(ctx, docker.ContainerName(j.name, "executor-2"), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pol := res.Container.HostConfig.RestartPolicy; pol.Name != "on-failure" || pol.MaximumRetryCount != 1 {
		t.Fatalf("executor-2's restart policy %+v, want on-failure with 1 retry", pol)
	}
	if err := syscall.Kill(res.Container.State.Pid, syscall.SIGKILL); err != nil {
		t.Skipf("killing executor-2's process %d from this machine: %v (the engine runs elsewhere or as another user)", res.Container.State.Pid, err)
	}
	// Back, ready, and taken back by the aggregator while the job runs.
	for {
		st, err := b.Status(ctx, j.name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Phase == backend.Succeeded || st.Phase == backend.Failed {
			var out bytes.Buffer
			_ = b.Logs(ctx, j.name, backend.LogOptions{Process: "executor-2", Tail: 30}, &out)
			_ = b.Logs(ctx, j.name, backend.LogOptions{Process: "aggregator", Tail: 40}, &out)
			t.Fatalf("the job ended before executor-2 came back (make it longer?): %+v\nexecutor-2's output:\n%s", st, out.String())
		}
		var agg bytes.Buffer
		if err := b.Logs(ctx, j.name, backend.LogOptions{Process: "aggregator"}, &agg); err != nil {
			t.Fatal(err)
		}
		p := st.Processes[2]
		if p.Restarts == 1 && p.Phase == backend.Running && p.Ready && strings.Contains(agg.String(), "Executor 2 rejoined") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("executor-2 did not come back: %+v", p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st, err := b.Wait(ctx, j.name, backend.UntilDone)
	if err != nil {
		t.Fatalf("Wait(UntilDone): %v", err)
	}
	if st.Phase != backend.Succeeded || st.Round == nil || *st.Round != rounds {
		t.Errorf("phase %s round %v, want Succeeded at round %d", st.Phase, st.Round, rounds)
	}
	for i, wantRestarts := range []int{0, 0, 1} {
		if p := st.Processes[i]; p.Phase != backend.Succeeded || p.ExitCode == nil || *p.ExitCode != 0 || p.Restarts != wantRestarts {
			t.Errorf("%s: %+v, want Succeeded with exit code 0 after %d restarts", p.Name, p, wantRestarts)
		}
	}
	if c := degraded(st); !strings.Contains(c, "executor-2") || !strings.Contains(c, "restarted once") {
		t.Errorf("conditions %+v, want Degraded naming executor-2, restarted once", st.Conditions)
	}
	if err := b.Stop(ctx, j.name); err != nil {
		t.Fatal(err)
	}
}

// The aggregator killed fails the job: Wait's *backend.ProcessError names
// it, its container and its exit code.
func TestAggregatorKilled(t *testing.T) {
	b := engine(t)
	j := newJob(t, b, 1, 100000)
	ctx := timeout(t, 2*time.Minute)
	if err := b.Submit(ctx, j.spec); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(ctx, j.name, backend.UntilRunning); err != nil {
		t.Fatal(err)
	}
	agg := docker.ContainerName(j.name, "aggregator")
	if _, err := b.Client().ContainerKill(ctx, agg, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	st, err := b.Wait(ctx, j.name, backend.UntilDone)
	var pe *backend.ProcessError
	if !errors.As(err, &pe) {
		t.Fatalf("Wait: %v, want a ProcessError", err)
	}
	t.Logf("error: %v", err)
	if pe.Process != "aggregator" || pe.ExitCode == nil || *pe.ExitCode != 137 || pe.Where != "container "+agg {
		t.Errorf("ProcessError %+v, want the aggregator's container with exit code 137", pe)
	}
	if st.Phase != backend.Failed || !strings.Contains(err.Error(), "exit code 137 (killed)") {
		t.Errorf("phase %s, error %v; want Failed, exit code 137 (killed)", st.Phase, err)
	}
	if err := b.Stop(ctx, j.name); err != nil {
		t.Fatal(err)
	}
}

// Wait returns when its context ends, saying so.
func TestWaitContext(t *testing.T) {
	b := engine(t)
	j := newJob(t, b, 1, 100000)
	if err := b.Submit(timeout(t, time.Minute), j.spec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := b.Wait(ctx, j.name, backend.UntilDone)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait: %v, want the deadline", err)
	}
	// Following the logs of a running job ends with the context, quietly.
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := b.Logs(ctx, j.name, backend.LogOptions{Follow: true}, &out); err != nil {
		t.Errorf("Logs: %v", err)
	}
	if !strings.Contains(out.String(), "[aggregator] ") || !strings.Contains(out.String(), "[executor-1] ") {
		t.Errorf("followed logs:\n%s", out.String())
	}
	if err := b.Stop(timeout(t, time.Minute), j.name); err != nil {
		t.Fatal(err)
	}
}

// Stop of a job the engine never saw is ErrNotFound.
func TestStopUnknown(t *testing.T) {
	b := engine(t)
	err := b.Stop(timeout(t, time.Minute), "no-such-job-"+uniqueName(t))
	if !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Stop: %v, want ErrNotFound", err)
	}
}

// When data_path belongs to a user other than root, the processes run as
// that user (so they can write their logs there).
func TestRunsAsDataOwner(t *testing.T) {
	b := engine(t)
	j := newJob(t, b, 1, 4)
	const owner = 12345
	if err := os.Chmod(j.data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(j.data, owner, owner); err != nil {
		t.Skipf("cannot give data_path to another user: %v", err)
	}
	ctx := timeout(t, 2*time.Minute)
	if err := b.Submit(ctx, j.spec); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(ctx, j.name, backend.UntilDone); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(j.data, "logs", j.name, "run1", "aggregator", "log"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != owner {
		t.Errorf("the log belongs to uid %d, want %d", uid, owner)
	}
	if err := b.Stop(ctx, j.name); err != nil {
		t.Fatal(err)
	}
}

// An ssh:// engine is dialled through ssh and `docker system dial-stdio`,
// as the docker CLI does. A stand-in ssh on $PATH runs dial-stdio against
// the local engine, so the whole path but sshd itself is exercised.
func TestSSHEngine(t *testing.T) {
	local := engine(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte("#!/bin/sh\nexec docker system dial-stdio\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	const host = "ssh://fedscale@engine.invalid"
	b, err := docker.New(docker.Options{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if addr, from := b.Host(); addr != host || from != "Options.Host" {
		t.Errorf("Host() = %s, %s", addr, from)
	}
	j := newJob(t, local, 1, 100000)
	ctx := timeout(t, 2*time.Minute)
	if err := b.Submit(ctx, j.spec); err != nil {
		t.Fatal(err)
	}
	st, err := b.Wait(ctx, j.name, backend.UntilRunning)
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != backend.Running || len(st.Processes) != 2 {
		t.Fatalf("status %+v", st)
	}
	// Ports published on a remote engine's 127.0.0.1 are not ours to probe.
	if p := st.Processes[0]; !p.Ready || !strings.Contains(p.Message, "not probed") {
		t.Errorf("aggregator %+v: want ready, not probed", p)
	}
	if err := b.Stop(ctx, j.name); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(ctx, j.name); !errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), host) {
		t.Errorf("second Stop: %v, want ErrNotFound naming %s", err, host)
	}
}

// checkLiveResults reads a running job's results, from its aggregator's
// job document through the published health port, once a round is
// recorded.
func checkLiveResults(t *testing.T, ctx context.Context, b *docker.Backend, name string, rounds int) {
	t.Helper()
	for {
		res, err := results.Load(ctx, b, name)
		if errors.Is(err, results.ErrNoRounds) {
			select {
			case <-ctx.Done():
				t.Fatalf("no round recorded: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if res.Source != results.SourceAggregator {
			t.Fatalf("results of the running job from %s, want the aggregator's job document; make the job longer?", res.Source)
		}
		if res.Rounds != rounds || res.Records[0].Round != 0 || res.State == jobapi.StateWaiting {
			t.Errorf("live results: %d rounds, state %s, first record %+v", res.Rounds, res.State, res.Records[0])
		}
		return
	}
}
