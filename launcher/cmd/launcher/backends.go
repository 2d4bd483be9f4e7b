package main

import (
	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/backend/docker"
	"github.com/fedscale/fedscale-go/launcher/backend/k8s"
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
