package k8s

import (
	"context"
	"io"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fedscale/fedscale-go/launcher/backend"
)

// OpenLog streams the output of a process's current pod (its newest).
func (b *Backend) OpenLog(ctx context.Context, name string, p backend.ProcessStatus, o backend.LogStream) (io.ReadCloser, error) {
	if p.LogRef == "" {
		return nil, backend.ErrNoOutput
	}
	container := componentExecutor
	if p.Name == backend.AggregatorProcess {
		container = componentAggregator
	}
	opts := &corev1.PodLogOptions{Container: container, Follow: o.Follow, Timestamps: o.Timestamps}
	if o.Tail > 0 {
		opts.TailLines = ptr.To(int64(o.Tail))
	}
	if !o.Since.IsZero() {
		opts.SinceTime = &metav1.Time{Time: o.Since}
	}
	rc, err := b.cs.CoreV1().Pods(b.ns).GetLogs(p.LogRef, opts).Stream(ctx)
	if err != nil {
		return nil, b.apiErr("logs of "+p.Name+" ("+p.Where+")", err)
	}
	return rc, nil
}
