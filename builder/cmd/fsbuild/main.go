// Command fsbuild builds the FedScale runtime's container images
// (fedscale-aggr, fedscale-exec) with BuildKit: bit-reproducible, CPU or
// CUDA, for one or several platforms, pushed with provenance and an SBOM as
// OCI referrers. The work happens in package build; this file is flags in,
// one call, output out.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/spf13/cobra"

	"github.com/fedscale/fedscale-go/builder/build"
	"github.com/fedscale/fedscale-go/builder/pins"
	"github.com/fedscale/fedscale-go/builder/platform"
	"github.com/fedscale/fedscale-go/builder/publish"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/version"
)

const examples = `  # build both images for this machine (nothing leaves it)
  fsbuild all
  # push both, multi-platform, to a registry (tag: git describe, plus the commit)
  fsbuild all --push --platform linux/amd64,linux/arm64
  # push to a local plain-HTTP registry
  fsbuild all --push --repo 127.0.0.1:5000/fedscale --insecure-registry 127.0.0.1:5000
  # the CUDA executor on the pinned nvidia/cuda base (dockerfiles/cuda-bases.json)
  fsbuild exec --cuda 12.4 --push
  # load the executor into the local Docker engine
  fsbuild exec --output docker && docker run --rm fedscale/fedscale-exec:<tag> --version`

type flags struct {
	push               bool
	repo               string
	tags               []string
	platforms          string
	cuda               string
	base               string
	output             string
	progress           string
	sourceDateEpoch    int64
	printDigest        string
	builder            string
	insecureRegistries []string
	allowDirty         bool
	source             string
}

func main() {
	build.QuietLibraries()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newCommand(os.Stdout, os.Stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "fsbuild:", err)
		os.Exit(1)
	}
}

func newCommand(stdout, stderr io.Writer) *cobra.Command {
	var f flags
	root := &cobra.Command{
		Use:           "fsbuild aggr|exec|all [flags]",
		Short:         "Build the FedScale aggregator and executor images with BuildKit",
		Example:       examples,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// No arguments: short help, not a build.
			return cmd.Help()
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.BoolVar(&f.push, "push", false, "push to the registry (same as --output registry)")
	pf.StringVar(&f.repo, "repo", "fedscale", "repository prefix; a registry host may lead it (127.0.0.1:5000/fedscale)")
	pf.StringSliceVar(&f.tags, "tag", nil, "image tag, repeatable (default: git describe, plus the commit; -cuda<VERSION> is appended for --cuda)")
	pf.StringVar(&f.platforms, "platform", "", "comma-separated target platforms (default: this machine's); supported: "+strings.Join(platform.Supported(), ", "))
	pf.StringVar(&f.cuda, "cuda", "", "build the CUDA variant on the pinned nvidia/cuda base of this version ("+pins.File+")")
	pf.StringVar(&f.base, "base", "", "base image reference (default: scratch, or the pinned CUDA base); must carry a digest with --push")
	pf.StringVar(&f.output, "output", "", "where images go: registry, docker (load into the engine) or oci=PATH (default: registry with --push, else nowhere)")
	pf.StringVar(&f.progress, "progress", "auto", "BuildKit progress display: auto, plain, tty or quiet")
	pf.Int64Var(&f.sourceDateEpoch, "source-date-epoch", -1, "timestamp of everything in the image, seconds since 1970 (default: $SOURCE_DATE_EPOCH, else the HEAD commit time)")
	pf.StringVar(&f.printDigest, "print-digest", "", "write REF@DIGEST of each image, one per line, to this file")
	pf.StringVar(&f.builder, "builder", "", "BuildKit address: unix://, tcp://, docker-container://NAME (default: $BUILDKIT_HOST, else "+"unix:///run/buildkit/buildkitd.sock)")
	pf.StringSliceVar(&f.insecureRegistries, "insecure-registry", nil, "registry host[:port] to use over plain HTTP, repeatable")
	pf.BoolVar(&f.allowDirty, "allow-dirty", false, "allow --push from a work tree with uncommitted changes (the tag gets -dirty)")
	pf.StringVar(&f.source, "source", "", "repository root to build from (default: found upward from the current folder)")

	for _, c := range []struct {
		use, short string
		names      []string
	}{
		{"aggr", "Build the aggregator image (fedscale-aggr)", []string{"aggr"}},
		{"exec", "Build the executor image (fedscale-exec)", []string{"exec"}},
		{"all", "Build both images", []string{"aggr", "exec"}},
	} {
		names := c.names
		root.AddCommand(&cobra.Command{
			Use:     c.use,
			Short:   c.short,
			Example: examples,
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				opts, err := f.options(names, stderr)
				if err != nil {
					return err
				}
				images, err := build.Run(cmd.Context(), opts)
				if err != nil {
					return err
				}
				var lines []string
				for _, img := range images {
					lines = append(lines, img.Ref())
				}
				out := strings.Join(lines, "\n") + "\n"
				fmt.Fprint(stdout, out)
				if f.printDigest != "" {
					if err := os.WriteFile(f.printDigest, []byte(out), 0o644); err != nil {
						return fmt.Errorf("--print-digest: %w", err)
					}
				}
				return nil
			},
		})
	}
	root.AddCommand(newPinCommand(&f, stdout))
	return root
}

func (f *flags) options(names []string, stderr io.Writer) (build.Options, error) {
	var opts build.Options
	for _, n := range names {
		for _, c := range build.Components {
			if c.Name == n {
				opts.Components = append(opts.Components, c)
			}
		}
	}
	out, err := build.ParseOutput(f.output)
	if err != nil {
		return opts, err
	}
	if f.push {
		if out.Kind != build.OutputNone && out.Kind != build.OutputRegistry {
			return opts, fmt.Errorf("--push conflicts with --output %s: pick one", f.output)
		}
		out.Kind = build.OutputRegistry
	}
	opts.Output = out
	if opts.Platforms, err = platform.ParseList(f.platforms); err != nil {
		return opts, fmt.Errorf("--platform: %w", err)
	}
	switch f.progress {
	case "auto", "plain", "tty", "quiet":
	default:
		return opts, fmt.Errorf("--progress %q: want auto, plain, tty or quiet", f.progress)
	}
	opts.Progress = progressui.DisplayMode(f.progress)
	opts.ProgressTo = stderr
	opts.Log = slog.New(fedlog.NewPlain(stderr, slog.LevelInfo))
	if f.sourceDateEpoch >= 0 {
		opts.SourceDateEpoch = &f.sourceDateEpoch
	} else if env := os.Getenv("SOURCE_DATE_EPOCH"); env != "" {
		var sec int64
		if _, err := fmt.Sscan(env, &sec); err != nil || sec < 0 {
			return opts, fmt.Errorf("$SOURCE_DATE_EPOCH %q: want seconds since 1970", env)
		}
		opts.SourceDateEpoch = &sec
	}
	if opts.SourceDir, err = sourceDir(f.source); err != nil {
		return opts, err
	}
	opts.Repo = strings.TrimSuffix(f.repo, "/")
	opts.Tags = f.tags
	opts.CUDA = f.cuda
	opts.Base = f.base
	opts.AllowDirty = f.allowDirty
	opts.Builder = f.builder
	opts.Registry = publish.Registry{Insecure: f.insecureRegistries}
	opts.Go = goCommand()
	return opts, nil
}

// sourceDir is --source, or the nearest folder upward holding go.mod and dockerfiles/.
func sourceDir(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if fileExists(filepath.Join(d, "go.mod")) && fileExists(filepath.Join(d, "dockerfiles")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no fedscale-go checkout (go.mod and dockerfiles/) in or above " + dir + "; run fsbuild inside the repository or pass --source")
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// goCommand prefers $GO, then go on PATH.
func goCommand() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}
