package devinfra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/moby/moby/client"
)

// Docker is the Docker engine the image and e2e tests load images into and
// run containers on: Debian's docker.io started as a plain background
// process (these VMs have no systemd). Any engine that already answers
// (at $DOCKER_HOST, else the default socket) is used as it is.
type Docker struct {
	// State holds its log and pid file (FEDSCALE_DOCKERD_STATE, default
	// /tmp/fedscale-dockerd).
	State string
	Log   *slog.Logger
}

const dockerStartTimeout = 30 * time.Second

// DockerFromEnv configures the engine from the environment, as
// scripts/dockerd.sh was.
func DockerFromEnv(log *slog.Logger) (*Docker, error) {
	state, err := envPath("FEDSCALE_DOCKERD_STATE", "/tmp/fedscale-dockerd")
	if err != nil {
		return nil, err
	}
	return &Docker{State: state, Log: log}, nil
}

func (d *Docker) stack() *Stack {
	return &Stack{
		State:   State{Dir: d.State},
		Timeout: dockerStartTimeout,
		Log:     d.Log,
		Daemons: []Daemon{{
			Name: "dockerd", Tool: "dockerd",
			Ready: func(ctx context.Context) error { _, err := DockerVersion(ctx); return err },
		}},
	}
}

// DockerVersion is the version of the engine that answers.
func DockerVersion(ctx context.Context) (string, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return "", err
	}
	defer c.Close()
	v, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", err
	}
	return v.Version, nil
}

// Install installs Debian's docker.io when dockerd is missing (as root).
func (d *Docker) Install(ctx context.Context) error {
	return ensureCommand(ctx, d.Log, "dockerd", "docker.io")
}

// Start starts dockerd unless an engine answers, and waits until it does.
// It prints nothing: clients find the engine as they always do.
func (d *Docker) Start(ctx context.Context) (string, error) {
	unlock, err := State{Dir: d.State}.Lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	_, err = DockerVersion(pctx)
	cancel()
	if err == nil {
		return "", nil
	}
	st := d.stack()
	paths, err := st.Paths(ctx)
	if err != nil {
		return "", fmt.Errorf("dockerd is not installed (run scripts/dockerd.sh install as root): %w", err)
	}
	if os.Geteuid() != 0 {
		return "", errors.New("starting dockerd needs root")
	}
	// The package's own start may have left a stale pid file behind.
	if err := os.Remove("/var/run/docker.pid"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	return "", st.Start(ctx, paths)
}

// Status says whether an engine answers, and its version.
func (d *Docker) Status(ctx context.Context) ([]string, bool) {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	v, err := DockerVersion(pctx)
	if err != nil {
		return []string{"dockerd not running"}, false
	}
	return []string{"dockerd running: " + v}, true
}

// Stop stops the dockerd this package started, if it runs.
func (d *Docker) Stop(ctx context.Context) error { return d.stack().Down(ctx) }
