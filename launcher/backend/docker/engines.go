package docker

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/runtime/config"
)

// Which engine runs which process. The rules, in order, for the host a
// process belongs to (the aggregator's is ps_ip, an executor's its
// worker_ips host, else the aggregator's):
//
//  1. the host's entry in Options.Engines (--docker-engine), else in the
//     job file's docker_engines;
//  2. a host that is absent, localhost or a loopback address: the default
//     engine;
//  3. a job naming at most one other host and no engine map: the default
//     engine (one engine, as before multi-host jobs);
//  4. else ssh://[auth.ssh_user@]host, as the original driver reached its
//     hosts over ssh.
//
// A job on more than one engine needs container_network, an attachable
// overlay network of the swarm the engines are in.

// place is where one process runs.
type place struct {
	host string // ps_ip or worker_ips host; "" when the job names none
	spec string // the engine: an address or a context name
	from string // where spec came from, for messages
}

// what names the place's host for messages.
func (p place) what(rank int) string {
	switch {
	case p.host == "":
		return ""
	case rank == 0:
		return "ps_ip host " + p.host
	}
	return "worker_ips host " + p.host
}

// localHost: a host name that means the machine the default engine is on.
func localHost(h string) bool {
	if h == "" || h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

// places assigns each process of procs (aggregator first) its engine.
func (b *Backend) places(s *job.Spec, procs []job.Process) []place {
	j := s.Job
	specs := map[string]place{}
	for h, spec := range j.DockerEngines {
		specs[h] = place{host: h, spec: spec, from: "docker_engines in " + fileName(s)}
	}
	for h, spec := range b.opts.Engines {
		specs[h] = place{host: h, spec: spec, from: "--docker-engine"}
	}
	others := map[string]bool{}
	hostOf := func(p job.Process) string {
		if p.Rank == 0 || p.Host == "" {
			return j.PsIP
		}
		return p.Host
	}
	for _, p := range procs {
		if h := hostOf(p); !localHost(h) {
			others[h] = true
		}
	}
	def := place{spec: b.def.spec, from: b.def.from}
	out := make([]place, len(procs))
	for i, p := range procs {
		h := hostOf(p)
		switch pl, ok := specs[h]; {
		case ok:
			out[i] = pl
		case localHost(h), len(others) <= 1 && len(specs) == 0:
			out[i] = def
			out[i].host = h
		default:
			user := ""
			if j.Auth.SSHUser != "" {
				user = j.Auth.SSHUser + "@"
			}
			out[i] = place{host: h, spec: "ssh://" + user + h, from: "ps_ip/worker_ips over ssh (no docker_engines entry)"}
		}
	}
	return out
}

func fileName(s *job.Spec) string {
	if s.File == "" {
		return "the job file"
	}
	return s.File
}

// engineSet is the distinct engines of places, in order of first use, as
// the label LabelEngines records them: "host=spec" joined by spaces
// (engine specs and hosts hold no spaces: runtime/config checks them).
func engineSet(ps []place) string {
	var pairs []string
	for _, p := range ps {
		pair := p.host + "=" + p.spec
		if !slices.Contains(pairs, pair) {
			pairs = append(pairs, pair)
		}
	}
	return strings.Join(pairs, " ")
}

// maxLabelEngines bounds the engines one container's label may name: a
// label is read back from an engine, which is input like any other; no
// job the launcher submits names more.
const maxLabelEngines = config.MaxEngines

// parseEngineSet reads LabelEngines: the engine specs it names.
func parseEngineSet(v string) ([]string, error) {
	fields := strings.Fields(v)
	if len(fields) > maxLabelEngines {
		return nil, fmt.Errorf("label %s names %d engines, more than %d", LabelEngines, len(fields), maxLabelEngines)
	}
	var specs []string
	for _, f := range fields {
		_, spec, ok := strings.Cut(f, "=")
		if !ok || checkSpec(spec) != nil {
			return nil, fmt.Errorf("label %s: %q is not host=engine", LabelEngines, clip(f))
		}
		if !slices.Contains(specs, spec) {
			specs = append(specs, spec)
		}
	}
	return specs, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// onEngine is a container found on an engine.
type onEngine struct {
	e *engine
	c container.Summary
}

// seeds are the engines a lookup of job name starts from: the default
// engine, those of Options.Engines, and the job's own when this Backend
// created it (a submit that waits; the job file's docker_engines are not
// known otherwise). name "" is every job's.
func (b *Backend) seeds(name string) ([]*engine, error) {
	out := []*engine{b.def}
	b.mu.Lock()
	for _, e := range b.created[name] {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	b.mu.Unlock()
	for _, h := range slices.Sorted(maps.Keys(b.opts.Engines)) {
		e, err := b.engine(b.opts.Engines[h], "--docker-engine "+h)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// find lists job name's containers on every engine that holds some: the
// seeds, then each engine their containers' LabelEngines name, until no
// new engine turns up. Every engine consulted must answer: a job looked at
// (or stopped) with one of its engines out of reach would be reported
// wrongly. It also returns the engines consulted, in order.
func (b *Backend) find(ctx context.Context, name string) ([]onEngine, []*engine, error) {
	todo, err := b.seeds(name)
	if err != nil {
		return nil, nil, err
	}
	var done []*engine
	var out []onEngine
	seen := map[string]bool{} // container IDs: two specs may reach one engine
	for len(todo) > 0 {
		// One round: the engines not yet asked, in parallel.
		items := make([][]container.Summary, len(todo))
		var g errgroup.Group
		g.SetLimit(maxParallel)
		for i, e := range todo {
			g.Go(func() error {
				var err error
				items[i], err = e.list(ctx, name)
				return e.err(err, "")
			})
		}
		if err := g.Wait(); err != nil {
			return nil, nil, err
		}
		done = append(done, todo...)
		var next []*engine
		for i, e := range todo {
			for _, c := range items[i] {
				if seen[c.ID] {
					continue
				}
				seen[c.ID] = true
				out = append(out, onEngine{e, c})
				specs, err := parseEngineSet(c.Labels[LabelEngines])
				if err != nil {
					return nil, nil, fmt.Errorf("container %s on %s: %w", summaryName(c), e.where(), err)
				}
				for _, spec := range specs {
					o, err := b.engine(spec, "label "+LabelEngines+" of "+summaryName(c))
					if err != nil {
						return nil, nil, err
					}
					if !slices.Contains(done, o) && !slices.Contains(next, o) {
						next = append(next, o)
					}
				}
			}
		}
		todo = next
	}
	return out, done, nil
}

// list returns the job's containers on e (running or not); callers say
// which host the engine serves when it cannot be reached (engine.err).
func (e *engine) list(ctx context.Context, name string) ([]container.Summary, error) {
	f := make(client.Filters).Add("label", job.LabelJob+"="+name)
	res, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	return res.Items, nil
}

// wheres names the engines for messages.
// notHereHint ends a not-found message: a job whose containers all sit on
// an engine the launcher was not pointed at carries no label on the
// engines it looked at.
const notHereHint = " (a job placed on another engine is found by naming it: --docker-engine HOST=ENGINE, DOCKER_HOST or a Docker context)"

func wheres(es []*engine) string {
	if len(es) == 1 {
		return es[0].where()
	}
	var addrs []string
	for _, e := range es {
		addrs = append(addrs, e.addr)
	}
	return "the Docker engines at " + strings.Join(addrs, ", ")
}
