// Command release runs the steps of a release that are not GitHub plumbing
// (package internal/release says what they build), so that
// .github/workflows/release.yml and `make release-dryrun` run the very same
// code. scripts/release.sh and scripts/release-dryrun.sh exec it from the
// repository root:
//
//	release images OUT [FSBUILD FLAG...]   # release.Builds with fsbuild; OUT/<set>.digests, OUT/digests.txt (printed)
//	release binaries OUT                   # release.BinaryTargets as `make build` builds; OUT/SHA256SUMS
//	release notes OUT                      # OUT/notes.md from OUT/digests.txt
//	release sign OUT                       # cosign sign --yes NAME@DIGEST per line of OUT/digests.txt
//	release dryrun [--plan]                # the workflow against a local registry, then every image pulled back
//
// The FLAGs of images say where the images go (--repo docker.io/fedscale;
// the dry-run a loopback registry). Environment: FSBUILD (the fsbuild
// command; default: ./builder/cmd/fsbuild built with the Makefile's
// LDFLAGS, so its SBOMs name the version), RELEASE_CUDA_BASE (dry-run only:
// the CUDA calls' --base), GO (default go), GITHUB_SERVER_URL,
// GITHUB_REPOSITORY and GITHUB_REF_NAME (the notes), RELEASE_DRYRUN_OUT
// (default build/release-dryrun), RELEASE_DRYRUN_BINARIES=0 (the dry-run
// skips the binaries), BUILDKIT_HOST.
//
// Progress and the commands' own output go to stderr; stdout carries what
// a step produced (digests, SHA256SUMS, notes).
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fedscale/fedscale-go/internal/release"
)

var errUsage = errors.New("usage: release images OUT [FSBUILD FLAG...] | binaries OUT | notes OUT | sign OUT | dryrun [--plan]")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if errors.Is(err, errUsage) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	if args[0] == "dryrun" {
		switch {
		case len(args) == 1:
			return dryRun(ctx, false, stdout)
		case len(args) == 2 && args[1] == "--plan":
			return dryRun(ctx, true, stdout)
		}
		return errUsage
	}
	if len(args) < 2 || args[1] == "" {
		return errUsage
	}
	sub, out, rest := args[0], args[1], args[2:]
	if sub == "images" {
		return images(ctx, out, rest, os.Getenv("RELEASE_CUDA_BASE"), false, stdout)
	}
	if len(rest) > 0 {
		return errUsage
	}
	switch sub {
	case "binaries":
		return binaries(ctx, out, stdout)
	case "notes":
		return notes(ctx, out, stdout)
	case "sign":
		return sign(ctx, out)
	}
	return errUsage
}

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, "release: "+format+"\n", a...) }

// command runs argv with its output on stderr.
func command(ctx context.Context, env []string, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return nil
}

// output runs argv and returns its stdout, trimmed.
func output(ctx context.Context, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

func goCmd() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// makefileLDFLAGS reads the Makefile's own LDFLAGS (version stamp
// included), so what a release builds is built exactly as `make build`.
func makefileLDFLAGS(ctx context.Context) (string, error) {
	ld, err := output(ctx, "make", "-s", "--no-print-directory",
		"--eval", "release-print-ldflags: ; @echo '$(LDFLAGS)'", "release-print-ldflags")
	if err != nil {
		return "", err
	}
	if ld == "" {
		return "", errors.New("the Makefile's LDFLAGS are empty")
	}
	return ld, nil
}

// goBuild builds pkg for goos/goarch ("" for this machine) as `make build`.
func goBuild(ctx context.Context, ldflags, goos, goarch, out, pkg string) error {
	env := []string{"CGO_ENABLED=0"}
	if goos != "" {
		env = append(env, "GOOS="+goos, "GOARCH="+goarch)
	}
	return command(ctx, env, goCmd(), "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
}

// images makes the release's fsbuild calls with where (the FLAGs) added.
// plan without $FSBUILD prints the calls instead of making them.
func images(ctx context.Context, out string, where []string, cudaBase string, plan bool, stdout io.Writer) error {
	fsbuild := strings.Fields(os.Getenv("FSBUILD"))
	if len(fsbuild) == 0 && plan {
		for _, b := range release.Builds() {
			fmt.Fprintln(stdout, "fsbuild", strings.Join(b.Argv(cudaBase, where, filepath.Join(out, b.Set+".digests")), " "))
		}
		return nil
	}
	if len(fsbuild) == 0 {
		ld, err := makefileLDFLAGS(ctx)
		if err != nil {
			return err
		}
		tmp, err := os.MkdirTemp("", "release-fsbuild-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		logf("building fsbuild for this machine")
		if err := goBuild(ctx, ld, "", "", filepath.Join(tmp, "fsbuild"), "./builder/cmd/fsbuild"); err != nil {
			return err
		}
		fsbuild = []string{filepath.Join(tmp, "fsbuild")}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// No digests of an earlier run may pass for this one's.
	if err := os.Remove(filepath.Join(out, "digests.txt")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var all bytes.Buffer
	for _, b := range release.Builds() {
		file := filepath.Join(out, b.Set+".digests")
		if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		argv := b.Argv(cudaBase, where, file)
		logf("fsbuild %s", strings.Join(argv, " "))
		start := time.Now()
		if err := command(ctx, nil, append(fsbuild, argv...)...); err != nil {
			return err
		}
		got, err := os.ReadFile(file)
		if err != nil || len(got) == 0 {
			return fmt.Errorf("fsbuild wrote no digests to %s", file)
		}
		logf("%s images done in %.0f s", b.Set, time.Since(start).Seconds())
		all.Write(got)
	}
	if err := os.WriteFile(filepath.Join(out, "digests.txt"), all.Bytes(), 0o644); err != nil {
		return err
	}
	logf("pushed:")
	_, err := stdout.Write(all.Bytes())
	return err
}

// binaries builds release.BinaryTargets into out and writes SHA256SUMS.
func binaries(ctx context.Context, out string, stdout io.Writer) error {
	ld, err := makefileLDFLAGS(ctx)
	if err != nil {
		return err
	}
	logf("ldflags: %s", ld)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var files []string
	for _, t := range release.BinaryTargets() {
		logf("building %s for %s/%s", t.Name, t.OS, t.Arch)
		if err := goBuild(ctx, ld, t.OS, t.Arch, filepath.Join(out, t.File), t.Package); err != nil {
			return err
		}
		files = append(files, t.File)
	}
	return writeAndPrint(filepath.Join(out, "SHA256SUMS"), stdout, func(w io.Writer) error {
		return release.WriteSums(w, out, files)
	})
}

// writeAndPrint writes what write makes to path and to stdout.
func writeAndPrint(path string, stdout io.Writer, write func(io.Writer) error) error {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return err
	}
	_, err := stdout.Write(b.Bytes())
	return err
}

func pushed(out string) ([]release.Pushed, error) {
	p, err := release.ReadPushed(filepath.Join(out, "digests.txt"))
	if err != nil {
		return nil, fmt.Errorf("%w (run the images step first)", err)
	}
	return p, nil
}

// notes writes OUT/notes.md.
func notes(ctx context.Context, out string, stdout io.Writer) error {
	imgs, err := pushed(out)
	if err != nil {
		return err
	}
	info := release.NotesInfo{Server: os.Getenv("GITHUB_SERVER_URL"), Repo: os.Getenv("GITHUB_REPOSITORY"), Version: os.Getenv("GITHUB_REF_NAME")}
	if info.Server == "" {
		info.Server = "https://github.com"
	}
	if info.Repo == "" {
		info.Repo = "fedscale/fedscale-go"
	}
	if info.Version == "" {
		info.Version, err = output(ctx, "git", "describe", "--tags", "--always", "--abbrev=12", "--match", "v[0-9]*")
		if err != nil || info.Version == "" {
			info.Version = "dev"
		}
	}
	return writeAndPrint(filepath.Join(out, "notes.md"), stdout, func(w io.Writer) error {
		return release.WriteNotes(w, imgs, info)
	})
}

// sign signs every pushed image by digest with cosign (keyless: the
// workflow's OIDC token).
func sign(ctx context.Context, out string) error {
	imgs, err := pushed(out)
	if err != nil {
		return err
	}
	for _, p := range imgs {
		logf("signing %s", p.ByDigest())
		if err := command(ctx, nil, "cosign", "sign", "--yes", p.ByDigest()); err != nil {
			return err
		}
	}
	logf("signed %d images", len(imgs))
	return nil
}
