// Command fsbuild builds the FedScale runtime's container images
// (fedscale-aggr, fedscale-exec) with BuildKit: bit-reproducible, CPU or
// CUDA, for one or several platforms, pushed with provenance and an SBOM as
// OCI referrers. The work happens in package build; this file is flags in,
// one call, output out.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/spf13/cobra"

	"github.com/fedscale/fedscale-go/builder/build"
	"github.com/fedscale/fedscale-go/builder/buildkit"
	"github.com/fedscale/fedscale-go/builder/pins"
	"github.com/fedscale/fedscale-go/builder/platform"
	"github.com/fedscale/fedscale-go/builder/publish"
	"github.com/fedscale/fedscale-go/launcher/cmd/cli"
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
	load               bool
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
	cli.Main(newCommand(os.Stdout, os.Stderr))
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
	for _, c := range []struct {
		use, short, example string
		names               []string
	}{
		{"aggr", "Build the aggregator image (fedscale-aggr)", `  fsbuild aggr                                   # for this machine; nothing leaves it
  fsbuild aggr --push -t v1.2.3 --platform linux/amd64,linux/arm64
  fsbuild aggr --load                            # into the local Docker engine`, []string{"aggr"}},
		{"exec", "Build the executor image (fedscale-exec)", `  fsbuild exec --cuda 12.4 --push               # on the pinned nvidia/cuda base
  fsbuild exec -o type=docker                    # into the local Docker engine, as --load
  fsbuild exec -o oci=out/ --platform linux/arm64`, []string{"exec"}},
		{"all", "Build both images", examples, []string{"aggr", "exec"}},
	} {
		names := c.names
		cmd := &cobra.Command{
			Use:     c.use,
			Short:   c.short,
			Example: c.example,
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				opts, err := f.options(names, stderr)
				if err != nil {
					return cli.Usage(err)
				}
				images, err := build.Run(cmd.Context(), opts)
				var unreachable *buildkit.UnreachableError
				if errors.As(err, &unreachable) {
					return cli.WithCode(cli.ExitUnreachable, err)
				}
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
		}
		f.bind(cmd)
		root.AddCommand(cmd)
	}
	root.AddCommand(newPinCommand(&f, stdout), cli.VersionCommand("fsbuild", stdout))
	return root
}

// bind defines the build flags on a build command (each has its own set,
// so pin and version list none of them).
func (f *flags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.push, "push", false, "push to the registry (as --output registry)")
	fl.BoolVar(&f.load, "load", false, "load into the local Docker engine (as --output docker; one platform)")
	fl.StringVar(&f.repo, "repo", "fedscale", "repository prefix; a registry host may lead it (127.0.0.1:5000/fedscale)")
	fl.StringSliceVarP(&f.tags, "tag", "t", nil, "image tag, repeatable; the image names are fixed, --repo prefixes them (default: git describe, plus the commit; -cuda<VERSION> is appended for --cuda)")
	fl.StringVar(&f.platforms, "platform", "", "comma-separated target platforms (default: this machine's); supported: "+strings.Join(platform.Supported(), ", "))
	fl.StringVar(&f.cuda, "cuda", "", "build the CUDA variant on the pinned nvidia/cuda base of this version ("+pins.File+")")
	fl.StringVar(&f.base, "base", "", "base image reference (default: scratch, or the pinned CUDA base); must carry a digest with --push")
	fl.StringVarP(&f.output, "output", "o", "", "where images go: registry, docker or oci=PATH; buildx's type=registry, type=docker, type=oci,dest=PATH too (default: registry with --push, else nowhere)")
	fl.StringVar(&f.progress, "progress", "auto", "BuildKit progress display: auto, plain, tty or quiet")
	fl.Int64Var(&f.sourceDateEpoch, "source-date-epoch", -1, "timestamp of everything in the image, seconds since 1970 (-1: $SOURCE_DATE_EPOCH, else the HEAD commit time)")
	fl.StringVar(&f.printDigest, "print-digest", "", "write REF@DIGEST of each image, one per line, to this file")
	fl.StringVar(&f.builder, "builder", "", "BuildKit address: unix://, tcp://, docker-container://NAME (default: $BUILDKIT_HOST, else "+buildkit.DefaultAddress+")")
	fl.BoolVar(&f.allowDirty, "allow-dirty", false, "allow --push from a work tree with uncommitted changes (the tag gets -dirty)")
	f.bindShared(cmd)
	cli.CompleteFlag(cmd, "platform", platform.Supported()...)
	cli.CompleteFlag(cmd, "progress", progressModes...)
	cli.CompleteFlag(cmd, "output", "registry", "docker", "oci=", "type=registry", "type=docker", "type=oci,dest=")
	if err := cmd.RegisterFlagCompletionFunc("cuda", f.completeCUDA); err != nil {
		panic(err) // an unknown flag: a programming error every test catches
	}
	_ = cmd.MarkFlagFilename("print-digest")
}

// bindShared defines the flags pin uses too.
func (f *flags) bindShared(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&f.insecureRegistries, "insecure-registry", nil, "registry host[:port] to use over plain HTTP, repeatable")
	cmd.Flags().StringVar(&f.source, "source", "", "the fedscale-go checkout (default: found upward from the current folder)")
	_ = cmd.MarkFlagDirname("source")
}

// completeCUDA offers the CUDA versions pinned in the checkout.
func (f *flags) completeCUDA(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	src, err := sourceDir(f.source)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	p, err := pins.Load(filepath.Join(src, pins.File))
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	return p.Versions(), cobra.ShellCompDirectiveNoFileComp
}

// progressModes are --progress's values.
var progressModes = []string{"auto", "plain", "tty", "quiet"}

func (f *flags) options(names []string, stderr io.Writer) (build.Options, error) {
	var opts build.Options
	for _, n := range names {
		for _, c := range build.Components {
			if c.Name == n {
				opts.Components = append(opts.Components, c)
			}
		}
	}
	out, err := build.ParseOutput(fromBuildx(f.output))
	if err != nil {
		return opts, err
	}
	for _, sc := range []struct {
		set  bool
		flag string
		kind build.OutputKind
	}{{f.push, "--push", build.OutputRegistry}, {f.load, "--load", build.OutputDocker}} {
		if !sc.set {
			continue
		}
		if out.Kind != build.OutputNone && out.Kind != sc.kind {
			return opts, fmt.Errorf("%s conflicts with --output %s: pick one", sc.flag, f.output)
		}
		out.Kind = sc.kind
	}
	opts.Output = out
	for _, t := range f.tags {
		if strings.ContainsAny(t, "/@") {
			return opts, fmt.Errorf("--tag %q: a tag, not an image reference: the images are %s/fedscale-{aggr,exec}, set the repository with --repo", t, f.repo)
		}
	}
	if opts.Platforms, err = platform.ParseList(f.platforms); err != nil {
		return opts, fmt.Errorf("--platform: %w", err)
	}
	if err := cli.OneOf("--progress", f.progress, progressModes...); err != nil {
		return opts, err
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

// fromBuildx maps buildx's --output forms (type=registry, type=docker,
// type=oci,dest=PATH) onto build.ParseOutput's; others pass unchanged.
func fromBuildx(s string) string {
	if !strings.HasPrefix(s, "type=") {
		return s
	}
	kv := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(part, "=")
		kv[k] = v
	}
	switch kv["type"] {
	case "registry":
		return string(build.OutputRegistry)
	case "docker":
		return string(build.OutputDocker)
	case "oci":
		return "oci=" + kv["dest"]
	}
	return s
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
