// Package backend is the launcher's lifecycle of a job, written once: what
// the command asks of a place that runs jobs (Backend), the few primitives
// such a place implements (Provider, in the manner of kind's), and between
// them Lifecycle, which turns the primitives into waiting, the job's phase
// and conditions by the runtime's rules, descriptions, prefixed logs and
// the typed errors. The providers live in the docker, k8s and local
// subpackages; none of them keeps state outside the place itself.
package backend

import (
	"context"
	"io"
	"time"

	"github.com/fedscale/fedscale-go/launcher/job"
)

// AggregatorProcess is the aggregator's process name; executors are
// "executor-N".
const AggregatorProcess = "aggregator"

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
	// Message says why the process is not running and ready, or how it
	// ended: for a failed process its exit and the last error line of its
	// output.
	Message string `json:"message,omitempty"`
	// Where names the process's place for messages ("container
	// job-executor-1", "pod job-executor-1-x", "pid 1234").
	Where string `json:"-"`
	// LogRef is the provider's handle on the process's output (a container
	// id, a pod name), "" when there is none yet.
	LogRef string `json:"-"`
}

// ConditionType names a condition of a job.
type ConditionType string

// Degraded: an executor died while the runtime carried on without it
// (the aggregator re-issues a lost executor's tasks). A warning, not a
// failure: the job's outcome is the aggregator's.
const Degraded ConditionType = "Degraded"

// Condition is something true of a job beside its phase.
type Condition struct {
	Type    ConditionType `json:"type"`
	Message string        `json:"message"`
}

// Status is one job.
type Status struct {
	Job       string          `json:"job"`
	Backend   string          `json:"backend"`
	Phase     Phase           `json:"phase"`
	Processes []ProcessStatus `json:"processes"`
	// Conditions beside the phase (Degraded), set by Summarize.
	Conditions []Condition `json:"conditions,omitempty"`
	// Progress, when the aggregator's metrics could be read.
	Round    *int      `json:"round,omitempty"`
	Rounds   *int      `json:"rounds,omitempty"`   // job_conf.rounds, while the aggregator runs
	Accuracy *float64  `json:"accuracy,omitempty"` // last top-1 test accuracy
	Created  time.Time `json:"created,omitempty"`
}

// Condition returns the job's condition of type t, if it has one.
func (s Status) Condition(t ConditionType) (Condition, bool) {
	for _, c := range s.Conditions {
		if c.Type == t {
			return c, true
		}
	}
	return Condition{}, false
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
	// FromStart asks a backend without exact stamps (the local one) for
	// each process's whole output despite Tail: the caller follows on
	// from there and skips the lines it received by count, which only
	// works when it has counted them from the start.
	FromStart bool
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
	// returns the last status seen. A failed job is a *ProcessError naming
	// the process that failed it; an executor that died while the job
	// carries on is a Degraded condition and a warning, not an error.
	Wait(ctx context.Context, name string, until Until) (Status, error)
	Status(ctx context.Context, name string) (Status, error)
	List(ctx context.Context) ([]Status, error)
	Logs(ctx context.Context, name string, o LogOptions, w io.Writer) error
	// Stop removes every object of the job and waits until none is left.
	// An unknown job is ErrNotFound (so a second stop says so clearly).
	Stop(ctx context.Context, name string) error
}
