package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/runtime/health"
)

// Plan prints the processes Submit would start.
func (b *Backend) Plan(w io.Writer, s *job.Spec) error {
	fmt.Fprintf(w, "# local processes of job %s (state in %s)\n", s.Name, b.dir(s.Name))
	for _, p := range s.Processes(filepath.Join(b.dir(s.Name), job.ContainerConfigFile), "127.0.0.1", filepath.Join(b.dir(s.Name), tlsDir)) {
		restart := "never restarted"
		if p.Rank > 0 && s.ExecutorRestarts > 0 {
			restart = fmt.Sprintf("restarted on failure up to %d times", s.ExecutorRestarts)
		}
		fmt.Fprintf(w, "%s: %s %s  # health http://127.0.0.1:%d/readyz; %s\n", p.Name, binaryName(p.Component), strings.Join(p.Args, " "), p.HealthPort, restart)
	}
	return nil
}

func binaryName(component string) string {
	if component == "aggregator" {
		return "aggregator"
	}
	return "executor"
}

// Create starts the job's processes, each under its supervisor.
func (b *Backend) Create(ctx context.Context, s *job.Spec) (err error) {
	dir := b.dir(s.Name)
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("job %q: %w (state in %s); stop it first", s.Name, backend.ErrExists, dir)
	}
	bins := map[string]string{}
	for _, c := range []string{"aggregator", "executor"} {
		if bins[c], err = b.binary(c); err != nil {
			return err
		}
	}
	cfg := filepath.Join(dir, job.ContainerConfigFile)
	procs := s.Processes(cfg, "127.0.0.1", filepath.Join(dir, tlsDir))
	if err := checkPorts(s, procs); err != nil {
		return err
	}
	instance, err := newInstance(s.Name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(b.opts.StateDir, 0o755); err != nil {
		return fmt.Errorf("local backend: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if os.IsExist(err) {
			return fmt.Errorf("job %q: %w (state in %s); stop it first", s.Name, backend.ErrExists, dir)
		}
		return fmt.Errorf("local backend: %w", err)
	}
	st := &state{Name: s.Name, JobFile: s.File, Created: time.Now().UTC(), Instance: instance}
	defer func() {
		if err == nil {
			return
		}
		// Bounded (a process stuck in the kernel ignores even SIGKILL);
		// what outlives it keeps its state folder, so stop can finish it.
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*grace)
		defer cancel()
		if kerr := b.kill(kctx, st); kerr != nil {
			err = fmt.Errorf("%w; cleaning up: %v (state kept in %s: launcher stop %s)", err, kerr, dir, s.Name)
			return
		}
		os.RemoveAll(dir)
	}()
	if err := os.WriteFile(cfg, s.Config, 0o644); err != nil {
		return fmt.Errorf("local backend: %w", err)
	}
	logPath, err := filepath.Abs(s.Job.Conf.LogPath)
	if err != nil {
		return err
	}
	st.LogDir = filepath.Join(logPath, "logs", s.Job.Conf.JobName)
	outDir := filepath.Join(st.LogDir, "launcher")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("local backend: log folder: %w", err)
	}
	// The TLS files, 0600 in a 0700 folder of the job's state: every
	// process runs as this user, no other user can read the keys.
	bundle, err := s.IssueTLS("127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	if err := bundle.Write(filepath.Join(dir, tlsDir)); err != nil {
		return fmt.Errorf("local backend: TLS files: %w", err)
	}
	for _, p := range procs {
		ps := procState{
			Name: p.Name, HealthPort: p.HealthPort,
			Log:      filepath.Join(outDir, p.Name+".log"),
			ExitFile: filepath.Join(dir, p.Name+".exit"),
			LockFile: filepath.Join(dir, p.Name+".lock"),
			Argv:     append([]string{bins[p.Component]}, p.Args...),
		}
		if p.Rank > 0 {
			// Executors only: the aggregator takes a restarted executor
			// back under its rank, while a restarted aggregator would
			// train again from round 0.
			ps.MaxRestarts = s.ExecutorRestarts
			ps.RestartFile = filepath.Join(dir, p.Name+".restarts")
		}
		if ps.Pid, err = b.startSupervisor(ps, health.InstanceEnv+"="+instance); err != nil {
			return fmt.Errorf("local backend: starting %s: %w", p.Name, err)
		}
		st.Processes = append(st.Processes, ps)
		if err := writeState(dir, st); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// startSupervisor starts p's supervisor, in a session of its own (the job
// outlives this launcher and a terminal's Ctrl-C; stop signals the whole
// group), holding p's lock, with env added to this process's environment.
// It returns the supervisor's pid.
func (b *Backend) startSupervisor(p procState, env ...string) (int, error) {
	lock, err := lockFile(p.LockFile)
	if err != nil {
		return 0, err
	}
	// The supervisor's inherited descriptor keeps the lock once this one
	// is closed.
	defer lock.Close()
	spec, err := json.Marshal(superviseArgs{ExitFile: p.ExitFile, LogFile: p.Log, Argv: p.Argv, Lock: true,
		MaxRestarts: p.MaxRestarts, RestartFile: p.RestartFile})
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(b.opts.Self)
	cmd.Env = append(without(without(os.Environ(), SuperviseEnv), health.InstanceEnv), SuperviseEnv+"="+string(spec))
	cmd.Env = append(cmd.Env, env...)
	cmd.ExtraFiles = []*os.File{lock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	return pid, nil
}

// checkPorts fails, naming the port and the job file key it comes from,
// when a port the job's processes will listen on is already taken on this
// machine (by another job, say): its processes would fail to listen, and
// the port's owner would answer this job's probes.
func checkPorts(s *job.Spec, procs []job.Process) error {
	type use struct {
		port int
		what string
	}
	uses := []use{{s.PsPort, "job_conf ps_port, the aggregator's gRPC port"}}
	for _, p := range procs {
		from := "ps_port+1"
		if p.Rank > 0 {
			from = "ps_port+1+rank"
		}
		uses = append(uses, use{p.HealthPort, fmt.Sprintf("%s's health port, job_conf %s", p.Name, from)})
	}
	for _, u := range uses {
		// The runtime listens on every address (":port"): so does the check.
		l, err := net.Listen("tcp", ":"+strconv.Itoa(u.port))
		if err != nil {
			return fmt.Errorf("job %q: port %d (%s) is not free on this machine: %w; stop what holds it (another job? see launcher list) or choose another job_conf ps_port", s.Name, u.port, u.what, err)
		}
		l.Close()
	}
	return nil
}

// CheckPorts is Create's check of the job's ports, for --dry-run.
func CheckPorts(s *job.Spec) error { return checkPorts(s, s.Processes("", "127.0.0.1", "")) }
