package k8s

import (
	"context"

	"github.com/fedscale/fedscale-go/launcher/backend"
)

// Watch follows the job's Jobs and pods by watch (one List and one Watch
// each, see follower): never a polling loop.
func (b *Backend) Watch(ctx context.Context, name string) (backend.Watch, error) {
	if err := b.validName(name); err != nil {
		return nil, err
	}
	f, err := b.follow(ctx, selector(name), followJobs|followPods)
	if err != nil {
		return nil, err
	}
	if len(f.jobs()) == 0 {
		f.stop()
		return nil, backend.NotFound(name, b.where())
	}
	return &jobWatch{f: f, name: name}, nil
}

type jobWatch struct {
	f    *follower
	name string
}

// Look reads the follower's copies: no request.
func (w *jobWatch) Look(context.Context, bool) (backend.Status, error) {
	jobs := w.f.jobs()
	if len(jobs) == 0 {
		return backend.Status{}, backend.NotFound(w.name, w.f.b.where())
	}
	return computeStatus(w.name, jobs, w.f.pods()), nil
}

func (w *jobWatch) Next(ctx context.Context) error { return w.f.next(ctx) }

func (w *jobWatch) Close() { w.f.stop() }
