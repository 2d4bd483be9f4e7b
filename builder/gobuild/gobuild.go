// Package gobuild compiles the runtime's Go programs for image platforms on
// the host, the ko way: CGO_ENABLED=0, -trimpath, an empty build id and the
// version stamped by the linker, so the same commit and Go toolchain give the
// same bytes on any machine. No emulation and no compiler inside BuildKit.
package gobuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/fedscale/fedscale-go/builder/platform"
)

// VersionVar is the linker symbol that carries the version into the binaries.
const VersionVar = "github.com/fedscale/fedscale-go/runtime/version.Version"

// Program is one main package to compile.
type Program struct {
	Name       string // output file name, e.g. "executor"
	ImportPath string // e.g. "./runtime/cmd/executor"
}

// Options configures Build.
type Options struct {
	ModuleDir string // where go.mod is; the go command runs there
	Programs  []Program
	Platforms []platform.Platform
	Version   string   // stamped into VersionVar
	OutDir    string   // binaries go to OutDir/<platform.Dir()>/<Name>
	Go        string   // the go command; "go" when empty
	Tags      []string // go build -tags (a variant's, runtime/variant)
	Stderr    io.Writer
}

// Binary is one compiled file.
type Binary struct {
	Program  Program
	Platform platform.Platform
	Path     string
	SHA256   string
	Info     *debug.BuildInfo
}

// Build compiles every program for every platform, one go invocation per
// platform (the go command builds the programs of one invocation in parallel).
func Build(ctx context.Context, opts Options) ([]Binary, error) {
	if len(opts.Programs) == 0 || len(opts.Platforms) == 0 {
		return nil, fmt.Errorf("gobuild: nothing to build (%d programs, %d platforms)", len(opts.Programs), len(opts.Platforms))
	}
	goCmd := opts.Go
	if goCmd == "" {
		goCmd = "go"
	}
	ldflags := "-s -w -buildid= -X " + VersionVar + "=" + opts.Version
	var out []Binary
	for _, p := range opts.Platforms {
		dir := filepath.Join(opts.OutDir, p.Dir())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("gobuild: %w", err)
		}
		args := []string{"build", "-trimpath", "-buildvcs=auto", "-ldflags=" + ldflags, "-tags=" + strings.Join(opts.Tags, ","), "-o", dir + string(filepath.Separator)}
		for _, prog := range opts.Programs {
			args = append(args, prog.ImportPath)
		}
		cmd := exec.CommandContext(ctx, goCmd, args...)
		cmd.Dir = opts.ModuleDir
		// Only what decides the output is set; GOFLAGS from the user's
		// environment could add -race or -cover, so it is cleared.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOAMD64=v1", "GOARM64=v8.0")
		cmd.Env = append(cmd.Env, p.GoEnv()...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if opts.Stderr != nil {
			cmd.Stderr = io.MultiWriter(&stderr, opts.Stderr)
		}
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("gobuild: go build for %s: %w\n%s", p, err, strings.TrimSpace(stderr.String()))
		}
		for _, prog := range opts.Programs {
			b, err := inspect(filepath.Join(dir, prog.Name))
			if err != nil {
				return nil, err
			}
			b.Program, b.Platform = prog, p
			out = append(out, b)
		}
	}
	return out, nil
}

func inspect(path string) (Binary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Binary{}, fmt.Errorf("gobuild: %w", err)
	}
	info, err := buildinfo.Read(bytes.NewReader(data))
	if err != nil {
		return Binary{}, fmt.Errorf("gobuild: reading build info of %s: %w", path, err)
	}
	sum := sha256.Sum256(data)
	return Binary{Path: path, SHA256: hex.EncodeToString(sum[:]), Info: info}, nil
}
