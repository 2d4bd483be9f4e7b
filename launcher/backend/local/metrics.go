package local

import (
	"context"
	"net/http"
	"time"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

// documentClient fetches the job document: larger than a probe's answer.
var documentClient = &http.Client{Timeout: 10 * time.Second}

var _ backend.MetricsReader = (*Backend)(nil)

// MetricsSource is the running aggregator's job document, when its
// health port answers for this job, and the job's log folder.
func (b *Backend) MetricsSource(ctx context.Context, name string) (backend.MetricsSource, error) {
	st, err := b.readState(name)
	if err != nil {
		return backend.MetricsSource{}, err
	}
	src := backend.MetricsSource{LogDir: st.LogDir}
	if len(st.Processes) == 0 {
		return src, nil
	}
	agg := st.Processes[0]
	if _, err := readExit(agg.ExitFile); err == nil || !alive(agg) {
		return src, nil // ended: its files hold everything
	}
	if _, ours, _ := probeProcess(ctx, st, agg); ours {
		if d, err := jobapi.Fetch(ctx, documentClient, healthURL(agg.HealthPort), -1); err == nil {
			src.Document = d
		}
	}
	return src, nil
}
