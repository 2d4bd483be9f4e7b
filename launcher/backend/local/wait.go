package local

import (
	"context"
	"time"

	"github.com/fedscale/fedscale-go/launcher/backend"
)

// Watch follows a job by looking again every Options.Poll: local processes
// have no event stream.
func (b *Backend) Watch(ctx context.Context, name string) (backend.Watch, error) {
	if _, err := b.readState(name); err != nil {
		return nil, err
	}
	t := time.NewTicker(b.opts.Poll)
	return backend.NewWatch(b, name, backend.WatchSource[time.Time]{Changed: t.C, Stop: t.Stop}), nil
}
