package docker

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/config"
	dcontext "github.com/docker/cli/cli/context/docker"
	"github.com/docker/cli/cli/context/store"
	"github.com/moby/moby/client"
)

// contextStoreConfig is the docker CLI's: contexts whose metadata we do not
// read, with a docker endpoint each.
var contextStoreConfig = store.NewConfig(
	func() any { return &map[string]any{} },
	store.EndpointTypeGetter(dcontext.DockerEndpoint, func() any { return &dcontext.EndpointMeta{} }),
)

// currentContext is the Docker CLI context in use ($DOCKER_CONTEXT, else
// the config file's currentContext), the way the docker CLI picks it when
// DOCKER_HOST is unset; "" means the default context (the default socket).
// A context that does not exist is an error.
func currentContext() (string, error) {
	name := os.Getenv("DOCKER_CONTEXT")
	if name == "" {
		name = config.LoadDefaultConfigFile(io.Discard).CurrentContext
	}
	if name == "" || name == "default" {
		return "", nil
	}
	if _, _, err := contextClient(name); err != nil {
		return "", err
	}
	return name, nil
}

// contextClient resolves Docker CLI context name through the CLI's own
// context store, TLS material included. It returns the engine address and
// the client options that reach it.
func contextClient(name string) (host string, opts []client.Opt, err error) {
	if name == "default" {
		return client.DefaultDockerHost, []client.Opt{client.WithHost(client.DefaultDockerHost)}, nil
	}
	dir := filepath.Join(config.Dir(), "contexts")
	s := store.New(dir, contextStoreConfig)
	md, err := s.GetMetadata(name)
	var nf interface{ NotFound() }
	if errors.As(err, &nf) {
		return "", nil, fmt.Errorf("docker context %q: not found in %s; run `docker context ls`", name, dir)
	}
	if err != nil {
		return "", nil, fmt.Errorf("docker context %q: %w", name, err)
	}
	meta, err := dcontext.EndpointFromContext(md)
	if err != nil {
		return "", nil, fmt.Errorf("docker context %q: %w", name, err)
	}
	if meta.Host == "" {
		return "", nil, fmt.Errorf("docker context %q has no docker endpoint host", name)
	}
	ep, err := dcontext.WithTLSData(s, name, meta)
	if err != nil {
		return "", nil, fmt.Errorf("docker context %q: %w", name, err)
	}
	if opts, err = ep.ClientOpts(); err != nil {
		return "", nil, fmt.Errorf("docker context %q: %w", name, err)
	}
	return meta.Host, opts, nil
}
