package docker

import (
	"context"
	"errors"
	"sync"

	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// Watch follows the job through the event streams of its containers on
// every engine of the job. It subscribes before the first look, so nothing
// that happens after that look is missed.
func (b *Backend) Watch(ctx context.Context, name string) (_ backend.Watch, err error) {
	_, engines, err := b.find(ctx, name)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	changed := make(chan struct{}, 1)
	errc := make(chan error, len(engines))
	var wg sync.WaitGroup
	f := make(client.Filters).Add("type", "container").Add("label", job.LabelJob+"="+name)
	for _, e := range engines {
		ev := e.cli.Events(wctx, client.EventsListOptions{Filters: f})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-wctx.Done():
					return
				case <-ev.Messages:
					select {
					case changed <- struct{}{}:
					default: // a change is pending already
					}
				case err := <-ev.Err:
					if err == nil {
						err = errors.New("event stream ended")
					}
					errc <- e.err(err, "")
					return
				}
			}
		}()
	}
	stop := func() { cancel(); wg.Wait() }
	if _, err := b.Look(ctx, name, false); err != nil {
		stop()
		return nil, err
	}
	return backend.NewWatch(b, name, backend.WatchSource[struct{}]{Changed: changed, Err: errc, Stop: stop}), nil
}
