package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fedscale/fedscale-go/launcher/progress"
	"github.com/fedscale/fedscale-go/runtime/jobapi"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// ctr is one container of a job, inspected.
type ctr struct {
	id, name string // name without the leading '/'
	proc     string // aggregator, executor-1, ...
	rank     int
	e        *engine
	info     container.InspectResponse
}

func summaryName(c container.Summary) string {
	if len(c.Names) > 0 {
		return strings.TrimPrefix(c.Names[0], "/")
	}
	return c.ID[:min(12, len(c.ID))]
}

// procName is a container's process name from its labels.
func procName(labels map[string]string) (string, int) {
	rank, _ := strconv.Atoi(labels[job.LabelRank])
	if labels[job.LabelComponent] == "aggregator" {
		return "aggregator", rank
	}
	return "executor-" + strconv.Itoa(rank), rank
}

// inspect finds and inspects the job's containers on every engine of the
// job, aggregator first then by rank. Containers that vanish meanwhile are
// left out. It also returns the engines consulted.
func (b *Backend) inspect(ctx context.Context, name string) ([]ctr, []*engine, error) {
	items, engines, err := b.find(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	out := make([]ctr, len(items))
	err = parallel(len(items), func(i int) error {
		it := items[i]
		res, err := it.e.cli.ContainerInspect(ctx, it.c.ID, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return it.e.err(fmt.Errorf("inspecting container %s on %s: %w", summaryName(it.c), it.e.where(), err), "")
		}
		c := ctr{id: it.c.ID, name: strings.TrimPrefix(res.Container.Name, "/"), e: it.e, info: res.Container}
		c.proc, c.rank = procName(it.c.Labels)
		out[i] = c
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	out = slices.DeleteFunc(out, func(c ctr) bool { return c.id == "" })
	sort.SliceStable(out, func(i, j int) bool { return out[i].rank < out[j].rank })
	return out, engines, nil
}

// Look reports the job's processes; probe asks each running process's
// /readyz and the aggregator's /metrics through the published health ports
// where they can be reached from here (a one-engine job on this machine).
func (b *Backend) Look(ctx context.Context, name string, probe bool) (st backend.Status, err error) {
	cs, engines, err := b.inspect(ctx, name)
	if err != nil {
		return backend.Status{Job: name, Backend: b.Name(), Phase: backend.Unknown}, err
	}
	if len(cs) == 0 {
		return backend.Status{Job: name, Backend: b.Name(), Phase: backend.Unknown}, backend.NotFound(name, wheres(engines)+notHereHint)
	}
	return b.statusOf(ctx, name, cs, probe), nil
}

// LookAll reports every job on the seed engines (and the engines their
// jobs span), by name, with its progress.
func (b *Backend) LookAll(ctx context.Context) (out []backend.Status, err error) {
	seeds, err := b.seeds("")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range seeds {
		f := make(client.Filters).Add("label", job.LabelJob)
		res, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			return nil, e.err(err, "")
		}
		for _, c := range res.Items {
			if n := c.Labels[job.LabelJob]; !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		st, err := b.Look(ctx, n, true)
		if errors.Is(err, backend.ErrNotFound) {
			continue // stopped meanwhile
		}
		if err != nil {
			return out, err
		}
		out = append(out, st)
	}
	return out, nil
}

// statusOf builds a Status from inspected containers.
func (b *Backend) statusOf(ctx context.Context, name string, cs []ctr, probe bool) backend.Status {
	st := backend.Status{Job: name, Backend: b.Name(), Processes: make([]backend.ProcessStatus, len(cs))}
	// Health ports are published on each engine's 127.0.0.1: this
	// machine's only for a one-engine job whose engine is here. (Two
	// engines here are in network namespaces of their own, as in the
	// tests: their 127.0.0.1 is not this one either.)
	var engines []*engine
	for _, c := range cs {
		if !slices.Contains(engines, c.e) {
			engines = append(engines, c.e)
		}
	}
	probeable, why := len(engines) == 1 && engines[0].local, "the engine is not on this machine"
	if len(engines) > 1 {
		why = fmt.Sprintf("the job spans %d Docker engines (container states only)", len(engines))
	}
	var wg sync.WaitGroup
	for i, c := range cs {
		ps := processStatus(c)
		st.Processes[i] = ps
		if t, err := time.Parse(time.RFC3339Nano, c.info.Created); err == nil && (st.Created.IsZero() || t.Before(st.Created)) {
			st.Created = t
		}
		if ps.Phase != backend.Running || !probe {
			continue
		}
		if !probeable {
			st.Processes[i].Ready = true
			st.Processes[i].Message = "readiness not probed: " + why
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready, msg := b.ready(ctx, c)
			st.Processes[i].Ready = ready
			if !ready && st.Processes[i].Message == "" {
				st.Processes[i].Message = msg
			}
		}()
		if c.proc == backend.AggregatorProcess {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := b.progress(ctx, c)
				st.Round, st.Rounds, st.Accuracy = p.Round, p.Rounds, p.Accuracy
			}()
		}
	}
	wg.Wait()
	if st.Round == nil {
		st.Round, st.Accuracy = finishedProgress(cs)
	}
	return st
}

// finishedProgress reads the aggregator's metrics.jsonl through the host
// folder mounted at the data path, where logs go when log_path is
// $FEDSCALE_HOME/benchmark (the original's convention), once /metrics is
// gone, when the aggregator's engine is on this machine (its folders are
// this machine's).
func finishedProgress(cs []ctr) (*int, *float64) {
	for _, c := range cs {
		if c.proc != "aggregator" || c.info.Config == nil || !c.e.local {
			continue
		}
		name := c.info.Config.Labels[LabelConfJobName]
		for _, m := range c.info.Mounts {
			if m.Destination == job.ContainerDataPath && name != "" && b2local(m.Source) {
				if p, err := progress.FromLogs(filepath.Join(m.Source, "logs", name)); err == nil {
					return p.Round, p.Accuracy
				}
			}
		}
	}
	return nil, nil
}

// b2local: a bind mount's source is a path on the engine's machine, readable
// here only when that folder exists here too.
func b2local(src string) bool {
	fi, err := os.Stat(src)
	return err == nil && fi.IsDir()
}

func processStatus(c ctr) backend.ProcessStatus {
	where := "container " + c.name
	if c.info.Config != nil && c.info.Config.Labels[LabelEngines] != "" {
		where += " on " + c.e.addr
		if h := c.info.Config.Labels[LabelHost]; h != "" {
			where += " (host " + h + ")"
		}
	}
	ps := backend.ProcessStatus{Name: c.proc, Restarts: c.info.RestartCount, Phase: backend.Unknown, Where: where, LogRef: c.id + "@" + c.e.spec}
	s := c.info.State
	if s == nil {
		return ps
	}
	switch s.Status {
	case container.StateCreated:
		ps.Phase = backend.Pending
	case container.StateRunning:
		ps.Phase = backend.Running
	case container.StatePaused:
		ps.Phase, ps.Message = backend.Running, "paused"
	case container.StateRestarting:
		ps.Phase, ps.Message = backend.Pending, "restarting"
	case container.StateRemoving:
		ps.Phase, ps.Message = backend.Unknown, "being removed"
	case container.StateExited, container.StateDead:
		code := s.ExitCode
		ps.ExitCode = &code
		ps.Phase = backend.Failed
		if s.Status == container.StateExited && code == 0 {
			ps.Phase = backend.Succeeded
			break
		}
		reason := ""
		switch {
		case s.OOMKilled:
			reason = "killed: out of memory"
		case s.Error != "":
			reason = s.Error
		case s.Status == container.StateDead:
			reason = "dead"
		}
		ps.Message = backend.ExitMessage(code, reason)
	}
	return ps
}

// healthAddr is the host address of c's published health port.
func healthAddr(c ctr) (string, bool) {
	if c.info.Config == nil || c.info.NetworkSettings == nil {
		return "", false
	}
	n, err := strconv.Atoi(c.info.Config.Labels[LabelHealthPort])
	if err != nil {
		return "", false
	}
	port, err := tcpPort(n) // a label outside 1..65535 would wrap in uint16
	if err != nil {
		return "", false
	}
	for _, bd := range c.info.NetworkSettings.Ports[port] {
		if bd.HostPort == "" || bd.HostPort == "0" {
			continue
		}
		if bd.HostIP.IsLoopback() || bd.HostIP.IsUnspecified() || !bd.HostIP.IsValid() {
			return net.JoinHostPort("127.0.0.1", bd.HostPort), true
		}
	}
	return "", false
}

func (b *Backend) get(ctx context.Context, c ctr, path string) (int, []byte, error) {
	addr, ok := healthAddr(c)
	if !ok {
		return 0, nil, fmt.Errorf("no published health port")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	// The largest answer read here is the job document: one byte over its
	// bound lets jobapi.Decode say the document is too large rather than
	// fail on JSON cut short.
	body, err := io.ReadAll(io.LimitReader(resp.Body, jobapi.MaxBytes+1))
	return resp.StatusCode, body, err
}

// ready probes c's /readyz.
func (b *Backend) ready(ctx context.Context, c ctr) (bool, string) {
	code, body, err := b.get(ctx, c, "/readyz")
	if err != nil {
		return false, "not ready: " + err.Error()
	}
	if code != http.StatusOK {
		return false, "not ready: " + strings.TrimSpace(string(body))
	}
	return true, ""
}

// progress reads the aggregator's round and last accuracy from /metrics;
// nil when they cannot be read.
func (b *Backend) progress(ctx context.Context, c ctr) progress.Progress {
	code, body, err := b.get(ctx, c, "/metrics")
	if err != nil || code != http.StatusOK {
		return progress.Progress{}
	}
	p, err := progress.Parse(bytes.NewReader(body))
	if err != nil {
		return progress.Progress{}
	}
	return p
}
