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

// contextClient resolves the Docker CLI context in use ($DOCKER_CONTEXT,
// else the config file's currentContext) through the CLI's own context
// store, TLS material included, the way the docker CLI does when
// DOCKER_HOST is unset. It returns the engine address and the client
// options that reach it; "" with a nil error means the default context
// (the default socket).
func contextClient() (host, name string, opts []client.Opt, err error) {
	name = os.Getenv("DOCKER_CONTEXT")
	if name == "" {
		name = config.LoadDefaultConfigFile(io.Discard).CurrentContext
	}
	if name == "" || name == "default" {
		return "", "", nil, nil
	}
	dir := filepath.Join(config.Dir(), "contexts")
	s := store.New(dir, contextStoreConfig)
	md, err := s.GetMetadata(name)
	var nf interface{ NotFound() }
	if errors.As(err, &nf) {
		return "", name, nil, fmt.Errorf("docker context %q: not found in %s; run `docker context ls`", name, dir)
	}
	if err != nil {
		return "", name, nil, fmt.Errorf("docker context %q: %w", name, err)
	}
	meta, err := dcontext.EndpointFromContext(md)
	if err != nil {
		return "", name, nil, fmt.Errorf("docker context %q: %w", name, err)
	}
	if meta.Host == "" {
		return "", name, nil, fmt.Errorf("docker context %q has no docker endpoint host", name)
	}
	ep, err := dcontext.WithTLSData(s, name, meta)
	if err != nil {
		return "", name, nil, fmt.Errorf("docker context %q: %w", name, err)
	}
	if opts, err = ep.ClientOpts(); err != nil {
		return "", name, nil, fmt.Errorf("docker context %q: %w", name, err)
	}
	return meta.Host, name, opts, nil
}
