// Package local is the launcher backend that runs a job as processes of this
// machine: one aggregator and N executors from the runtime's binaries, each
// under a small supervisor (this launcher binary, re-executed) that records
// its exit status. No Docker or cluster is needed; it is what `make demo`
// style runs and laptops use.
//
// A job's state is a folder under the state directory holding the job file
// the processes read, the supervisors' pids and their exit files. The
// processes' output goes to {log_path}/logs/{job_name}/launcher/, beside the
// runtime's own FedScale logs, and is kept after stop.
package local

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/launcher/progress"
	"github.com/fedscale/fedscale-go/runtime/health"
)

// Options configures the backend.
type Options struct {
	// StateDir holds one folder per job. Default: $FEDSCALE_LAUNCHER_STATE,
	// else $XDG_STATE_HOME/fedscale/launcher, else ~/.local/state/fedscale/launcher.
	StateDir string
	// BinDir holds the aggregator and executor binaries. Default: the folder
	// of this executable when it has them, else $PATH.
	BinDir string
	// Self is the executable re-run as supervisor (it must call
	// MaybeSupervise first thing). Default: os.Executable().
	Self string
	// Poll is how often Wait and follow-mode Logs look again (default 100ms):
	// local processes have no event stream to watch.
	Poll time.Duration
}

// Backend runs jobs as local processes.
type Backend struct {
	opts Options
}

// New checks the options and fills in defaults.
func New(opts Options) (*Backend, error) {
	if opts.StateDir == "" {
		opts.StateDir = defaultStateDir()
	}
	if opts.Self == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("local backend: finding this executable: %w", err)
		}
		opts.Self = self
	}
	if opts.Poll <= 0 {
		opts.Poll = 100 * time.Millisecond
	}
	return &Backend{opts: opts}, nil
}

func defaultStateDir() string {
	if d := os.Getenv("FEDSCALE_LAUNCHER_STATE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "fedscale", "launcher")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "fedscale-launcher")
	}
	return filepath.Join(home, ".local", "state", "fedscale", "launcher")
}

// Name is "local".
func (b *Backend) Name() string { return job.BackendLocal }

// state is what a job's folder records.
type state struct {
	Name    string    `json:"name"`
	JobFile string    `json:"jobFile"`
	LogDir  string    `json:"logDir"` // {log_path}/logs/{job_name}
	Created time.Time `json:"created"`
	// Instance identifies this submission (job name and a random nonce):
	// every process gets it in health.InstanceEnv and its health endpoint
	// answers with it, so a probe that reaches another job's process (on
	// this job's port) does not count. Empty in state written before it
	// existed: then any answer counts.
	Instance  string      `json:"instance,omitempty"`
	Processes []procState `json:"processes"`
}

type procState struct {
	Name       string   `json:"name"`
	Pid        int      `json:"pid"`        // the supervisor's; it leads its own process group
	StartTicks uint64   `json:"startTicks"` // /proc start time, so a reused pid is not mistaken for ours
	HealthPort int      `json:"healthPort"`
	Log        string   `json:"log"`
	ExitFile   string   `json:"exitFile"`
	Argv       []string `json:"argv"`
}

func (b *Backend) dir(name string) string { return filepath.Join(b.opts.StateDir, name) }

func (b *Backend) binary(name string) (string, error) {
	if b.opts.BinDir != "" {
		p := filepath.Join(b.opts.BinDir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("local backend: %s not found in --bin-dir %s (run make build)", name, b.opts.BinDir)
		}
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("local backend: the runtime's %s binary is neither beside the launcher nor on $PATH (run make build, or pass --bin-dir)", name)
	}
	return p, nil
}

// tlsDir is the folder of the job's TLS files in its state folder.
const tlsDir = "tls"

// Plan prints the processes Submit would start.
func (b *Backend) Plan(w io.Writer, s *job.Spec) error {
	fmt.Fprintf(w, "# local processes of job %s (state in %s)\n", s.Name, b.dir(s.Name))
	for _, p := range s.Processes(filepath.Join(b.dir(s.Name), job.ContainerConfigFile), "127.0.0.1", filepath.Join(b.dir(s.Name), tlsDir)) {
		fmt.Fprintf(w, "%s: %s %s  # health http://127.0.0.1:%d/readyz\n", p.Name, binaryName(p.Component), strings.Join(p.Args, " "), p.HealthPort)
	}
	return nil
}

func binaryName(component string) string {
	if component == "aggregator" {
		return "aggregator"
	}
	return "executor"
}

// Submit starts the job's processes.
func (b *Backend) Submit(ctx context.Context, s *job.Spec) (err error) {
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
		if err != nil {
			b.kill(st)
			os.RemoveAll(dir)
		}
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
			Argv:     append([]string{bins[p.Component]}, p.Args...),
		}
		spec, _ := json.Marshal(superviseArgs{ExitFile: ps.ExitFile, LogFile: ps.Log, Argv: ps.Argv})
		cmd := exec.Command(b.opts.Self)
		cmd.Env = append(without(without(os.Environ(), SuperviseEnv), health.InstanceEnv),
			SuperviseEnv+"="+string(spec), health.InstanceEnv+"="+instance)
		// Its own session: the job outlives this launcher and a terminal's
		// Ctrl-C; stop signals the whole group.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("local backend: starting %s: %w", p.Name, err)
		}
		ps.Pid = cmd.Process.Pid
		ps.StartTicks, _ = startTicks(ps.Pid)
		_ = cmd.Process.Release()
		st.Processes = append(st.Processes, ps)
		if err := writeState(dir, st); err != nil {
			return err
		}
	}
	return ctx.Err()
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
		if u.port < 1 || u.port > 65535 {
			return fmt.Errorf("job %q: port %d (%s) is outside 1..65535", s.Name, u.port, u.what)
		}
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

// CheckPorts is Submit's check of the job's ports, for --dry-run.
func CheckPorts(s *job.Spec) error { return checkPorts(s, s.Processes("", "127.0.0.1", "")) }

// newInstance returns a new identity for a submission of job name.
func newInstance(name string) (string, error) {
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", fmt.Errorf("local backend: instance nonce: %w", err)
	}
	return name + "/" + hex.EncodeToString(nonce[:]), nil
}

func writeState(dir string, st *state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "state.json.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("local backend: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}

func (b *Backend) readState(name string) (*state, error) {
	if job.ValidateName(name) != nil {
		return nil, backend.NotFound(name, "this machine")
	}
	data, err := os.ReadFile(filepath.Join(b.dir(name), "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, backend.NotFound(name, "this machine (local state in "+b.opts.StateDir+")")
	}
	if err != nil {
		return nil, fmt.Errorf("local backend: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("local backend: %s: %w", filepath.Join(b.dir(name), "state.json"), err)
	}
	return &st, nil
}

// startTicks is field 22 of /proc/PID/stat: when the process started.
func startTicks(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// alive reports whether the recorded supervisor still runs (and is ours).
func alive(p procState) bool {
	t, err := startTicks(p.Pid)
	if err != nil {
		return false
	}
	if p.StartTicks != 0 && t != p.StartTicks {
		return false
	}
	// A zombie (exited, not yet reaped by its parent) counts as gone.
	data, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid) + "/stat")
	if err == nil {
		s := string(data)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && s[i+2] == 'Z' {
			return false
		}
	}
	return true
}

var probeClient = &http.Client{Timeout: 500 * time.Millisecond}

func healthURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// probeProcess asks p's health port whether p is ready. ours is false when the
// port answers for another instance than st's: then nothing it says
// (readiness, metrics) is about this job.
func probeProcess(ctx context.Context, st *state, p procState) (ready, ours bool, msg string) {
	r, err := health.ProbeReady(ctx, probeClient, healthURL(p.HealthPort))
	if err != nil {
		return false, false, ""
	}
	if !r.Ours(st.Instance) {
		return false, false, fmt.Sprintf("health port %d answers for another process (instance %q, not this job's %q)", p.HealthPort, r.Instance, st.Instance)
	}
	return r.Ready, true, ""
}

func (b *Backend) status(ctx context.Context, st *state, probe bool) backend.Status {
	out := backend.Status{Job: st.Name, Backend: job.BackendLocal, Created: st.Created}
	aggOurs := false // the aggregator runs and its health port is this job's
	for _, p := range st.Processes {
		ps := backend.ProcessStatus{Name: p.Name}
		isAlive := alive(p)
		// Read the exit file after the liveness check: a supervisor writes it
		// before it exits, so "not alive" and no file means really gone.
		if e, err := readExit(p.ExitFile); err == nil {
			code := e.Code
			ps.ExitCode = &code
			ps.Phase = backend.Succeeded
			if code != 0 {
				ps.Phase = backend.Failed
				ps.Message = "exit code " + strconv.Itoa(code)
				if e.Signal != "" {
					ps.Message += " (" + e.Signal + ")"
				}
			}
		} else if isAlive {
			ps.Phase = backend.Running
			var ours bool
			if probe {
				ps.Ready, ours, ps.Message = probeProcess(ctx, st, p)
			}
			if p.Name == "aggregator" {
				aggOurs = ours
			}
		} else {
			ps.Phase = backend.Failed
			ps.Message = "process gone without an exit status (killed with its supervisor?)"
		}
		out.Processes = append(out.Processes, ps)
	}
	out.Phase = backend.Summarize(out.Processes)
	var pr progress.Progress
	var err error
	if aggOurs {
		pr, err = progress.Scrape(ctx, healthURL(st.Processes[0].HealthPort))
	}
	if !aggOurs || err != nil {
		pr, _ = progress.FromLogs(st.LogDir)
	}
	out.Round, out.Accuracy = pr.Round, pr.Accuracy
	return out
}

// Status reports the job's processes and progress.
func (b *Backend) Status(ctx context.Context, name string) (backend.Status, error) {
	st, err := b.readState(name)
	if err != nil {
		return backend.Status{}, err
	}
	return b.status(ctx, st, true), nil
}

// List reports every job with a state folder.
func (b *Backend) List(ctx context.Context) ([]backend.Status, error) {
	entries, err := os.ReadDir(b.opts.StateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("local backend: %w", err)
	}
	var out []backend.Status
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		st, err := b.readState(e.Name())
		if err != nil {
			continue // a folder being created or removed
		}
		out = append(out, b.status(ctx, st, false))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Job < out[j].Job })
	return out, nil
}

// Wait polls (local processes have no event stream) until the job reaches until.
func (b *Backend) Wait(ctx context.Context, name string, until backend.Until) (backend.Status, error) {
	st, err := b.readState(name)
	if err != nil {
		return backend.Status{}, err
	}
	t := time.NewTicker(b.opts.Poll)
	defer t.Stop()
	for {
		s := b.status(ctx, st, until == backend.UntilRunning)
		if err := failure(s); err != nil {
			return s, err
		}
		switch until {
		case backend.UntilRunning:
			if s.Phase == backend.Succeeded || allReady(s) {
				return s, nil
			}
		case backend.UntilDone:
			if s.Phase == backend.Succeeded {
				return s, nil
			}
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("job %s: waiting: %w (phase %s)", name, ctx.Err(), s.Phase)
		case <-t.C:
		}
	}
}

func allReady(s backend.Status) bool {
	for _, p := range s.Processes {
		if !(p.Phase == backend.Running && p.Ready) && p.Phase != backend.Succeeded {
			return false
		}
	}
	return true
}

// failure names the first failed process.
func failure(s backend.Status) error {
	for _, p := range s.Processes {
		if p.Phase == backend.Failed {
			return fmt.Errorf("job %s: %s failed: %s", s.Job, p.Name, p.Message)
		}
	}
	return nil
}

// Logs prints the processes' output.
func (b *Backend) Logs(ctx context.Context, name string, o backend.LogOptions, w io.Writer) error {
	st, err := b.readState(name)
	if err != nil {
		return err
	}
	var procs []procState
	for _, p := range st.Processes {
		if o.Process == "" || o.Process == p.Name {
			procs = append(procs, p)
		}
	}
	if len(procs) == 0 {
		return fmt.Errorf("job %s has no process %q (it has aggregator and executor-1..%d)", name, o.Process, len(st.Processes)-1)
	}
	prefix := len(procs) > 1
	offsets := make([]int64, len(procs))
	t := time.NewTicker(b.opts.Poll)
	defer t.Stop()
	for {
		for i, p := range procs {
			n, err := copyFrom(w, p.Log, offsets[i], prefix, p.Name)
			offsets[i] += n
			if err != nil {
				return err
			}
		}
		if !o.Follow {
			return nil
		}
		done := true
		for _, p := range procs {
			if alive(p) {
				done = false
			}
		}
		if done {
			// One last read: output written just before exit.
			for i, p := range procs {
				n, _ := copyFrom(w, p.Log, offsets[i], prefix, p.Name)
				offsets[i] += n
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// copyFrom writes the complete lines of path after offset, and returns how
// many bytes it consumed.
func copyFrom(w io.Writer, path string, offset int64, prefix bool, name string) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	r := bufio.NewReader(f)
	var n int64
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return n, nil // an incomplete last line waits for the next read
		}
		n += int64(len(line))
		if prefix {
			line = "[" + name + "] " + line
		}
		if _, err := io.WriteString(w, line); err != nil {
			return n, err
		}
	}
}

// Stop ends the job's processes (SIGTERM to each supervisor's process group,
// SIGKILL after a grace period) and removes its state folder. Logs stay.
func (b *Backend) Stop(ctx context.Context, name string) error {
	st, err := b.readState(name)
	if err != nil {
		return err
	}
	if err := b.kill(st); err != nil {
		return err
	}
	if err := os.RemoveAll(b.dir(name)); err != nil {
		return fmt.Errorf("local backend: %w", err)
	}
	return nil
}

const grace = 10 * time.Second

func (b *Backend) kill(st *state) error {
	var live []procState
	for _, p := range st.Processes {
		if alive(p) {
			_ = syscall.Kill(-p.Pid, syscall.SIGTERM)
			live = append(live, p)
		}
	}
	deadline := time.Now().Add(grace)
	for len(live) > 0 {
		var still []procState
		for _, p := range live {
			if alive(p) {
				still = append(still, p)
			}
		}
		live = still
		if len(live) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, p := range live {
				_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
			}
			deadline = time.Now().Add(grace)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
