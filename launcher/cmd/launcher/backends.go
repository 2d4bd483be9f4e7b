package main

import (
	"errors"
	"net/url"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/backend/docker"
	"github.com/fedscale/fedscale-go/launcher/backend/k8s"
	"github.com/fedscale/fedscale-go/launcher/cmd/cli"
	"github.com/fedscale/fedscale-go/launcher/job"
)

func init() {
	remoteBackends[job.BackendDocker] = func(g *globals) (backend.Backend, error) {
		return docker.New(docker.Options{Log: g.log})
	}
	remoteBackends[job.BackendK8s] = func(g *globals) (backend.Backend, error) {
		return k8s.New(k8s.Options{Kubeconfig: g.kubeconfig, Context: g.kubeCtx, Namespace: g.namespace})
	}
}

// planner is a backend for --dry-run: it must work without a kubeconfig.
func (g *globals) planner(name string) (backend.Backend, error) {
	if name == job.BackendK8s {
		if b, err := g.open(name); err == nil {
			return b, nil
		}
		return k8s.NewOffline(g.namespace), nil
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
