package main

import (
	"errors"
	"net/url"
	"strings"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/backend/docker"
	"github.com/fedscale/fedscale-go/launcher/backend/k8s"
	"github.com/fedscale/fedscale-go/launcher/backend/local"
	"github.com/fedscale/fedscale-go/launcher/cmd/cli"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// backends is every backend the command knows, in the order commands
// without --backend search them: each builds its provider from the flags
// (backend.Lifecycle, embedded in each, does the rest). A remote one's New
// contacts nothing, so what fails there is the way to the engine or
// cluster (an unreadable kubeconfig, a bad DOCKER_HOST).
var backends = []struct {
	name   string
	remote bool
	open   func(*globals) (backend.Backend, error)
}{
	{job.BackendLocal, false, func(g *globals) (backend.Backend, error) {
		return opened(local.New(local.Options{StateDir: g.stateDir, BinDir: g.binDir, Log: g.log}))
	}},
	{job.BackendDocker, true, func(g *globals) (backend.Backend, error) {
		engines, err := g.dockerEngines()
		if err != nil {
			return nil, err
		}
		return opened(docker.New(docker.Options{Engines: engines, Log: g.log}))
	}},
	{job.BackendK8s, true, func(g *globals) (backend.Backend, error) {
		return opened(k8s.New(g.k8sOptions()))
	}},
}

// dockerEngines parses --docker-engine HOST=ENGINE flags.
func (g *globals) dockerEngines() (map[string]string, error) {
	if len(g.engines) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, v := range g.engines {
		host, engine, ok := strings.Cut(v, "=")
		if !ok || host == "" || engine == "" {
			return nil, cli.Usagef("--docker-engine %q: want HOST=ENGINE, e.g. 10.0.0.2=ssh://fed@10.0.0.2", v)
		}
		if prev, dup := m[host]; dup && prev != engine {
			return nil, cli.Usagef("--docker-engine: host %s given twice (%s and %s)", host, prev, engine)
		}
		m[host] = engine
	}
	return m, nil
}

func (g *globals) k8sOptions() k8s.Options {
	return k8s.Options{Kubeconfig: g.kubeconfig, Context: g.kubeCtx, Namespace: g.namespace, Log: g.log, PlanNamespace: g.planNamespace}
}

// opened keeps a failed constructor's nil pointer out of the interface.
func opened[B backend.Backend](b B, err error) (backend.Backend, error) {
	if err != nil {
		return nil, err
	}
	return b, nil
}

// backendOrder is the search order when no --backend is given.
var backendOrder = func() []string {
	var names []string
	for _, b := range backends {
		names = append(names, b.name)
	}
	return names
}()

// open builds one backend.
func (g *globals) open(name string) (backend.Backend, error) {
	for _, b := range backends {
		if b.name != name {
			continue
		}
		be, err := b.open(g)
		if b.remote {
			err = cli.WithCode(cli.ExitUnreachable, err)
		}
		return be, err
	}
	return nil, cli.Usagef("--backend %q: want docker, k8s or local", name)
}

// planner is a backend for --dry-run: it must work without a kubeconfig.
func (g *globals) planner(name string) (backend.Backend, error) {
	if name == job.BackendK8s {
		if b, err := g.open(name); err == nil {
			return b, nil
		}
		return k8s.NewOffline(g.k8sOptions()), nil
	}
	return g.open(name)
}

// backendErr gives a backend's error its exit code: a job no backend
// knows, an engine or API server that cannot be reached (the k8s backend
// wraps the client's *url.Error, which only a failed request gives).
func backendErr(err error) error {
	var engine *docker.EngineError
	var request *url.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, backend.ErrNotFound):
		return cli.WithCode(cli.ExitNotFound, err)
	case errors.As(err, &engine), errors.As(err, &request):
		return cli.WithCode(cli.ExitUnreachable, err)
	}
	return err
}
