// Package jobapi is the aggregator's read-only job endpoint, /api/v1/job
// on its HTTP port: the JSON document (Job) the aggregator serves and the
// launcher and the dashboard read, its bounds, and a client that fetches
// it. It owns the schema; the aggregator fills it (runtime/aggregator,
// view.go).
//
// The document never carries file paths beyond what the logs show, nor
// anything of the wire's credentials: the configuration summary is a
// fixed list of job_conf keys (Config).
package jobapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/fedscale/fedscale-go/runtime/fedlog"
)

// Version is the schema's version, in the path and in Job.APIVersion. A
// change that removes or retypes a field gets a new version (and path);
// fields may be added within one.
const Version = 1

// Path is where the aggregator serves the document.
const Path = "/api/v1/job"

// SinceParam is the query parameter that asks for History's rounds after
// a round only (?since=N): a client that polls fetches what is new.
const SinceParam = "since"

// Bounds on the document, so that its size does not grow with the job:
// the rounds of History kept (the latest), the executors listed (the
// lowest ranks; ExecutorCounts counts them all), the events kept (the
// latest) and an event's message length. MaxBytes bounds the whole
// encoded document well above what these allow; clients read no more.
const (
	MaxHistory      = 1000
	MaxExecutors    = 256
	MaxEvents       = 64
	MaxEventMessage = 300
	MaxBytes        = 4 << 20
)

// States of a job (Job.State) and of an executor (Executor.State).
const (
	StateWaiting    = "waiting"    // for every executor to register
	StateTraining   = "training"   // round Round
	StateEvaluating = "evaluating" // the model after round Round
	StateFinished   = "finished"
	StateFailed     = "failed"  // Error says why
	StateStopped    = "stopped" // the aggregator was stopped (signal); a restart resumes

	ExecutorWaiting   = "waiting"   // never registered
	ExecutorConnected = "connected" // live session
	ExecutorLost      = "lost"      // was connected; Reason says why it left
	ExecutorEvicted   = "evicted"   // banned for failing tasks; Reason says why
	ExecutorDone      = "done"      // hung up once the job was over
)

// Job is the document at Path.
type Job struct {
	APIVersion int    `json:"api_version"`
	Job        string `json:"job"`
	TimeStamp  string `json:"time_stamp"`
	Config     Config `json:"config"`
	State      string `json:"state"`
	Error      string `json:"error,omitempty"`
	// Round is the round being trained, or the round whose model is
	// being (or was last) evaluated; Rounds is job_conf.rounds.
	Round  int `json:"round"`
	Rounds int `json:"rounds"`
	// RoundPlanned and RoundParticipants are the current round's clients:
	// selected (with the overcommitment), and training.
	RoundPlanned      int `json:"round_planned"`
	RoundParticipants int `json:"round_participants"`
	// ResumedAt is the round the job resumed after (0: it did not).
	ResumedAt    int     `json:"resumed_at"`
	VirtualClock float64 `json:"virtual_clock"`
	// WallClock is the job's seconds of wall time, earlier runs of a
	// resumed job included: metrics.jsonl's wall_clock.
	WallClock float64 `json:"wall_clock"`
	// ETASeconds estimates the wall time to the last round from this
	// run's rounds so far; absent until two rounds are recorded.
	ETASeconds      *float64 `json:"eta_seconds,omitempty"`
	TasksReissued   int      `json:"tasks_reissued"`
	ResultsRejected int      `json:"results_rejected"`
	// History is metrics.jsonl's records, in round order: a run resumed
	// from a checkpoint (ResumedAt) starts it with the earlier runs'
	// rounds up to the checkpoint, read from their files; then this
	// run's. The latest MaxHistory, after ?since= when given.
	// HistoryDropped counts the earlier records no longer kept.
	History        []fedlog.Record `json:"history"`
	HistoryDropped int             `json:"history_dropped"`
	Executors      []Executor      `json:"executors"`
	ExecutorCounts ExecutorCounts  `json:"executor_counts"`
	// Events are the latest notable events, oldest first.
	Events []Event `json:"events"`
	// Updated is when the aggregator last refreshed the document (it
	// does so after events, at most a few times a second, and at every
	// heartbeat interval).
	Updated time.Time `json:"updated"`
}

// Config is the job's configuration as the dashboard shows it: job_conf
// keys by their names, none of them a path or a credential.
type Config struct {
	Model           string  `json:"model"`
	DataSet         string  `json:"data_set"`
	ExperimentMode  string  `json:"experiment_mode"`
	Rounds          int     `json:"rounds"`
	NumParticipants int     `json:"num_participants"`
	Overcommitment  float64 `json:"overcommitment"`
	NumExecutors    int     `json:"num_executors"`
	GradientPolicy  string  `json:"gradient_policy"`
	SampleMode      string  `json:"sample_mode"`
	EvalInterval    int     `json:"eval_interval"`
	LocalSteps      int     `json:"local_steps"`
	BatchSize       int     `json:"batch_size"`
	LearningRate    float64 `json:"learning_rate"`
}

// Executor is one rank's state.
type Executor struct {
	Rank  int32  `json:"rank"`
	State string `json:"state"`
	// Reason says why a lost or evicted executor left.
	Reason string `json:"reason,omitempty"`
	// LastContact is when the aggregator last heard from it; absent for
	// one that never registered.
	LastContact *time.Time `json:"last_contact,omitempty"`
	Slots       int        `json:"slots"`
	// TasksDone counts its accepted results; TasksReissued the tasks it
	// held that went to another executor when it was lost or failed them.
	TasksDone     int `json:"tasks_done"`
	TasksReissued int `json:"tasks_reissued"`
}

// ExecutorCounts counts every rank by state.
type ExecutorCounts struct {
	Total     int `json:"total"`
	Waiting   int `json:"waiting"`
	Connected int `json:"connected"`
	Lost      int `json:"lost"`
	Evicted   int `json:"evicted"`
	Done      int `json:"done"`
}

// Event is one notable thing that happened: an executor registered, was
// lost or evicted, tasks were re-issued, a checkpoint written, a round
// evaluated, the job ended.
type Event struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"` // info, warning, error
	Message string    `json:"message"`
}

// Fetch reads the document from an aggregator's HTTP endpoint base
// ("http://host:port"), history after round since (-1: all of it). It
// reads at most MaxBytes and checks the version.
func Fetch(ctx context.Context, c *http.Client, base string, since int) (*Job, error) {
	url := base + Path
	if since >= 0 {
		url += "?" + SinceParam + "=" + strconv.Itoa(since)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, clip(string(b)))
	}
	return Decode(b)
}

// Decode parses a document, refusing one over MaxBytes or of another
// version.
func Decode(b []byte) (*Job, error) {
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("job document over %d bytes", MaxBytes)
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("job document: %w", err)
	}
	if j.APIVersion != Version {
		return nil, fmt.Errorf("job document of api_version %d, want %d", j.APIVersion, Version)
	}
	return &j, nil
}

// ErrBadSince is the error for a ?since= that is not a round number.
var ErrBadSince = errors.New(SinceParam + " must be a round number (an integer >= -1)")

// ParseSince reads ?since=; "" means -1 (the whole history).
func ParseSince(s string) (int, error) {
	if s == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < -1 {
		return 0, ErrBadSince
	}
	return n, nil
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
