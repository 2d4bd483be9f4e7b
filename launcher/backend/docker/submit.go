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

// Create makes the job's network (unless it exists; on several engines it
// must exist: an attachable overlay) and containers, each on its host's
// engine, copies the job file into each, and starts them. On any failure
// it removes what it created, on every engine, and returns the first
// error.
func (b *Backend) Create(ctx context.Context, s *job.Spec) (err error) {
	p, err := b.plan(s)
	if err != nil {
		return err
	}
	// Each container's engine, and the distinct engines with the first
	// host each serves (for messages).
	engs := make([]*engine, len(p.Containers))
	var targets []target
	for i, c := range p.Containers {
		e, err := b.engine(c.Place.spec, c.Place.from)
		if err != nil {
			if what := c.Place.what(c.Proc.Rank); what != "" {
				return fmt.Errorf("job %q: the Docker engine of %s: %w", s.Name, what, err)
			}
			return fmt.Errorf("job %q: %w", s.Name, err)
		}
		engs[i] = e
		if !slices.ContainsFunc(targets, func(t target) bool { return t.e == e }) {
			targets = append(targets, target{e: e, what: c.Place.what(c.Proc.Rank)})
		}
		t := &targets[slices.IndexFunc(targets, func(t target) bool { return t.e == e })]
		if !slices.Contains(t.images, c.Config.Image) {
			t.images = append(t.images, c.Config.Image)
		}
	}
	// Every engine answers and holds no container of the job.
	err = parallel(len(targets), func(i int) error {
		t := targets[i]
		existing, err := t.e.list(ctx, s.Name)
		if err != nil {
			return t.e.err(err, t.what)
		}
		if len(existing) > 0 {
			return fmt.Errorf("job %q: %w on %s (%d containers, e.g. %s); stop it first or pick another name",
				s.Name, backend.ErrExists, t.e.where(), len(existing), summaryName(existing[0]))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, t := range targets {
		if err := b.ensureImages(ctx, t, t.images); err != nil {
			return err
		}
	}
	var made created
	defer func() {
		if err != nil {
			b.undo(ctx, made)
		}
	}()
	if p.Multi {
		if err := checkOverlay(ctx, targets, p.Network.Name); err != nil {
			return fmt.Errorf("job %q: %w", s.Name, err)
		}
	} else if made.network, err = b.ensureNetwork(ctx, targets[0], p.Network); err != nil {
		return err
	}
	made.networkOn = targets[0].e
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
		c, e, what := p.Containers[i], engs[i], p.Containers[i].Place.what(p.Containers[i].Proc.Rank)
		res, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name: c.Name, Config: c.Config, HostConfig: c.Host, NetworkingConfig: c.Net,
		})
		if err != nil {
			if cerrdefs.IsConflict(err) {
				return b.nameTaken(ctx, e, s.Name, c.Name)
			}
			return e.err(fmt.Errorf("job %q: creating container %s on %s: %w", s.Name, c.Name, e.where(), err), what)
		}
		ids[i] = res.ID
		// The files belong to the user the container runs as (the
		// image's, merged in at create), so its key can be 0400.
		ins, err := e.cli.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
		if err != nil {
			return e.err(fmt.Errorf("job %q: inspecting container %s: %w", s.Name, c.Name, err), what)
		}
		var user string
		if ins.Container.Config != nil {
			user = ins.Container.Config.User
		}
		tarball, err := containerFiles(s.Config, bundle.For(c.Proc.Rank), user)
		if err != nil {
			return err
		}
		if _, err := e.cli.CopyToContainer(ctx, res.ID, client.CopyToContainerOptions{
			DestinationPath: "/", Content: bytes.NewReader(tarball),
		}); err != nil {
			return e.err(fmt.Errorf("job %q: copying the job file and TLS files into %s: %w", s.Name, c.Name, err), what)
		}
		return nil
	})
	for i, id := range ids {
		if id != "" {
			made.containers = append(made.containers, madeCtr{engs[i], id})
		}
	}
	if err != nil {
		return err
	}
	b.mu.Lock()
	for _, t := range targets {
		b.created[s.Name] = append(b.created[s.Name], t.e)
	}
	b.mu.Unlock()
	return parallel(len(ids), func(i int) error {
		if _, err := engs[i].cli.ContainerStart(ctx, ids[i], client.ContainerStartOptions{}); err != nil {
			return engs[i].err(fmt.Errorf("job %q: starting container %s on %s: %w", s.Name, p.Containers[i].Name, engs[i].where(), err),
				p.Containers[i].Place.what(p.Containers[i].Proc.Rank))
		}
		return nil
	})
}

// target is one engine a Create uses: the first job host it serves (for
// messages) and the images its containers need.
type target struct {
	e      *engine
	what   string
	images []string
}

// checkOverlay checks the network a job across engines is joined by: an
// attachable overlay network that a swarm manager among the engines
// knows, every other engine an active swarm node (a worker sees an overlay
// only once a container of its own is attached to it). The launcher does
// not create it: like the tutorial, the network belongs to the swarm.
func checkOverlay(ctx context.Context, targets []target, name string) error {
	found := false
	var unseen []target
	for _, t := range targets {
		res, err := t.e.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			unseen = append(unseen, t)
			continue
		}
		if err != nil {
			return t.e.err(fmt.Errorf("container_network %s on %s: %w", name, t.e.where(), err), t.what)
		}
		n := res.Network
		if n.Driver != "overlay" || !n.Attachable {
			kind := n.Driver + " network"
			if n.Driver == "overlay" {
				kind = "overlay network that is not attachable"
			}
			return fmt.Errorf("container_network %s on %s is a %s; a job across Docker engines needs an attachable overlay (docker network create --driver=overlay --attachable %s, on a swarm manager)",
				name, t.e.where(), kind, name)
		}
		found = true
	}
	if !found {
		var addrs []string
		for _, t := range targets {
			addrs = append(addrs, t.e.addr)
		}
		return fmt.Errorf("container_network %s: no such network on the job's Docker engines (%s); create it on a swarm manager: docker network create --driver=overlay --attachable %s",
			name, strings.Join(addrs, ", "), name)
	}
	for _, t := range unseen {
		info, err := t.e.cli.Info(ctx, client.InfoOptions{})
		if err != nil {
			return t.e.err(fmt.Errorf("the Docker engine at %s: %w", t.e.addr, err), t.what)
		}
		if info.Info.Swarm.LocalNodeState != swarm.LocalNodeStateActive {
			of := ""
			if t.what != "" {
				of = " (of " + t.what + ")"
			}
			return fmt.Errorf("container_network %s: the Docker engine at %s%s is not in a swarm (state %q), so it cannot attach to the overlay; join it to the swarm of the other engines (docker swarm join)",
				name, t.e.addr, of, info.Info.Swarm.LocalNodeState)
		}
	}
	return nil
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
func (b *Backend) nameTaken(ctx context.Context, e *engine, jobName, ctrName string) error {
	res, err := e.cli.ContainerInspect(ctx, ctrName, client.ContainerInspectOptions{})
	if err == nil && res.Container.Config != nil && res.Container.Config.Labels[job.LabelJob] == jobName {
		return fmt.Errorf("job %q: %w on %s (its container %s appeared meanwhile)", jobName, backend.ErrExists, e.where(), ctrName)
	}
	return fmt.Errorf("job %q: the container name %s is taken on %s by a container that is not part of the job; remove or rename it, or pick another job name", jobName, ctrName, e.where())
}

// created is what a Submit made, for undo.
type created struct {
	network    string  // ID of a network this Submit created
	networkOn  *engine // its engine
	containers []madeCtr
}

type madeCtr struct {
	e  *engine
	id string
}

// undo removes what a failed Submit made, on every engine. It runs even
// when ctx is done.
func (b *Backend) undo(ctx context.Context, made created) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = parallel(len(made.containers), func(i int) error {
		c := made.containers[i]
		_, _ = c.e.cli.ContainerRemove(ctx, c.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		return nil
	})
	if made.network != "" {
		_, _ = made.networkOn.cli.NetworkRemove(ctx, made.network, client.NetworkRemoveOptions{})
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
func (b *Backend) ensureImages(ctx context.Context, t target, images []string) error {
	for _, ref := range images {
		_, err := t.e.cli.ImageInspect(ctx, ref)
		if err == nil {
			continue
		}
		if !cerrdefs.IsNotFound(err) {
			return t.e.err(fmt.Errorf("image %s on %s: %w", ref, t.e.where(), err), t.what)
		}
		if b.opts.Log != nil {
			b.opts.Log.Info(fmt.Sprintf("pulling %s (not on %s)", ref, t.e.where()))
		}
		if perr := pull(ctx, t.e, ref); perr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &ImageError{Image: ref, Engine: t.e.addr, Err: perr}
		}
	}
	return nil
}

func pull(ctx context.Context, e *engine, ref string) error {
	resp, err := e.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
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
func (b *Backend) ensureNetwork(ctx context.Context, t target, np netPlan) (string, error) {
	_, err := t.e.cli.NetworkInspect(ctx, np.Name, client.NetworkInspectOptions{})
	if err == nil {
		return "", nil
	}
	if !cerrdefs.IsNotFound(err) {
		return "", t.e.err(fmt.Errorf("network %s: %w", np.Name, err), t.what)
	}
	opts := client.NetworkCreateOptions{Driver: "bridge", Labels: np.Labels}
	info, err := t.e.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", t.e.err(err, t.what)
	}
	if sw := info.Info.Swarm; sw.LocalNodeState == swarm.LocalNodeStateActive && sw.ControlAvailable {
		// Executors on other swarm nodes can join the same network.
		opts.Driver, opts.Attachable = "overlay", true
	}
	res, err := t.e.cli.NetworkCreate(ctx, np.Name, opts)
	if err != nil {
		if cerrdefs.IsConflict(err) || errors.Is(err, cerrdefs.ErrAlreadyExists) {
			return "", nil // made by someone else meanwhile: reuse it
		}
		return "", fmt.Errorf("creating network %s: %w", np.Name, err)
	}
	return res.ID, nil
}
