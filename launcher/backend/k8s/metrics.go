package k8s

import (
	"context"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

var _ backend.MetricsReader = (*Backend)(nil)

// MetricsSource is the running aggregator's job document, read through
// the API server's service proxy (the job's Service, its health port) as
// status reads /metrics, so results work from any machine with the
// kubeconfig. The log folder is on the aggregator's node (data_path), not
// here: once the aggregator has ended, its pod's output is read through
// the API server instead (the previous container's first, where it
// restarted in place), until stop deletes the pod.
func (b *Backend) MetricsSource(ctx context.Context, name string) (backend.MetricsSource, error) {
	st, err := b.Look(ctx, name, false)
	if err != nil {
		return backend.MetricsSource{}, err
	}
	if len(st.Processes) == 0 || st.Processes[0].Phase != backend.Running {
		return b.aggregatorLogs(ctx, st)
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

// aggregatorLogs is where the ended aggregator's output can be read: its
// pod's log, once OpenLogs is called.
func (b *Backend) aggregatorLogs(ctx context.Context, st backend.Status) (backend.MetricsSource, error) {
	why := "the aggregator is not running and its metrics.jsonl is in data_path on its node (logs/{job_name}/{time_stamp}/)"
	if len(st.Processes) == 0 || st.Processes[0].LogRef == "" {
		return backend.MetricsSource{Why: why + "; its pod has no output"}, nil
	}
	pod := st.Processes[0].LogRef
	return backend.MetricsSource{Why: why, OpenLogs: func(ctx context.Context) ([]io.ReadCloser, error) {
		return b.openAggregatorLogs(ctx, pod)
	}}, nil
}

// openAggregatorLogs opens the output of the aggregator's pod: the
// previous container's first where it restarted in place (only the last
// one before the current is kept), then the current one's.
func (b *Backend) openAggregatorLogs(ctx context.Context, pod string) ([]io.ReadCloser, error) {
	// A list (rbac.yaml's right; a get would need one more) of this pod,
	// for its restarts.
	pl, err := b.cs.CoreV1().Pods(b.ns).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + pod})
	if err != nil {
		return nil, b.apiErr("listing pod "+pod, err)
	}
	if len(pl.Items) != 1 {
		return nil, fmt.Errorf("the aggregator's pod %s is gone", pod)
	}
	var logs []io.ReadCloser
	open := func(previous bool) error {
		rc, err := b.cs.CoreV1().Pods(b.ns).GetLogs(pod, &corev1.PodLogOptions{Container: componentAggregator, Previous: previous}).Stream(ctx)
		if err != nil {
			return b.apiErr("logs of the aggregator (pod "+pod+")", err)
		}
		logs = append(logs, rc)
		return nil
	}
	if cs := containerStatus(&pl.Items[0]); cs != nil && cs.RestartCount > 0 {
		// Without it the current container's rounds are still worth showing.
		_ = open(true)
	}
	if err := open(false); err != nil {
		for _, rc := range logs {
			rc.Close()
		}
		return nil, err
	}
	return logs, nil
}
