package docker

import (
	"context"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// Watch follows the job through the engine's event stream of its
// containers. It subscribes before the first look, so nothing that happens
// after that look is missed.
func (b *Backend) Watch(ctx context.Context, name string) (_ backend.Watch, err error) {
	defer b.wrap(&err)
	wctx, cancel := context.WithCancel(ctx)
	f := make(client.Filters).Add("type", "container").Add("label", job.LabelJob+"="+name)
	ev := b.cli.Events(wctx, client.EventsListOptions{Filters: f})
	if _, err := b.Look(ctx, name, false); err != nil {
		cancel()
		return nil, err
	}
	return backend.NewWatch(b, name, backend.WatchSource[events.Message]{Changed: ev.Messages, Err: ev.Err, Stop: cancel}), nil
}
