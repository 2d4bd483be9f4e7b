package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fedscale/fedscale-go/launcher/job"
)

// Provider is what a place that runs jobs implements: create, look at and
// watch the processes, open a process's output, delete. Everything else a
// Backend does (waiting, the job's phase, failure and degradation,
// describing, log prefixing, exit codes in messages, the typed errors) is
// Lifecycle's, the same for every provider.
//
// The statuses a provider returns carry each process's own phase, exit
// code, readiness and reason; Lifecycle sets the job's Phase and
// Conditions. Processes come aggregator first, then executor-1, -2, ...
type Provider interface {
	// Name is docker, k8s or local.
	Name() string
	// Plan writes what Create would make, touching nothing and needing no
	// engine or cluster.
	Plan(w io.Writer, s *job.Spec) error
	// Create makes and starts the job's processes. On error it removes
	// everything it made. A job of the same name that exists is ErrExists.
	Create(ctx context.Context, s *job.Spec) error
	// Delete removes every object of the job and waits until none is left.
	// An unknown job is ErrNotFound.
	Delete(ctx context.Context, name string) error
	// Look reports the job's processes as they are now; probe asks each
	// running process whether it is ready and the aggregator for its
	// progress, where the provider has to ask (slower). An unknown job is
	// ErrNotFound.
	Look(ctx context.Context, name string, probe bool) (Status, error)
	// LookAll reports every job the provider has, for a list (probing only
	// what a list shows: progress).
	LookAll(ctx context.Context) ([]Status, error)
	// Watch starts following the job: its Look and a change signal. An
	// unknown job is ErrNotFound.
	Watch(ctx context.Context, name string) (Watch, error)
	// OpenLog opens a process's output (one of the job's statuses'
	// processes). A process with no output yet is ErrNoOutput.
	OpenLog(ctx context.Context, name string, p ProcessStatus, o LogStream) (io.ReadCloser, error)
}

// A Watch follows one job.
type Watch interface {
	// Look is Provider.Look, from what the watch has seen where it keeps
	// a copy. A job that is gone is ErrNotFound.
	Look(ctx context.Context, probe bool) (Status, error)
	// Next blocks until the job may have changed (a burst of changes
	// counts once), or returns the error that ended the watch, or ctx's.
	Next(ctx context.Context) error
	// Close ends the watch.
	Close()
}

// LogStream says what OpenLog reads.
type LogStream struct {
	// Follow keeps the stream open until the process ends (or ctx does).
	Follow bool
	// Tail is how many of the last lines to read (0: all), Since (when
	// set) from when on: they spare transferring what is not shown, and a
	// provider may read more (the local one reads the file's last 64 KiB).
	Tail  int
	Since time.Time
	// FromStart: the whole output despite Tail (LogOptions.FromStart).
	FromStart bool
	// Timestamps starts each line with the time the provider recorded it,
	// RFC 3339 with nanoseconds, where it records one (Docker, Kubernetes).
	Timestamps bool
}

// ErrNoOutput is OpenLog's answer for a process that has not run yet.
var ErrNoOutput = errors.New("no output yet")

// WatchSource is what a provider's watch wakes on.
type WatchSource[T any] struct {
	Changed <-chan T     // a change (an event, or a tick where nothing streams them)
	Err     <-chan error // an error that ends the stream; nil when none can
	Stop    func()       // ends the stream
}

// NewWatch is the Watch of job name from a provider whose every Look asks
// afresh, woken by src.
func NewWatch[T any](p Provider, name string, src WatchSource[T]) Watch {
	return &sourceWatch[T]{p: p, name: name, src: src}
}

type sourceWatch[T any] struct {
	p    Provider
	name string
	src  WatchSource[T]
}

func (w *sourceWatch[T]) Look(ctx context.Context, probe bool) (Status, error) {
	return w.p.Look(ctx, w.name, probe)
}

func (w *sourceWatch[T]) Next(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-w.src.Changed:
		for { // a burst of changes counts once
			select {
			case <-w.src.Changed:
				continue
			default:
			}
			return nil
		}
	case err := <-w.src.Err:
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("job %q: watching for changes: %w", w.name, err)
	}
}

func (w *sourceWatch[T]) Close() { w.src.Stop() }
