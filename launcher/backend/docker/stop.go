package docker

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// Delete force-removes every container of the job, then each network the
// job used that the launcher created (it carries job.LabelManagedBy) and
// that no container uses any more. A job with neither containers nor a
// network of its own is backend.ErrNotFound.
func (b *Backend) Delete(ctx context.Context, name string) (err error) {
	defer b.wrap(&err)
	items, err := b.list(ctx, name)
	if err != nil {
		return err
	}
	nets, err := b.cli.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", job.LabelJob+"="+name)})
	if err != nil {
		return err
	}
	if len(items) == 0 && len(nets.Items) == 0 {
		return backend.NotFound(name, b.where())
	}
	candidates := map[string]bool{}
	for _, n := range nets.Items {
		candidates[n.ID] = true
	}
	for _, it := range items {
		if it.NetworkSettings == nil {
			continue
		}
		for _, ep := range it.NetworkSettings.Networks {
			if ep != nil && ep.NetworkID != "" {
				candidates[ep.NetworkID] = true
			}
		}
	}
	err = backend.InParallel(items, func(it container.Summary) error {
		_, err := b.cli.ContainerRemove(ctx, it.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
			// A conflict is a removal already in progress: checked below.
			return fmt.Errorf("removing container %s: %w", summaryName(it), err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("job %q: %w", name, err)
	}
	if left, err := b.list(ctx, name); err != nil {
		return err
	} else if len(left) > 0 {
		return fmt.Errorf("job %q: %d containers are still there after removal (e.g. %s, %s)", name, len(left), summaryName(left[0]), left[0].State)
	}
	for id := range candidates {
		if err := b.removeNetwork(ctx, id); err != nil {
			return fmt.Errorf("job %q: %w", name, err)
		}
	}
	return nil
}

// removeNetwork removes a network the launcher created once no container
// uses it; any other network is left alone.
func (b *Backend) removeNetwork(ctx context.Context, id string) error {
	res, err := b.cli.NetworkInspect(ctx, id, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("network %s: %w", id, err)
	}
	n := res.Network
	if n.Labels[job.LabelManagedBy] != job.ManagedBy || len(n.Containers) > 0 {
		return nil
	}
	_, err = b.cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
	switch {
	case err == nil, cerrdefs.IsNotFound(err):
		return nil
	case cerrdefs.IsConflict(err), cerrdefs.IsFailedPrecondition(err), cerrdefs.IsPermissionDenied(err):
		return nil // still in use (e.g. by a container on another swarm node)
	}
	return fmt.Errorf("removing network %s: %w", n.Name, err)
}
