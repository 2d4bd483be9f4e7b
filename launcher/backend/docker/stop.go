package docker

import (
	"context"
	"fmt"
	"slices"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// Delete force-removes every container of the job, on every engine of the
// job, then each network the job used that the launcher created (it
// carries job.LabelManagedBy) and that no container uses any more. A job
// with neither containers nor a network of its own is backend.ErrNotFound.
func (b *Backend) Delete(ctx context.Context, name string) (err error) {
	items, engines, err := b.find(ctx, name)
	if err != nil {
		return err
	}
	// Networks of the job: the launcher makes them only for one-engine
	// jobs, on that engine; look on every engine consulted.
	type netOn struct {
		e  *engine
		id string
	}
	var candidates []netOn
	add := func(n netOn) {
		if !slices.Contains(candidates, n) {
			candidates = append(candidates, n)
		}
	}
	for _, e := range engines {
		nets, err := e.cli.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", job.LabelJob+"="+name)})
		if err != nil {
			return e.err(err, "")
		}
		for _, n := range nets.Items {
			add(netOn{e, n.ID})
		}
	}
	if len(items) == 0 && len(candidates) == 0 {
		return backend.NotFound(name, wheres(engines)+notHereHint)
	}
	for _, it := range items {
		if it.c.NetworkSettings == nil {
			continue
		}
		for _, ep := range it.c.NetworkSettings.Networks {
			if ep != nil && ep.NetworkID != "" {
				add(netOn{it.e, ep.NetworkID})
			}
		}
	}
	err = backend.InParallel(items, func(it onEngine) error {
		_, err := it.e.cli.ContainerRemove(ctx, it.c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
			// A conflict is a removal already in progress: checked below.
			return it.e.err(fmt.Errorf("removing container %s on %s: %w", summaryName(it.c), it.e.where(), err), "")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("job %q: %w", name, err)
	}
	for _, e := range engines {
		if left, err := e.list(ctx, name); err != nil {
			return e.err(err, "")
		} else if len(left) > 0 {
			return fmt.Errorf("job %q: %d containers are still on %s after removal (e.g. %s, %s)", name, len(left), e.where(), summaryName(left[0]), left[0].State)
		}
	}
	for _, n := range candidates {
		if err := removeNetwork(ctx, n.e, n.id); err != nil {
			return fmt.Errorf("job %q: %w", name, err)
		}
	}
	return nil
}

// removeNetwork removes a network the launcher created once no container
// uses it; any other network is left alone.
func removeNetwork(ctx context.Context, e *engine, id string) error {
	res, err := e.cli.NetworkInspect(ctx, id, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return e.err(fmt.Errorf("network %s on %s: %w", id, e.where(), err), "")
	}
	n := res.Network
	if n.Labels[job.LabelManagedBy] != job.ManagedBy || len(n.Containers) > 0 {
		return nil
	}
	_, err = e.cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
	switch {
	case err == nil, cerrdefs.IsNotFound(err):
		return nil
	case cerrdefs.IsConflict(err), cerrdefs.IsFailedPrecondition(err), cerrdefs.IsPermissionDenied(err):
		return nil // still in use (e.g. by a container on another swarm node)
	}
	return fmt.Errorf("removing network %s: %w", n.Name, err)
}
