package backend

import (
	"context"
	"io"

	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

// MetricsSource says where a job's per-round metrics can be read from
// here: the aggregator's job document while it runs (nil otherwise), the
// job's log folder ({log_path}/logs/{job_name}, holding each run's
// metrics.jsonl) when this machine can read it ("" otherwise), or else the
// aggregator's output.
type MetricsSource struct {
	Document *jobapi.Job
	LogDir   string
	// OpenLogs, where neither the document nor the folder can be read
	// (Kubernetes: the files are on the node), opens the ended
	// aggregator's output, oldest container first (the pod's log, through
	// the API server); nil when there is none. The caller closes them.
	OpenLogs func(ctx context.Context) ([]io.ReadCloser, error)
	// Why says why neither is available, for the error that reports it.
	Why string
}

// MetricsReader is a Backend that can find a job's per-round metrics
// (launcher results). An unknown job is ErrNotFound.
type MetricsReader interface {
	MetricsSource(ctx context.Context, name string) (MetricsSource, error)
}
