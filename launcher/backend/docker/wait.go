package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// Readiness is probed with this backoff while every container runs but
// some process is not ready yet; container changes arrive as engine events.
const (
	probeFirst = 20 * time.Millisecond
	probeMax   = 200 * time.Millisecond
)

// tailLines is how much of a failed process's log an error carries.
const tailLines = 20

// Wait follows the job through the engine's events until it reaches until.
// UntilRunning: every container runs and every process answers /readyz
// (a job that already finished also satisfies it). UntilDone: the
// aggregator exited 0 (then the executors get Options.ExitGrace to exit).
// Any container that exits non-zero is a *ProcessError.
func (b *Backend) Wait(ctx context.Context, name string, until backend.Until) (st backend.Status, err error) {
	defer b.wrap(&err)
	if until != backend.UntilRunning && until != backend.UntilDone {
		return st, fmt.Errorf("wait: unknown target %d", until)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe first, then look: nothing that happens after the first
	// inspect is missed.
	f := make(client.Filters).Add("type", "container").Add("label", job.LabelJob+"="+name)
	ev := b.cli.Events(ctx, client.EventsListOptions{Filters: f})
	backoff := probeFirst
	var graceEnd time.Time
	seen := false
	for {
		cs, err := b.inspect(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return st, b.waitCtxErr(ctx, name, st)
			}
			return st, err
		}
		if len(cs) == 0 {
			if seen {
				return st, fmt.Errorf("job %q was removed while waiting: %w", name, backend.ErrNotFound)
			}
			return backend.Status{Job: name, Backend: b.Name(), Phase: backend.Unknown}, backend.NotFound(name, b.where())
		}
		seen = true
		st = b.statusOf(ctx, name, cs)
		if err := b.failure(ctx, name, cs, st); err != nil {
			return st, err
		}
		var wake <-chan time.Time
		switch until {
		case backend.UntilRunning:
			if st.Phase == backend.Succeeded {
				return st, nil
			}
			if st.Phase == backend.Running {
				if allReady(st) {
					return st, nil
				}
				wake = time.After(backoff)
				backoff = min(2*backoff, probeMax)
			}
		case backend.UntilDone:
			if aggregatorDone(st) {
				if !anyLive(st) {
					return st, nil
				}
				if graceEnd.IsZero() {
					graceEnd = time.Now().Add(b.opts.ExitGrace)
				}
				left := time.Until(graceEnd)
				if left <= 0 {
					return st, nil
				}
				wake = time.After(left)
			}
		}
		select {
		case <-ctx.Done():
			return st, b.waitCtxErr(ctx, name, st)
		case <-ev.Messages:
			drain(ev.Messages)
		case err := <-ev.Err:
			if ctx.Err() != nil {
				return st, b.waitCtxErr(ctx, name, st)
			}
			return st, fmt.Errorf("job %q: watching the engine's events: %w", name, err)
		case <-wake:
		}
	}
}

func (b *Backend) waitCtxErr(ctx context.Context, name string, st backend.Status) error {
	phase := st.Phase
	if phase == "" {
		phase = backend.Unknown
	}
	return fmt.Errorf("job %q: stopped waiting (last phase %s): %w", name, phase, context.Cause(ctx))
}

func drain[T any](c <-chan T) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func allReady(st backend.Status) bool {
	for _, p := range st.Processes {
		if p.Phase == backend.Running && !p.Ready {
			return false
		}
	}
	return true
}

func aggregatorDone(st backend.Status) bool {
	for _, p := range st.Processes {
		if p.Name == "aggregator" {
			return p.Phase == backend.Succeeded
		}
	}
	return false
}

func anyLive(st backend.Status) bool {
	for _, p := range st.Processes {
		if p.Phase == backend.Running || p.Phase == backend.Pending {
			return true
		}
	}
	return false
}

// ProcessError is a process of a job that failed.
type ProcessError struct {
	Job, Process, Container string
	ExitCode                int
	Message                 string // the engine's reason, if any (e.g. out of memory)
	Tail                    string // the last lines of its log
}

func (e *ProcessError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "job %q: %s (container %s) exited with code %d", e.Job, e.Process, e.Container, e.ExitCode)
	if e.Message != "" {
		fmt.Fprintf(&sb, " (%s)", e.Message)
	}
	if t := strings.TrimRight(e.Tail, "\n"); t != "" {
		sb.WriteString("; last log lines:\n")
		for _, l := range strings.Split(t, "\n") {
			sb.WriteString("    " + l + "\n")
		}
		return strings.TrimRight(sb.String(), "\n")
	}
	return sb.String()
}

// failure is a *ProcessError for the first failed process, or nil.
func (b *Backend) failure(ctx context.Context, name string, cs []ctr, st backend.Status) error {
	for i, p := range st.Processes {
		if p.Phase != backend.Failed {
			continue
		}
		e := &ProcessError{Job: name, Process: p.Name, Container: cs[i].name, Message: p.Message}
		if p.ExitCode != nil {
			e.ExitCode = *p.ExitCode
		}
		e.Tail = b.tail(ctx, cs[i].id, tailLines)
		return e
	}
	return nil
}

// tail is the last n lines of a container's output, stdout and stderr
// together ("" when they cannot be read).
func (b *Backend) tail(ctx context.Context, id string, n int) string {
	rc, err := b.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(n)})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil && !errors.Is(err, context.Canceled) && buf.Len() == 0 {
		return ""
	}
	return buf.String()
}
