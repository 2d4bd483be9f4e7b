package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/runtime/health"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
)

func TestMain(m *testing.M) {
	// The backend re-runs this test binary as each process's supervisor.
	MaybeSupervise()
	os.Exit(m.Run())
}

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// runtimeBinaries compiles the real aggregator and executor once per run.
func runtimeBinaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the runtime's binaries")
	}
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "launcher-local-bin-")
		if binErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+"/",
			"github.com/fedscale/fedscale-go/runtime/cmd/aggregator",
			"github.com/fedscale/fedscale-go/runtime/cmd/executor").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// newJob writes synthetic data and a job file (as users write them) and
// returns the spec.
func newJob(t *testing.T, name string, rounds int, dataDir string) (*job.Spec, string) {
	t.Helper()
	home := t.TempDir()
	if dataDir == "" {
		dataDir = filepath.Join(home, "data")
		if err := jobtest.WriteSynthetic(dataDir, jobtest.SynthOptions{Clients: 12, PerClient: 30, Test: 60, Classes: 4, Seed: 5}); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(home, "conf.yml")
	conf := fmt.Sprintf(`ps_ip: 127.0.0.1
worker_ips:
    - 127.0.0.1:[2]
setup_commands:
job_conf:
    - job_name: %s
    - log_path: %s
    - ps_port: %d
    - data_set: synthetic
    - grey_input: True                  # our key: the images as stored, 1 grey channel
    - data_dir: %s
    - model: logistic
    - num_participants: 4
    - rounds: %d
    - eval_interval: 2
    - local_steps: 3
    - batch_size: 10
    - test_bsz: 20
    - filter_less: 10
    - use_cuda: False
`, name, home, infratest.FreePorts(t, 3), dataDir, rounds)
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := job.Load(file, job.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, home
}

func newBackend(t *testing.T) *Backend {
	t.Helper()
	b, err := New(Options{StateDir: t.TempDir(), BinDir: runtimeBinaries(t), Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// TestWholeJob: submit, running, done with exit codes 0, progress, logs,
// stop, and a second stop that says the job is unknown.
func TestWholeJob(t *testing.T) {
	b := newBackend(t)
	s, home := newJob(t, "local_whole", 6, "")
	c := ctx(t)
	if err := b.Submit(c, s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop(context.Background(), s.Name) })
	if err := b.Submit(c, s); !errors.Is(err, backend.ErrExists) {
		t.Errorf("second submit: %v, want ErrExists", err)
	}
	if _, err := b.Wait(c, s.Name, backend.UntilRunning); err != nil {
		t.Fatal(err)
	}
	st, err := b.Wait(c, s.Name, backend.UntilDone)
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != backend.Succeeded || len(st.Processes) != 3 {
		t.Fatalf("status %+v", st)
	}
	// Executors exit on their own right after the aggregator.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err = b.Status(c, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		done := true
		for _, p := range st.Processes {
			if p.ExitCode == nil {
				done = false
			} else if *p.ExitCode != 0 {
				t.Errorf("%s exited %d", p.Name, *p.ExitCode)
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Round == nil || *st.Round != 6 || st.Accuracy == nil {
		t.Errorf("progress: round %v accuracy %v, want round 6 and an accuracy", st.Round, st.Accuracy)
	}
	var logs bytes.Buffer
	if err := b.Logs(c, s.Name, backend.LogOptions{}, &logs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "[aggregator] ") || !strings.Contains(logs.String(), "FL Testing in round: 6") {
		t.Errorf("logs lack the aggregator's FedScale lines:\n%s", logs.String())
	}
	jobs, err := b.List(c)
	if err != nil || len(jobs) != 1 || jobs[0].Job != s.Name {
		t.Errorf("List = %+v, %v", jobs, err)
	}
	if err := b.Stop(c, s.Name); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(c, s.Name); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("second stop: %v, want ErrNotFound", err)
	}
	if _, err := b.Status(c, s.Name); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("status after stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "logs", "local_whole", "launcher", "aggregator.log")); err != nil {
		t.Errorf("stop must keep the logs: %v", err)
	}
}

// TestStopRunning ends a long job's processes by their recorded pids.
func TestStopRunning(t *testing.T) {
	b := newBackend(t)
	s, _ := newJob(t, "local_stop", 100000, "")
	c := ctx(t)
	if err := b.Submit(c, s); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(c, s.Name, backend.UntilRunning); err != nil {
		t.Fatal(err)
	}
	st, err := b.readState(s.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(c, s.Name); err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Processes {
		if alive(p) {
			t.Errorf("%s (pid %d) still runs after stop", p.Name, p.Pid)
		}
	}
}

// TestFailedExecutor: an executor that exits non-zero makes Wait fail,
// naming it and its exit code.
func TestFailedExecutor(t *testing.T) {
	b := newBackend(t)
	s, _ := newJob(t, "local_fail", 4, "/nonexistent/data")
	c := ctx(t)
	if err := b.Submit(c, s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop(context.Background(), s.Name) })
	_, err := b.Wait(c, s.Name, backend.UntilDone)
	if err == nil || !strings.Contains(err.Error(), "executor-") || !strings.Contains(err.Error(), "exit code 1") {
		t.Fatalf("Wait = %v, want an executor failure with exit code 1", err)
	}
}

// TestExecutorKilled: an executor killed during the job (its process, as
// the OOM killer would; its supervisor records exit code 137): the
// aggregator re-issues its tasks and finishes every round, so the job
// succeeded, with a Degraded condition naming the executor.
func TestExecutorKilled(t *testing.T) {
	b := newBackend(t)
	const rounds = 300
	s, _ := newJob(t, "local_killed", rounds, "")
	c := ctx(t)
	if err := b.Submit(c, s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop(context.Background(), s.Name) })
	if _, err := b.Wait(c, s.Name, backend.UntilRunning); err != nil {
		t.Fatal(err)
	}
	st, err := b.readState(s.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(supervised(t, st.Processes[2].Pid), syscall.SIGKILL); err != nil { // executor-2
		t.Fatal(err)
	}
	if now, err := b.Status(c, s.Name); err != nil || now.Round != nil && *now.Round >= rounds {
		t.Fatalf("status after the kill: %+v %v; the job must still run (make it longer?)", now, err)
	}
	done, err := b.Wait(c, s.Name, backend.UntilDone)
	if err != nil {
		t.Fatalf("Wait(UntilDone): %v", err)
	}
	if done.Phase != backend.Succeeded || done.Round == nil || *done.Round != rounds {
		t.Errorf("phase %s round %v, want Succeeded at round %d", done.Phase, done.Round, rounds)
	}
	if p := done.Processes[2]; p.Phase != backend.Failed || p.ExitCode == nil || *p.ExitCode != 137 {
		t.Errorf("executor-2: %+v, want Failed with exit code 137", p)
	}
	d, _ := done.Condition(backend.Degraded)
	degraded := d.Message
	if !strings.Contains(degraded, "executor-2") || !strings.Contains(degraded, "exit code 137 (killed)") {
		t.Errorf("conditions %+v, want Degraded naming executor-2 and exit code 137 (killed)", done.Conditions)
	}
}

// supervised is the pid of the process supervisor sup runs.
func supervised(t *testing.T, sup int) int {
	t.Helper()
	// The process is the supervisor's child, started by any of its threads.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", sup))
	var children []string
	for _, f := range tasks {
		data, _ := os.ReadFile(f)
		children = append(children, strings.Fields(string(data))...)
	}
	if len(children) != 1 {
		t.Skipf("supervisor (pid %d) has children %v, want one (no /proc?)", sup, children)
	}
	pid, err := strconv.Atoi(children[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestExecutorRestarted: with executor restarts, an executor killed during
// the job is started again by its supervisor, rejoins the aggregator under
// its rank and ends with the job; the job succeeded, and status shows the
// restart and the Degraded condition.
func TestExecutorRestarted(t *testing.T) {
	b := newBackend(t)
	// Long enough (a few seconds when idle) for a restart on a loaded
	// machine: 300 rounds once ended before executor-2 was back.
	const rounds = 1500
	s, _ := newJob(t, "local_restarted", rounds, "")
	s.ExecutorRestarts = 1
	c := ctx(t)
	if err := b.Submit(c, s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop(context.Background(), s.Name) })
	if _, err := b.Wait(c, s.Name, backend.UntilRunning); err != nil {
		t.Fatal(err)
	}
	st, err := b.readState(s.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(supervised(t, st.Processes[2].Pid), syscall.SIGKILL); err != nil { // executor-2
		t.Fatal(err)
	}
	// Back, ready, and taken back by the aggregator while the job runs.
	for {
		now, err := b.Status(c, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		if now.Phase == backend.Succeeded || now.Phase == backend.Failed {
			t.Fatalf("the job ended before executor-2 came back (make it longer?): %+v", now)
		}
		var agg bytes.Buffer
		if err := b.Logs(c, s.Name, backend.LogOptions{Process: "aggregator"}, &agg); err != nil {
			t.Fatal(err)
		}
		p := now.Processes[2]
		if p.Restarts == 1 && p.Phase == backend.Running && p.Ready && strings.Contains(agg.String(), "Executor 2 rejoined") {
			if p.Message != "restarted after exit code 137 (killed)" {
				t.Errorf("executor-2 running again: message %q, want how it ended before", p.Message)
			}
			break
		}
		if c.Err() != nil {
			t.Fatalf("executor-2 did not come back: %+v", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	done, err := b.Wait(c, s.Name, backend.UntilDone)
	if err != nil {
		t.Fatalf("Wait(UntilDone): %v", err)
	}
	if done.Phase != backend.Succeeded || done.Round == nil || *done.Round != rounds {
		t.Errorf("phase %s round %v, want Succeeded at round %d", done.Phase, done.Round, rounds)
	}
	d, ok := done.Condition(backend.Degraded)
	if !ok || !strings.Contains(d.Message, "executor-2") {
		t.Errorf("conditions %+v, want Degraded naming executor-2", done.Conditions)
	}
	// The restarted executor ends with the job, on its own.
	for {
		st, err := b.Status(c, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		if p := st.Processes[2]; p.ExitCode != nil {
			if p.Phase != backend.Succeeded || *p.ExitCode != 0 || p.Restarts != 1 {
				t.Errorf("executor-2: %+v, want Succeeded with exit code 0 after 1 restart", p)
			}
			break
		}
		if c.Err() != nil {
			t.Fatal("executor-2 did not exit after the job")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var logs bytes.Buffer
	if err := b.Logs(c, s.Name, backend.LogOptions{Process: "executor-2"}, &logs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "launcher: executor ended with exit code 137 (killed); started again after 1s (restart 1 of 1)") {
		t.Errorf("executor-2's output does not record the restart:\n%s", tailOf(logs.String(), 20))
	}
}

func tailOf(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func TestMissingBinaries(t *testing.T) {
	b, err := New(Options{StateDir: t.TempDir(), BinDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newJob(t, "local_nobin", 2, "/nonexistent")
	err = b.Submit(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "aggregator not found in --bin-dir") {
		t.Fatalf("Submit = %v", err)
	}
	if _, err := os.Stat(b.dir(s.Name)); !os.IsNotExist(err) {
		t.Errorf("a failed submit left %s behind", b.dir(s.Name))
	}
}

// TestSecondJobOnSamePorts: a second job on the first one's ports fails at
// submit, naming the port and its key, starts nothing and leaves no state;
// the first job keeps running, ready, and finishes.
func TestSecondJobOnSamePorts(t *testing.T) {
	b := newBackend(t)
	// A job that cannot end during the test: with a short one, Wait's
	// UntilRunning once returned after every process had already
	// succeeded (it accepts Succeeded) and the ports were free again.
	first, home := newJob(t, "local_first", 100000, "")
	c := ctx(t)
	if err := b.Submit(c, first); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop(context.Background(), first.Name) })
	if st, err := b.Wait(c, first.Name, backend.UntilRunning); err != nil || st.Phase != backend.Running {
		t.Fatalf("first job: %s, %v; want Running", st.Phase, err)
	}
	second, err := job.Load(filepath.Join(home, "conf.yml"), job.Options{Name: "local-second"})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Submit(c, second)
	want := fmt.Sprintf("port %d (job_conf ps_port, the aggregator's gRPC port) is not free", first.PsPort)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second Submit = %v, want an error containing %q", err, want)
	}
	if _, err := os.Stat(b.dir(second.Name)); !os.IsNotExist(err) {
		t.Errorf("the refused submit left %s behind", b.dir(second.Name))
	}
	if _, err := b.Status(c, second.Name); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("status of the refused job: %v, want ErrNotFound", err)
	}
	// The first job is untouched: running, ready, its rounds advancing
	// and read from its own processes.
	for {
		st, err := b.Status(c, first.Name)
		if err != nil || st.Phase != backend.Running {
			t.Fatalf("the first job after the refused submit: %s, %v; want Running", st.Phase, err)
		}
		if st.Round != nil && *st.Round >= 3 {
			break
		}
		select {
		case <-c.Done():
			t.Fatalf("the first job's round did not reach 3: %v", st.Round)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestCheckPorts names each busy port with the key it comes from.
func TestCheckPorts(t *testing.T) {
	s, _ := newJob(t, "local_ports", 2, "/nonexistent")
	procs := s.Processes("conf.yml", "127.0.0.1", "tls")
	if err := checkPorts(s, procs); err != nil {
		t.Fatalf("free ports: %v", err)
	}
	for _, tc := range []struct {
		port int
		want string
	}{
		{s.PsPort, "(job_conf ps_port, the aggregator's gRPC port)"},
		{s.PsPort + 1, "(aggregator's health port, job_conf ps_port+1)"},
		{s.PsPort + 3, "(executor-2's health port, job_conf ps_port+1+rank)"},
	} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", tc.port))
		if err != nil {
			t.Fatal(err)
		}
		err = checkPorts(s, procs)
		l.Close()
		want := fmt.Sprintf("port %d %s is not free", tc.port, tc.want)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("port %d busy: checkPorts = %v, want %q", tc.port, err, want)
		}
	}
}

// TestProbeOtherInstance: a health port that answers for another job's
// process (ready, with a round) neither makes this job's process ready nor
// lends this job its round; the same answer with this job's instance does.
func TestProbeOtherInstance(t *testing.T) {
	t.Setenv(health.InstanceEnv, "other/0123")
	reg := prometheus.NewRegistry()
	round := prometheus.NewGauge(prometheus.GaugeOpts{Name: health.MetricName(health.RoundMetric), Help: "round"})
	reg.MustRegister(round)
	round.Set(7)
	hs, err := health.Listen("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	hs.SetReady(true, "")
	_, port, err := net.SplitHostPort(hs.Addr())
	if err != nil {
		t.Fatal(err)
	}
	p := procState{Name: "aggregator", Pid: os.Getpid(), ExitFile: filepath.Join(t.TempDir(), "aggregator.exit")}
	if p.HealthPort, err = strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	// The process runs: its lock is held (here, by the test).
	p.LockFile = filepath.Join(t.TempDir(), "aggregator.lock")
	lock, err := lockFile(p.LockFile)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	b := &Backend{}
	for _, tc := range []struct {
		instance string
		ready    bool
		round    *int
		message  string
	}{
		{"mine/4567", false, nil, `answers for another process (instance "other/0123", not this job's "mine/4567")`},
		{"other/0123", true, ptr(7), ""},
		{"", true, ptr(7), ""}, // state from before instances: any answer counts
	} {
		st := &state{Name: "mine", Instance: tc.instance, LogDir: t.TempDir(), Processes: []procState{p}}
		got := b.status(context.Background(), st, true)
		ps := got.Processes[0]
		if ps.Phase != backend.Running || ps.Ready != tc.ready || !strings.Contains(ps.Message, tc.message) {
			t.Errorf("instance %q: %+v, want Running, ready %v, message %q", tc.instance, ps, tc.ready, tc.message)
		}
		if (got.Round == nil) != (tc.round == nil) || got.Round != nil && *got.Round != *tc.round {
			t.Errorf("instance %q: round %v, want %v", tc.instance, got.Round, tc.round)
		}
	}
}

func ptr(i int) *int { return &i }

// TestSupervisorLock: a supervisor's lock is held from before it starts
// until it exits, whichever way; Stop's SIGTERM reaches the process through
// it, and its exit status is recorded. No /proc: what runs on macOS.
func TestSupervisorLock(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	b, err := New(Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p := procState{Name: "executor-1", Log: filepath.Join(dir, "x.log"), ExitFile: filepath.Join(dir, "x.exit"),
		LockFile: filepath.Join(dir, "x.lock"), Argv: []string{sh, "-c", "echo started; exec sleep 60"}}
	if p.Pid, err = b.startSupervisor(p); err != nil {
		t.Fatal(err)
	}
	if !alive(p) {
		t.Fatal("the supervisor's lock is not held right after it started")
	}
	// A second lock of the same file fails while the supervisor runs.
	if _, err := lockFile(p.LockFile); err == nil {
		t.Error("locked the running supervisor's lock file")
	}
	// Once the process runs, the supervisor forwards SIGTERM (before, the
	// signal ends the supervisor itself).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if out, _ := os.ReadFile(p.Log); strings.Contains(string(out), "started") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the supervised process did not start within 30s")
		}
	}
	if err := b.kill(context.Background(), &state{Processes: []procState{p}}); err != nil {
		t.Fatal(err)
	}
	if alive(p) {
		t.Error("alive after stop")
	}
	e, err := readExit(p.ExitFile)
	if err != nil || e.Code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit %+v, %v; want the code of SIGTERM", e, err)
	}
	// State from before lock files: the pid alone.
	if old := (procState{Pid: os.Getpid()}); !alive(old) {
		t.Error("a running pid without a lock file counts as gone")
	}
}

// TestStopTimeout: a stop that runs out of time (a process that ignores
// SIGTERM, in its grace period) names what still runs and keeps the job's
// state, so a later stop finishes the job.
func TestStopTimeout(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	b, err := New(Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := b.dir("stubborn")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := procState{Name: "executor-1", Log: filepath.Join(dir, "x.log"), ExitFile: filepath.Join(dir, "x.exit"),
		LockFile: filepath.Join(dir, "x.lock"), Argv: []string{sh, "-c", "trap '' TERM; echo started; exec sleep 60"}}
	if p.Pid, err = b.startSupervisor(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-p.Pid, syscall.SIGKILL) })
	if err := writeState(dir, &state{Name: "stubborn", Processes: []procState{p}}); err != nil {
		t.Fatal(err)
	}
	c := ctx(t)
	for out, _ := os.ReadFile(p.Log); !strings.Contains(string(out), "started"); out, _ = os.ReadFile(p.Log) {
		if c.Err() != nil {
			t.Fatal("the process did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	short, cancel := context.WithTimeout(c, 200*time.Millisecond)
	defer cancel()
	err = b.Delete(short, "stubborn")
	if want := fmt.Sprintf("job stubborn: stopping: context deadline exceeded; still running: executor-1 (pid %d)", p.Pid); err == nil || err.Error() != want {
		t.Fatalf("Delete = %v, want %q", err, want)
	}
	if _, err := b.readState("stubborn"); err != nil {
		t.Fatalf("the state went with the timed-out stop: %v", err)
	}
	if err := b.Delete(c, "stubborn"); err != nil { // SIGKILL after the grace period
		t.Fatal(err)
	}
	if alive(p) {
		t.Error("alive after the second stop")
	}
}

// TestPlanRestarts: --dry-run shows which processes restart on failure.
func TestPlanRestarts(t *testing.T) {
	b, err := New(Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 2} {
		s, _ := newJob(t, "local_plan", 1, t.TempDir())
		s.ExecutorRestarts = n
		var out bytes.Buffer
		if err := b.Plan(&out, s); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		want := []string{"never restarted", "never restarted", "never restarted"} // aggregator, executor-1, executor-2
		if n > 0 {
			want[1], want[2] = "restarted on failure up to 2 times", "restarted on failure up to 2 times"
		}
		if len(lines) != 4 {
			t.Fatalf("plan:\n%s", out.String())
		}
		for i, w := range want {
			if !strings.HasSuffix(lines[i+1], "; "+w) {
				t.Errorf("restarts %d: %q, want it to end with %q", n, lines[i+1], w)
			}
		}
	}
}

// TestSupervisorRestarts: a supervisor starts its failing process again up
// to its limit, recording each restart, and status reports them; a stop in
// the backoff ends it without the restart.
func TestSupervisorRestarts(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		name         string
		code         int // the process's exit status
		max          int
		stopInWait   bool // stop in the first backoff
		wantRestarts int  // by status
		wantRuns     int  // the process's starts
	}{
		{"limit reached", 5, 2, false, 2, 3},
		{"stopped in the backoff", 5, 5, true, 0, 1},
		// The aggregator stopped the job: a restart cannot change that.
		{"job stopped", health.ExitJobStopped, 2, false, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := New(Options{StateDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			p := procState{Name: "executor-1", Log: filepath.Join(dir, "x.log"), ExitFile: filepath.Join(dir, "x.exit"),
				LockFile: filepath.Join(dir, "x.lock"), Argv: []string{sh, "-c", fmt.Sprintf("echo run; exit %d", tc.code)},
				MaxRestarts: tc.max, RestartFile: filepath.Join(dir, "x.restarts")}
			if p.Pid, err = b.startSupervisor(p); err != nil {
				t.Fatal(err)
			}
			st := &state{Name: "j", Processes: []procState{p}}
			c := ctx(t)
			if tc.stopInWait {
				for !readRestarts(p.RestartFile).Waiting {
					if c.Err() != nil {
						t.Fatal("no restart recorded")
					}
					time.Sleep(10 * time.Millisecond)
				}
				ps := b.status(c, st, false).Processes[0]
				if ps.Phase != backend.Pending || ps.Restarts != 1 || ps.Message != fmt.Sprintf("attempt 1 of 6 failed (exit code %d); restarting", tc.code) {
					t.Errorf("in the backoff: %+v", ps)
				}
				if err := b.kill(c, st); err != nil {
					t.Fatal(err)
				}
			}
			for alive(p) {
				if c.Err() != nil {
					t.Fatal("the supervisor did not exit")
				}
				time.Sleep(10 * time.Millisecond)
			}
			ps := b.status(c, st, false).Processes[0]
			if ps.Phase != backend.Failed || ps.ExitCode == nil || *ps.ExitCode != tc.code || ps.Restarts != tc.wantRestarts {
				t.Errorf("status %+v, want Failed with exit code %d after %d restarts", ps, tc.code, tc.wantRestarts)
			}
			out, _ := os.ReadFile(p.Log)
			if n := strings.Count(string(out), "run\n"); n != tc.wantRuns {
				t.Errorf("the process ran %d times, want %d:\n%s", n, tc.wantRuns, out)
			}
			if n := strings.Count(string(out), "started again"); n != tc.wantRuns-1 {
				t.Errorf("%d restart lines, want %d:\n%s", n, tc.wantRuns-1, out)
			}
		})
	}
}

// TestOtherPlatforms: the backend and its tests build for macOS, which
// has flock but no /proc.
func TestOtherPlatforms(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go vet for other platforms")
	}
	for _, goos := range []string{"darwin"} {
		cmd := exec.Command("go", "vet", ".")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=arm64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go vet: %v\n%s", goos, err, out)
		}
	}
}
