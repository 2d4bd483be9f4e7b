package docker

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

var _ backend.MetricsReader = (*Backend)(nil)

// MetricsSource is the running aggregator's job document, through its
// published health port, and the job's log folder where the data path's
// host folder is on this machine (logs go there when log_path is
// $FEDSCALE_HOME/benchmark, the original's convention): both only when
// the aggregator's engine is on this machine, as for status's probes.
func (b *Backend) MetricsSource(ctx context.Context, name string) (src backend.MetricsSource, err error) {
	cs, engines, err := b.inspect(ctx, name)
	if err != nil {
		return src, err
	}
	if len(cs) == 0 {
		return src, backend.NotFound(name, wheres(engines))
	}
	for _, c := range cs {
		if c.proc != backend.AggregatorProcess || c.info.Config == nil {
			continue
		}
		if !c.e.local {
			src.Why = fmt.Sprintf("container %s's engine is not on this machine", c.name)
			continue
		}
		if conf := c.info.Config.Labels[LabelConfJobName]; conf != "" {
			for _, m := range c.info.Mounts {
				if m.Destination == job.ContainerDataPath && b2local(m.Source) {
					src.LogDir = filepath.Join(m.Source, "logs", conf)
				}
			}
		}
		if src.LogDir == "" {
			src.Why = fmt.Sprintf("container %s's log folder is not a host folder on this machine", c.name)
		}
		if c.info.State == nil || !c.info.State.Running {
			continue
		}
		if len(engines) > 1 {
			// Each engine publishes on its own 127.0.0.1 (statusOf).
			src.Why = fmt.Sprintf("the job spans %d Docker engines; its aggregator's health port is not reachable from here", len(engines))
			continue
		}
		code, body, err := b.get(ctx, c, jobapi.Path)
		switch {
		case err != nil:
			src.Why = fmt.Sprintf("container %s's job document: %v", c.name, err)
		case code != http.StatusOK:
			src.Why = fmt.Sprintf("container %s's job document: status %d", c.name, code)
		default:
			if src.Document, err = jobapi.Decode(body); err != nil {
				src.Why = fmt.Sprintf("container %s: %v", c.name, err)
			}
		}
	}
	return src, nil
}
