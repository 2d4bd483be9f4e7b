package main

import (
	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/backend/docker"
	"github.com/fedscale/fedscale-go/launcher/job"
)

func init() {
	remoteBackends[job.BackendDocker] = func(g *globals) (backend.Backend, error) {
		return docker.New(docker.Options{})
	}
}
