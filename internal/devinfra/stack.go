package devinfra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// Service is what the devinfra command starts, stops and reports on as a
// whole: BuildKit, Kube, Docker.
type Service interface {
	// Start makes it run and be ready, reusing a healthy running one, and
	// returns what callers read: an address, a kubeconfig path, or "".
	Start(ctx context.Context) (string, error)
	Stop(ctx context.Context) error
	// Status describes it, a line per part; ok when it serves.
	Status(ctx context.Context) (lines []string, ok bool)
}

var (
	_ Service = (*BuildKit)(nil)
	_ Service = (*Kube)(nil)
	_ Service = (*Docker)(nil)
	_ Service = (*Node)(nil)
	_ Service = (*Swarm)(nil)
)

// Check is a probe on what a stack's daemons manage together (the nodes
// Ready, a ServiceAccount made), run once every daemon is ready. Log names
// the daemon whose log explains a failure.
type Check struct {
	What, Log string
	Probe     Probe
}

// Stack is daemons started in order in one state folder and stopped in
// reverse. Its methods expect the caller to hold the folder's lock.
type Stack struct {
	State   State
	Daemons []Daemon
	Checks  []Check
	// Timeout bounds a start once the binaries exist.
	Timeout time.Duration
	Tools   *Toolbox
	Log     *slog.Logger
}

// probeTimeout bounds one attempt of a probe.
const probeTimeout = 5 * time.Second

// Healthy returns nil when every daemon of the stack is our running
// process and its Ready probe passes: a stack to reuse as it is.
func (st *Stack) Healthy(ctx context.Context) error {
	for _, d := range st.Daemons {
		pid := st.State.PID(d)
		if pid == 0 {
			return fmt.Errorf("%s is not running", d.Name)
		}
		// One an older tree started with other arguments is restarted.
		if args, ok := cmdline(pid); ok && !slices.Equal(args[1:], d.Args) {
			return fmt.Errorf("%s runs with other arguments than this tree gives it", d.Name)
		}
		if d.Ready == nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := d.Ready(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", d.Name, err)
		}
	}
	return nil
}

// Leftovers reports whether any daemon has a pid file: a previous start's
// stack, running or not, to stop before starting afresh.
func (st *Stack) Leftovers() bool {
	for _, d := range st.Daemons {
		if _, err := os.Stat(st.State.pidFile(d.Name)); err == nil {
			return true
		}
	}
	return false
}

// running names each daemon of the stack whose process still runs.
func (st *Stack) running() []string {
	var out []string
	for _, d := range st.Daemons {
		if pid := st.State.PID(d); pid != 0 {
			out = append(out, fmt.Sprintf("%s pid %d", d.Name, pid))
		}
	}
	return out
}

// Paths resolves each daemon's Tool to a binary: a tool of the table is
// built (or found in the cache), anything else is looked up on PATH.
func (st *Stack) Paths(ctx context.Context) (map[string]string, error) {
	var built []string
	paths := map[string]string{}
	for _, d := range st.Daemons {
		if _, ok := LookupTool(d.Tool); ok {
			built = append(built, d.Tool)
			continue
		}
		p, err := exec.LookPath(d.Tool)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Name, err)
		}
		paths[d.Tool] = p
	}
	if len(built) > 0 {
		if st.Tools == nil {
			return nil, fmt.Errorf("no toolbox to build %v", built)
		}
		bins, err := st.Tools.Paths(ctx, built...)
		if err != nil {
			return nil, err
		}
		for k, v := range bins {
			paths[k] = v
		}
	}
	return paths, nil
}

// Up makes the stack run, under its folder's lock. A healthy running
// stack is reused as it is (started is false); otherwise the leftovers of
// an earlier start are stopped, prepare readies the folder (checks, config
// files, fresh data), the binaries are built or found, and Start runs.
func (st *Stack) Up(ctx context.Context, prepare func(context.Context) error) (started bool, err error) {
	unlock, err := st.State.Lock(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	if st.Healthy(ctx) == nil {
		return false, nil
	}
	if st.Leftovers() {
		st.Log.Info("found a partly running or unhealthy " + st.names() + "; stopping it and starting afresh")
		if err := st.Stop(); err != nil {
			return false, err
		}
	}
	if prepare != nil {
		if err := prepare(ctx); err != nil {
			return false, err
		}
	}
	paths, err := st.Paths(ctx)
	if err != nil {
		return false, err
	}
	t0 := time.Now()
	st.Log.Info("starting " + st.names() + " (state in " + st.State.Dir + ")")
	if err := st.Start(ctx, paths); err != nil {
		return false, err
	}
	st.Log.Info(fmt.Sprintf("ready in %.1f s", time.Since(t0).Seconds()))
	return true, nil
}

func (st *Stack) names() string {
	var n []string
	for _, d := range st.Daemons {
		n = append(n, d.Name)
	}
	return strings.Join(n, ", ")
}

// Start launches the daemons in order, waiting where a daemon says Await,
// then waits for every daemon's Ready and the stack's Checks, all within
// Timeout. On failure it shows the relevant log's last lines, stops what it
// started and returns the error.
func (st *Stack) Start(ctx context.Context, paths map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	var procs []*proc
	err := func() error {
		for _, d := range st.Daemons {
			p, err := st.State.launch(d, paths[d.Tool])
			if err != nil {
				return err
			}
			procs = append(procs, p)
			if d.Await && d.Ready != nil {
				if err := st.wait(ctx, d.Name, d.Name, d.Ready, procs); err != nil {
					return err
				}
			}
			if d.Then != nil {
				if err := d.Then(ctx); err != nil {
					st.showLog(d.Name)
					return fmt.Errorf("%s: %w", d.Name, err)
				}
			}
		}
		for _, d := range st.Daemons {
			if !d.Await && d.Ready != nil {
				if err := st.wait(ctx, d.Name, d.Name, d.Ready, procs); err != nil {
					return err
				}
			}
		}
		for _, c := range st.Checks {
			if err := st.wait(ctx, c.What, c.Log, c.Probe, procs); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		if serr := st.Stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("stopping after the failed start: %w", serr))
		}
	}
	return err
}

// wait polls probe every 100 ms until it passes; it fails at once when a
// launched daemon has exited, and when ctx ends.
func (st *Stack) wait(ctx context.Context, what, logName string, probe Probe, procs []*proc) error {
	for {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := probe(pctx)
		cancel()
		if err == nil {
			return nil
		}
		for _, p := range procs {
			if p.exited() {
				st.showLog(p.d.Name)
				return fmt.Errorf("%s exited during start-up (waiting for %s); see %s", p.d.Name, what, st.State.LogFile(p.d.Name))
			}
		}
		select {
		case <-ctx.Done():
			st.showLog(logName)
			return fmt.Errorf("%s not ready after %s: %v; see %s", what, st.Timeout, err, st.State.LogFile(logName))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (st *Stack) showLog(name string) {
	f := st.State.LogFile(name)
	st.Log.Info("---- last lines of " + f + " ----\n" + tail(f, 40))
}

// Stop stops the daemons in reverse order (a daemon that is not running,
// or whose pid is no longer ours, is skipped) and removes their pid files.
func (st *Stack) Stop() error {
	for i := len(st.Daemons) - 1; i >= 0; i-- {
		if err := st.State.stop(st.Daemons[i]); err != nil {
			return err
		}
	}
	return nil
}

// Down stops the stack under its folder's lock, then removes the paths
// named (data a fresh start must not find). A folder that does not exist
// has nothing running.
func (st *Stack) Down(ctx context.Context, remove ...string) error {
	if _, err := os.Stat(st.State.Dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	unlock, err := st.State.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := st.Stop(); err != nil {
		return err
	}
	for _, p := range remove {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

// Status is one line per daemon: running (with its pid) or not; ok when
// all run.
func (st *Stack) Status() (lines []string, ok bool) {
	ok = true
	for _, d := range st.Daemons {
		if pid := st.State.PID(d); pid != 0 {
			lines = append(lines, fmt.Sprintf("%s running (pid %d)", d.Name, pid))
		} else {
			lines = append(lines, d.Name+" not running")
			ok = false
		}
	}
	return lines, ok
}

// TableTools lists the tools of the table that the services' daemons run,
// once each in order, so that one Toolbox.Dirs builds them all, groups in
// parallel, before any service starts.
func TableTools(svcs ...Service) []string {
	var names []string
	for _, s := range svcs {
		st, ok := s.(interface{ stack() *Stack })
		if !ok {
			continue
		}
		for _, d := range st.stack().Daemons {
			if _, ok := LookupTool(d.Tool); ok && !slices.Contains(names, d.Tool) {
				names = append(names, d.Tool)
			}
		}
	}
	return names
}
