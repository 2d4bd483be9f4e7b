package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/runtime/mtls"
)

// Create makes the job's network (unless it exists) and containers,
// copies the job file into each, and starts them, the aggregator first.
// On any failure it removes what it created and returns the first error.
func (b *Backend) Create(ctx context.Context, s *job.Spec) (err error) {
	defer b.wrap(&err)
	p, err := plan(s, b.hostIP)
	if err != nil {
		return err
	}
	existing, err := b.list(ctx, s.Name)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		return fmt.Errorf("job %q: %w on %s (%d containers, e.g. %s); stop it first or pick another name",
			s.Name, backend.ErrExists, b.where(), len(existing), summaryName(existing[0]))
	}
	if err := b.ensureImages(ctx, p.images()); err != nil {
		return err
	}
	var made created
	defer func() {
		if err != nil {
			b.undo(ctx, made)
		}
	}()
	if made.network, err = b.ensureNetwork(ctx, p.Network); err != nil {
		return err
	}
	// Executors dial the aggregator by its container name or alias.
	bundle, err := s.IssueTLS(ContainerName(s.Name, "aggregator"), AggregatorAlias)
	if err != nil {
		return err
	}
	// Create (and fill) every container, then start them all: starts are
	// the slow part (about half a second each on a small machine) and
	// executors keep dialling until the aggregator answers, so order does
	// not matter. Nothing runs unless every container could be made.
	ids := make([]string, len(p.Containers))
	err = parallel(len(p.Containers), func(i int) error {
		c := p.Containers[i]
		res, err := b.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name: c.Name, Config: c.Config, HostConfig: c.Host, NetworkingConfig: c.Net,
		})
		if err != nil {
			if cerrdefs.IsConflict(err) {
				return b.nameTaken(ctx, s.Name, c.Name)
			}
			return fmt.Errorf("job %q: creating container %s: %w", s.Name, c.Name, err)
		}
		ids[i] = res.ID
		// The files belong to the user the container runs as (the
		// image's, merged in at create), so its key can be 0400.
		ins, err := b.cli.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("job %q: inspecting container %s: %w", s.Name, c.Name, err)
		}
		var user string
		if ins.Container.Config != nil {
			user = ins.Container.Config.User
		}
		tarball, err := containerFiles(s.Config, bundle.For(c.Proc.Rank), user)
		if err != nil {
			return err
		}
		if _, err := b.cli.CopyToContainer(ctx, res.ID, client.CopyToContainerOptions{
			DestinationPath: "/", Content: bytes.NewReader(tarball),
		}); err != nil {
			return fmt.Errorf("job %q: copying the job file and TLS files into %s: %w", s.Name, c.Name, err)
		}
		return nil
	})
	for _, id := range ids {
		if id != "" {
			made.containers = append(made.containers, id)
		}
	}
	if err != nil {
		return err
	}
	return parallel(len(ids), func(i int) error {
		if _, err := b.cli.ContainerStart(ctx, ids[i], client.ContainerStartOptions{}); err != nil {
			return fmt.Errorf("job %q: starting container %s: %w", s.Name, p.Containers[i].Name, err)
		}
		return nil
	})
}

// maxParallel bounds the Docker API calls in flight for one job: a job of
// hundreds of executors must not open hundreds of connections at once.
const maxParallel = 16

// parallel runs f(0..n-1), at most maxParallel at a time, and returns the
// error of the lowest i that failed (not the first to fail, so the message
// does not depend on timing).
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	var g errgroup.Group
	g.SetLimit(maxParallel)
	for i := range n {
		g.Go(func() error {
			errs[i] = f(i)
			return nil
		})
	}
	_ = g.Wait() // the errors are in errs
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// nameTaken explains a container name conflict: the same job submitted
// concurrently (ErrExists), or a container that is not the job's.
func (b *Backend) nameTaken(ctx context.Context, jobName, ctrName string) error {
	res, err := b.cli.ContainerInspect(ctx, ctrName, client.ContainerInspectOptions{})
	if err == nil && res.Container.Config != nil && res.Container.Config.Labels[job.LabelJob] == jobName {
		return fmt.Errorf("job %q: %w on %s (its container %s appeared meanwhile)", jobName, backend.ErrExists, b.where(), ctrName)
	}
	return fmt.Errorf("job %q: the container name %s is taken on %s by a container that is not part of the job; remove or rename it, or pick another job name", jobName, ctrName, b.where())
}

// created is what a Submit made, for undo.
type created struct {
	network    string // ID of a network this Submit created
	containers []string
}

// undo removes what a failed Submit made. It runs even when ctx is done.
func (b *Backend) undo(ctx context.Context, made created) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, id := range made.containers {
		_, _ = b.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
	if made.network != "" {
		_, _ = b.cli.NetworkRemove(ctx, made.network, client.NetworkRemoveOptions{})
	}
}

// containerFiles is a tar of the job file and the process's TLS files,
// extracted at "/". The TLS files belong to user (a container's
// "uid[:gid]"), the key readable by it alone; a user given by name cannot
// be resolved from outside the image, so its files are readable by all
// (the container runs one process).
func containerFiles(config []byte, tls mtls.Bundle, user string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	dir := job.ContainerConfigDir[1:] + "/"
	tlsDir := job.ContainerTLSDir[1:] + "/"
	uid, gid, numeric := numericUser(user)
	keyMode := int64(0o400)
	if !numeric {
		keyMode = 0o444
	}
	add := func(name string, mode int64, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(b)), ModTime: now, Uid: uid, Gid: gid}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	for _, d := range []string{dir, tlsDir} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: now, Uid: uid, Gid: gid}); err != nil {
			return nil, err
		}
	}
	if err := add(dir+job.ContainerConfigFile, 0o644, config); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(tls)) {
		if err := add(tlsDir+name, keyMode, tls[name]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// numericUser parses a container's user as "uid" or "uid:gid" ("" is
// root).
func numericUser(user string) (uid, gid int, ok bool) {
	if user == "" {
		return 0, 0, true
	}
	u, g, hasGroup := strings.Cut(user, ":")
	uid, err := strconv.Atoi(u)
	if err != nil || uid < 0 {
		return 0, 0, false
	}
	if hasGroup {
		if gid, err = strconv.Atoi(g); err != nil || gid < 0 {
			return 0, 0, false
		}
	}
	return uid, gid, true
}

// ensureImages checks every image is on the engine, pulling the missing.
func (b *Backend) ensureImages(ctx context.Context, images []string) error {
	for _, ref := range images {
		_, err := b.cli.ImageInspect(ctx, ref)
		if err == nil {
			continue
		}
		if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("image %s: %w", ref, err)
		}
		if b.opts.Log != nil {
			b.opts.Log.Info(fmt.Sprintf("pulling %s (not on %s)", ref, b.where()))
		}
		if perr := b.pull(ctx, ref); perr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &ImageError{Image: ref, Engine: b.host, Err: perr}
		}
	}
	return nil
}

func (b *Backend) pull(ctx context.Context, ref string) error {
	resp, err := b.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer resp.Close()
	return resp.Wait(ctx)
}

// ImageError says an image is neither on the engine nor pullable.
type ImageError struct {
	Image, Engine string
	Err           error
}

func (e *ImageError) Error() string {
	return fmt.Sprintf("image %s is neither on the Docker engine at %s nor pullable (%v); build it into the engine with `fsbuild exec --output docker`, or push it where the engine can pull it",
		e.Image, e.Engine, e.Err)
}

func (e *ImageError) Unwrap() error { return e.Err }

// ensureNetwork returns the ID of the network it created, or "" when the
// network exists and is reused.
func (b *Backend) ensureNetwork(ctx context.Context, np netPlan) (string, error) {
	_, err := b.cli.NetworkInspect(ctx, np.Name, client.NetworkInspectOptions{})
	if err == nil {
		return "", nil
	}
	if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("network %s: %w", np.Name, err)
	}
	opts := client.NetworkCreateOptions{Driver: "bridge", Labels: np.Labels}
	info, err := b.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", err
	}
	if sw := info.Info.Swarm; sw.LocalNodeState == swarm.LocalNodeStateActive && sw.ControlAvailable {
		// Executors on other swarm nodes can join the same network.
		opts.Driver, opts.Attachable = "overlay", true
	}
	res, err := b.cli.NetworkCreate(ctx, np.Name, opts)
	if err != nil {
		if cerrdefs.IsConflict(err) || errors.Is(err, cerrdefs.ErrAlreadyExists) {
			return "", nil // made by someone else meanwhile: reuse it
		}
		return "", fmt.Errorf("creating network %s: %w", np.Name, err)
	}
	return res.ID, nil
}
