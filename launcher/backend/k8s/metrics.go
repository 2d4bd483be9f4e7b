package k8s

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

var _ backend.MetricsReader = (*Backend)(nil)

// MetricsSource is the running aggregator's job document, read through
// the API server's service proxy (the job's Service, its health port) as
// status reads /metrics, so results work from any machine with the
// kubeconfig. The log folder is on the aggregator's node (data_path), not
// here: once the aggregator has ended, Why says where to look.
func (b *Backend) MetricsSource(ctx context.Context, name string) (backend.MetricsSource, error) {
	st, err := b.Look(ctx, name, false)
	if err != nil {
		return backend.MetricsSource{}, err
	}
	if len(st.Processes) == 0 || st.Processes[0].Phase != backend.Running {
		return backend.MetricsSource{Why: "the aggregator is not running, and its metrics.jsonl is in data_path on its node " +
			"(logs/{job_name}/{time_stamp}/); launcher logs shows its FL Testing lines"}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rc, err := b.cs.CoreV1().Services(b.ns).ProxyGet("http", AggregatorName(name), portHealth, jobapi.Path, nil).Stream(ctx)
	if err != nil {
		return backend.MetricsSource{Why: fmt.Sprintf("the aggregator's job document through the API server's service proxy "+
			"(rbac.yaml grants services/proxy): %v", err)}, nil
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, jobapi.MaxBytes+1))
	if err != nil {
		return backend.MetricsSource{Why: fmt.Sprintf("the aggregator's job document: %v", err)}, nil
	}
	d, err := jobapi.Decode(body)
	if err != nil {
		return backend.MetricsSource{Why: err.Error()}, nil
	}
	return backend.MetricsSource{Document: d}, nil
}
