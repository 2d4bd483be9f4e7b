package backend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/fedscale/fedscale-go/launcher/job"
)

// LifecycleOptions configure a Lifecycle.
type LifecycleOptions struct {
	// ExitGrace is how long Wait(UntilDone) waits, once the aggregator has
	// succeeded, for the executors to exit on their own before returning
	// (default 30s). The job has succeeded either way.
	ExitGrace time.Duration
	// Log receives the warnings Wait gives (an executor that died while the
	// job goes on); nil discards them.
	Log *slog.Logger
}

// Lifecycle is a Backend made of a Provider's primitives. Providers embed
// it (so their types are Backends) or callers wrap one with NewLifecycle.
type Lifecycle struct {
	p    Provider
	opts LifecycleOptions
}

// NewLifecycle returns the Backend of p.
func NewLifecycle(p Provider, opts LifecycleOptions) *Lifecycle {
	if opts.ExitGrace <= 0 {
		opts.ExitGrace = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Lifecycle{p: p, opts: opts}
}

var _ Backend = (*Lifecycle)(nil)

// Name is the provider's.
func (l *Lifecycle) Name() string { return l.p.Name() }

// Plan is the provider's.
func (l *Lifecycle) Plan(w io.Writer, s *job.Spec) error { return l.p.Plan(w, s) }

// Submit creates the job.
func (l *Lifecycle) Submit(ctx context.Context, s *job.Spec) error { return l.p.Create(ctx, s) }

// Stop deletes the job.
func (l *Lifecycle) Stop(ctx context.Context, name string) error { return l.p.Delete(ctx, name) }

// Status reports the job: its processes (a failed one with the last error
// line of its output), phase and conditions, and progress.
func (l *Lifecycle) Status(ctx context.Context, name string) (Status, error) {
	st, err := l.p.Look(ctx, name, true)
	if err != nil {
		return st, err
	}
	st = Summarize(st)
	e := explainer{l: l, name: name}
	e.explainDead(ctx, &st)
	return st, nil
}

// List reports every job, without probing processes or reading output.
func (l *Lifecycle) List(ctx context.Context) ([]Status, error) {
	all, err := l.p.LookAll(ctx)
	for i := range all {
		all[i] = Summarize(all[i])
	}
	return all, err
}

// Readiness is probed again with this backoff while every process runs but
// some is not ready yet: a provider's change signal need not cover a
// process's own /readyz.
const (
	probeFirst = 20 * time.Millisecond
	probeMax   = 200 * time.Millisecond
)

// tailLines is how much of a process's output a failure carries.
const tailLines = 20

// Wait follows the job until it reaches until. UntilRunning: every process
// that counts runs and is ready (a finished job satisfies it too).
// UntilDone: the aggregator succeeded (then the executors get ExitGrace to
// exit). A failed job is a *ProcessError; each executor that dies while the
// job goes on is one warning on the log.
func (l *Lifecycle) Wait(ctx context.Context, name string, until Until) (Status, error) {
	if until != UntilRunning && until != UntilDone {
		return Status{}, fmt.Errorf("wait: unknown target %d", until)
	}
	w, err := l.p.Watch(ctx, name)
	if err != nil {
		return Status{Job: name, Backend: l.p.Name(), Phase: Unknown}, err
	}
	defer w.Close()
	e := explainer{l: l, name: name}
	warned := map[string]bool{}
	backoff := probeFirst
	var graceEnd time.Time
	var st Status
	for {
		probe := until == UntilRunning
		cur, err := w.Look(ctx, probe)
		if errors.Is(err, ErrNotFound) {
			return st, fmt.Errorf("job %q was removed while waiting: %w", name, ErrNotFound)
		}
		if err != nil {
			if ctx.Err() != nil {
				return st, l.stopped(ctx, name, until, st)
			}
			return st, err
		}
		st = Summarize(cur)
		l.warnDead(ctx, &e, &st, warned)
		if st.Phase == Failed {
			return st, e.failure(ctx, &st)
		}
		var wake time.Duration
		switch until {
		case UntilRunning:
			if st.Phase == Succeeded || st.Phase == Running && allReady(st) {
				return st, nil
			}
			if st.Phase == Running {
				wake, backoff = backoff, min(2*backoff, probeMax)
			}
		case UntilDone:
			if st.Phase == Succeeded {
				if graceEnd.IsZero() {
					graceEnd = time.Now().Add(l.opts.ExitGrace)
				}
				if wake = time.Until(graceEnd); !anyLive(st) || wake <= 0 {
					return l.final(ctx, w, &e, st), nil
				}
			}
		}
		if err := next(ctx, w, wake); err != nil {
			if ctx.Err() != nil {
				return st, l.stopped(ctx, name, until, st)
			}
			return st, err
		}
	}
}

// next waits for a change, or for wake (0: no limit).
func next(ctx context.Context, w Watch, wake time.Duration) error {
	if wake <= 0 {
		return w.Next(ctx)
	}
	wctx, cancel := context.WithTimeout(ctx, wake)
	defer cancel()
	err := w.Next(wctx)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		return nil // woken by the timer
	}
	return err
}

// final is the last status of a finished job, probed (progress included).
func (l *Lifecycle) final(ctx context.Context, w Watch, e *explainer, st Status) Status {
	if cur, err := w.Look(ctx, true); err == nil {
		st = Summarize(cur)
	}
	e.explainDead(ctx, &st)
	return st
}

// stopped is Wait's error when ctx ends first.
func (l *Lifecycle) stopped(ctx context.Context, name string, until Until, st Status) error {
	target := "running"
	if until == UntilDone {
		target = "done"
	}
	return fmt.Errorf("job %q: stopped waiting until %s: %w (%s)", name, target, context.Cause(ctx), Describe(st))
}

// warnDead warns once about each executor that died while the job goes on.
func (l *Lifecycle) warnDead(ctx context.Context, e *explainer, st *Status, warned map[string]bool) {
	if st.Phase == Failed {
		return
	}
	for i := range st.Processes {
		p := &st.Processes[i]
		if p.Name == AggregatorProcess || !hasDied(*p) {
			continue
		}
		key := fmt.Sprintf("%s/%d/%s", p.Name, p.Restarts, p.Phase)
		e.explain(ctx, p)
		if !warned[key] {
			warned[key] = true
			l.opts.Log.Warn(fmt.Sprintf("job %s: %s died (%s); the aggregator carries on without it", st.Job, p.Name, deathOf(*p)))
		}
	}
	*st = Summarize(*st) // the condition names the explained messages
}

// explainer adds to dead processes' messages the last error line of their
// output, reading each output once.
type explainer struct {
	l     *Lifecycle
	name  string
	tails map[string]string // process/restarts -> its output's last lines
}

func (e *explainer) tail(ctx context.Context, p ProcessStatus) string {
	key := fmt.Sprintf("%s/%d", p.Name, p.Restarts)
	if t, ok := e.tails[key]; ok {
		return t
	}
	if e.tails == nil {
		e.tails = map[string]string{}
	}
	t := ""
	if rc, err := e.l.p.OpenLog(ctx, e.name, p, LogStream{Tail: tailLines}); err == nil {
		t = lastLines(rc, tailLines)
		rc.Close()
	}
	e.tails[key] = t
	return t
}

// explain adds p's last error line to its message.
func (e *explainer) explain(ctx context.Context, p *ProcessStatus) {
	line := ErrorLine(e.tail(ctx, *p))
	if line != "" && !strings.Contains(p.Message, line) {
		p.Message = strings.TrimPrefix(p.Message+": "+line, ": ")
	}
}

// explainDead explains every process that died, and the conditions.
func (e *explainer) explainDead(ctx context.Context, st *Status) {
	for i := range st.Processes {
		if hasDied(st.Processes[i]) {
			e.explain(ctx, &st.Processes[i])
		}
	}
	*st = Summarize(*st)
}

// failure is the *ProcessError of a failed job.
func (e *explainer) failure(ctx context.Context, st *Status) error {
	e.explainDead(ctx, st)
	p, _ := failing(*st)
	msg := p.Message
	if p.Name != AggregatorProcess {
		msg = strings.TrimPrefix(msg+"; every executor has failed, none is left to train", "; ")
	}
	return &ProcessError{Job: st.Job, Process: p.Name, Where: p.Where, ExitCode: p.ExitCode, Message: msg, Tail: e.tail(ctx, p)}
}

// maxTailBytes bounds what is read of a process's output for its tail.
const maxTailBytes = 1 << 20

// lastLines reads r (at most maxTailBytes of it) and keeps its last n
// lines.
func lastLines(r io.Reader, n int) string {
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(r, maxTailBytes))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}
