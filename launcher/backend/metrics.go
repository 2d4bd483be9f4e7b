package backend

import (
	"context"

	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

// MetricsSource says where a job's per-round metrics can be read from
// here: the aggregator's job document while it runs (nil otherwise), and
// the job's log folder ({log_path}/logs/{job_name}, holding each run's
// metrics.jsonl) when this machine can read it ("" otherwise).
type MetricsSource struct {
	Document *jobapi.Job
	LogDir   string
	// Why says why neither is available, for the error that reports it.
	Why string
}

// MetricsReader is a Backend that can find a job's per-round metrics
// (launcher results). An unknown job is ErrNotFound.
type MetricsReader interface {
	MetricsSource(ctx context.Context, name string) (MetricsSource, error)
}
