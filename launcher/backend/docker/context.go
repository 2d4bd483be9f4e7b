package docker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/config"
)

// contextHost resolves the Docker CLI context in use ($DOCKER_CONTEXT, else
// the config file's currentContext) to its engine address, the way the
// docker CLI does when DOCKER_HOST is unset. "" with a nil error means the
// default context (the default socket). The store's layout is the CLI's:
// contexts/meta/<sha256 of the name>/meta.json under the config folder.
func contextHost() (host, name string, err error) {
	name = os.Getenv("DOCKER_CONTEXT")
	if name == "" {
		name = config.LoadDefaultConfigFile(io.Discard).CurrentContext
	}
	if name == "" || name == "default" {
		return "", "", nil
	}
	sum := sha256.Sum256([]byte(name))
	path := filepath.Join(config.Dir(), "contexts", "meta", hex.EncodeToString(sum[:]), "meta.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", name, fmt.Errorf("docker context %q: not found (no %s); run `docker context ls`", name, path)
	}
	if err != nil {
		return "", name, fmt.Errorf("docker context %q: %w", name, err)
	}
	var meta struct {
		Endpoints map[string]struct {
			Host string `json:"Host"`
		} `json:"Endpoints"`
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return "", name, fmt.Errorf("docker context %q: %s: %w", name, path, err)
	}
	host = meta.Endpoints["docker"].Host
	if host == "" {
		return "", name, fmt.Errorf("docker context %q has no docker endpoint host (%s)", name, path)
	}
	return host, name, nil
}
