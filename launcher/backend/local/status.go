package local

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/launcher/progress"
	"github.com/fedscale/fedscale-go/runtime/health"
)

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

// status is the job's processes as its state folder, their supervisors and
// (with probe) their health ports say.
func (b *Backend) status(ctx context.Context, st *state, probe bool) backend.Status {
	out := backend.Status{Job: st.Name, Backend: job.BackendLocal, Created: st.Created}
	aggOurs := false // the aggregator runs and its health port is this job's
	for _, p := range st.Processes {
		ps := backend.ProcessStatus{Name: p.Name, Where: "pid " + strconv.Itoa(p.Pid), LogRef: p.Log}
		isAlive := alive(p)
		r := readRestarts(p.RestartFile)
		ps.Restarts = r.Count
		// Read the exit file after the liveness check: a supervisor writes it
		// before it exits, so "not alive" and no file means really gone.
		if e, err := readExit(p.ExitFile); err == nil {
			code := e.Code
			ps.ExitCode = &code
			ps.Phase = backend.Succeeded
			if code != 0 {
				ps.Phase, ps.Message = backend.Failed, backend.ExitMessage(code, e.Signal)
			}
			if r.Waiting {
				ps.Restarts-- // stopped in the backoff: that restart never came
			}
		} else if isAlive && r.Waiting {
			ps.Phase = backend.Pending
			ps.Message = fmt.Sprintf("attempt %d of %d failed (%s); restarting", r.Count, p.MaxRestarts+1, backend.ExitMessage(r.Last.Code, r.Last.Signal))
		} else if isAlive {
			ps.Phase = backend.Running
			var ours bool
			if probe {
				ps.Ready, ours, ps.Message = probeProcess(ctx, st, p)
			}
			if p.Name == backend.AggregatorProcess {
				aggOurs = ours
			}
			if r.Count > 0 && ps.Message == "" {
				ps.Message = "restarted after " + backend.ExitMessage(r.Last.Code, r.Last.Signal)
			}
		} else {
			ps.Phase = backend.Failed
			ps.Message = "process gone without an exit status (killed with its supervisor?)"
		}
		out.Processes = append(out.Processes, ps)
	}
	var pr progress.Progress
	var err error
	if aggOurs {
		pr, err = progress.Scrape(ctx, healthURL(st.Processes[0].HealthPort))
	}
	if !aggOurs || err != nil {
		pr, _ = progress.FromLogs(st.LogDir)
	}
	out.Round, out.Rounds, out.Accuracy = pr.Round, pr.Rounds, pr.Accuracy
	return out
}

// Look reports the job's processes and progress.
func (b *Backend) Look(ctx context.Context, name string, probe bool) (backend.Status, error) {
	st, err := b.readState(name)
	if err != nil {
		return backend.Status{}, err
	}
	return b.status(ctx, st, probe), nil
}

// LookAll reports every job with a state folder.
func (b *Backend) LookAll(ctx context.Context) ([]backend.Status, error) {
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
