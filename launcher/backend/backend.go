// Package backend defines what the launcher asks of a place that runs jobs
// (one small interface, in the manner of kind's Provider) and the status
// types every backend reports. The implementations live in the docker, k8s
// and local subpackages; none of them keeps state outside the backend itself.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fedscale/fedscale-go/launcher/job"
)

// ErrNotFound is returned (wrapped) by Stop, Status, Logs and Wait for a job
// the backend does not know.
var ErrNotFound = errors.New("no such job")

// NotFound wraps ErrNotFound with the job name and where it was looked for.
func NotFound(name, where string) error {
	return fmt.Errorf("job %q: %w on %s", name, ErrNotFound, where)
}

// ErrExists is returned (wrapped) by Submit when a job of that name exists.
var ErrExists = errors.New("a job with this name already exists")

// Until says how long Wait waits.
type Until int

// Wait targets.
const (
	UntilRunning Until = iota // every process started (and ready, where the backend can tell)
	UntilDone                 // the job finished: the aggregator exited
)

// Phase of one process or of a whole job.
type Phase string

// Phases.
const (
	Pending   Phase = "Pending"
	Running   Phase = "Running"
	Succeeded Phase = "Succeeded"
	Failed    Phase = "Failed"
	Unknown   Phase = "Unknown"
)

// ProcessStatus is one process of a job.
type ProcessStatus struct {
	Name     string `json:"name"` // aggregator, executor-1, ...
	Phase    Phase  `json:"phase"`
	Ready    bool   `json:"ready"`
	Restarts int    `json:"restarts"`
	ExitCode *int   `json:"exitCode,omitempty"`
	Message  string `json:"message,omitempty"`
}

// Status is one job.
type Status struct {
	Job       string          `json:"job"`
	Backend   string          `json:"backend"`
	Phase     Phase           `json:"phase"`
	Processes []ProcessStatus `json:"processes"`
	// Progress, when the aggregator's metrics could be read.
	Round    *int      `json:"round,omitempty"`
	Accuracy *float64  `json:"accuracy,omitempty"` // last top-1 test accuracy
	Created  time.Time `json:"created,omitempty"`
}

// Summarize derives the job's phase from its processes: the job is done when
// the aggregator is (it ends the job and tells executors to exit), failed
// when any process failed, running when every process runs.
func Summarize(ps []ProcessStatus) Phase {
	if len(ps) == 0 {
		return Unknown
	}
	allRunning := true
	for _, p := range ps {
		if p.Phase == Failed {
			return Failed
		}
	}
	for _, p := range ps {
		if p.Name == "aggregator" && p.Phase == Succeeded {
			return Succeeded
		}
		if p.Phase != Running && p.Phase != Succeeded {
			allRunning = false
		}
	}
	if allRunning {
		return Running
	}
	return Pending
}

// LogOptions select what Logs prints.
type LogOptions struct {
	Process string // "" for all (each line prefixed with its process), else e.g. "executor-2"
	Follow  bool
	// Timestamps starts each line (after its prefix) with the time the
	// backend recorded it, RFC 3339 with nanoseconds, where the backend
	// records one (Docker, Kubernetes; the local backend ignores it).
	Timestamps bool
	// Tail > 0 asks for the last Tail lines of each process, Since (when
	// set) for the lines recorded from then on. They spare transferring
	// what is not shown; a backend may ignore them (the local one does),
	// so the caller selects again.
	Tail  int
	Since time.Time
}

// Backend runs jobs somewhere.
type Backend interface {
	// Name is docker, k8s or local.
	Name() string
	// Plan writes what Submit would create, touching nothing and needing no
	// engine or cluster (Kubernetes: manifests as YAML).
	Plan(w io.Writer, s *job.Spec) error
	// Submit creates the job. On error it removes everything it created.
	// A job of the same name that exists is ErrExists.
	Submit(ctx context.Context, s *job.Spec) error
	// Wait blocks until the job reaches until, fails, or ctx ends; it
	// returns the last status seen. A failed process is an error.
	Wait(ctx context.Context, name string, until Until) (Status, error)
	Status(ctx context.Context, name string) (Status, error)
	List(ctx context.Context) ([]Status, error)
	Logs(ctx context.Context, name string, o LogOptions, w io.Writer) error
	// Stop removes every object of the job and waits until none is left.
	// An unknown job is ErrNotFound (so a second stop says so clearly).
	Stop(ctx context.Context, name string) error
}
