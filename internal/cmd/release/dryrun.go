package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fedscale/fedscale-go/internal/standin"
)

// dryRun is `make release-dryrun`: release.yml's steps on this machine
// against a local registry instead of Docker Hub, then every image pulled
// back and checked:
//
//  1. a local OCI registry (internal/cmd/devregistry: referrers API on,
//     127.0.0.1:<free port>, stopped on return);
//  2. buildkitd (scripts/buildkitd.sh start, unless $BUILDKIT_HOST is set);
//  3. a two-platform stand-in for nvidia/cuda pushed there
//     (internal/cmd/standinbase), since Docker Hub is out of reach;
//  4. the images step: the release's own fsbuild calls with only where-to
//     changed (--repo 127.0.0.1:PORT/fedscale --insecure-registry
//     127.0.0.1:PORT), the stand-in as the CUDA --base, and --allow-dirty on a
//     work tree with uncommitted changes (a fresh clone has none);
//  5. internal/cmd/verifyimages on what was pushed;
//  6. the binaries (unless RELEASE_DRYRUN_BINARIES=0) and notes steps.
//
// Not run: `fsbuild pin --check` (needs Docker Hub), the registry login,
// cosign (needs the workflow's OIDC token), the GitHub release. plan makes
// only the fsbuild calls (through $FSBUILD when set, else printed), with a
// placeholder registry and base: internal/release's test compares them with
// release.yml's.
func dryRun(ctx context.Context, plan bool, stdout io.Writer) error {
	t0 := time.Now()
	step := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "==== release-dryrun [%.0f s]: %s\n", time.Since(t0).Seconds(), fmt.Sprintf(format, a...))
	}
	out := os.Getenv("RELEASE_DRYRUN_OUT")
	if out == "" {
		out = filepath.Join("build", "release-dryrun")
	}
	work, err := os.MkdirTemp("", "release-dryrun.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	var addr, base, bin string
	if plan {
		addr = "127.0.0.1:5000"
		base = addr + "/nvidia/cuda:" + standin.Tag + "@sha256:" + strings.Repeat("0", 64)
		out = filepath.Join(work, "out")
	} else {
		step("building the dry-run's helpers (internal/cmd/devregistry, standinbase, verifyimages)")
		bin = filepath.Join(work, "bin")
		if err := command(ctx, nil, goCmd(), "build", "-o", bin+"/",
			"./internal/cmd/devregistry", "./internal/cmd/standinbase", "./internal/cmd/verifyimages"); err != nil {
			return err
		}
		step("starting a local registry")
		stopRegistry, a, err := startRegistry(ctx, bin, work)
		if err != nil {
			return err
		}
		defer stopRegistry()
		addr = a

		step("ensuring buildkitd")
		if os.Getenv("BUILDKIT_HOST") == "" {
			host, err := output(ctx, filepath.Join("scripts", "buildkitd.sh"), "start")
			if err != nil {
				return err
			}
			lines := strings.Split(host, "\n")
			os.Setenv("BUILDKIT_HOST", lines[len(lines)-1])
		}
		fmt.Fprintln(os.Stderr, "buildkitd:", os.Getenv("BUILDKIT_HOST"))

		step("pushing the stand-in CUDA base to %s", addr)
		if base, err = output(ctx, filepath.Join(bin, "standinbase"), "--registry", addr); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "stand-in base:", base)
	}

	// Where the images go: the only fsbuild flags that differ from release.yml's.
	where := []string{"--repo", addr + "/fedscale", "--insecure-registry", addr}
	dirty, err := output(ctx, "git", "status", "--porcelain", "--untracked-files=normal")
	if err != nil {
		return err
	}
	if dirty != "" {
		// fsbuild refuses to push a dirty tree (the tag would lie); a release
		// runs on a clean tag checkout, so this happens only here.
		fmt.Fprintln(os.Stderr, "release-dryrun: the work tree has uncommitted changes: adding --allow-dirty (tags get -dirty)")
		where = append(where, "--allow-dirty")
	}

	step("images: fsbuild, both images, linux/amd64+arm64, CPU and CUDA")
	if err := images(ctx, out, where, base, plan, planOut(plan, stdout)); err != nil {
		return err
	}
	if plan {
		return nil
	}
	digests := filepath.Join(out, "digests.txt")
	step("pulling the images back from %s and checking them", addr)
	if err := command(ctx, nil, filepath.Join(bin, "verifyimages"), "--insecure", "--cuda-base", base, digests); err != nil {
		return err
	}
	if os.Getenv("RELEASE_DRYRUN_BINARIES") != "0" {
		step("binaries: fsbuild and launcher, linux/darwin amd64/arm64, SHA256SUMS")
		if err := binaries(ctx, filepath.Join(out, "dist"), io.Discard); err != nil {
			return err
		}
	}
	step("notes")
	if err := notes(ctx, out, io.Discard); err != nil {
		return err
	}
	step("done: release notes in %s, binaries in %s; pushed and verified:", filepath.Join(out, "notes.md"), filepath.Join(out, "dist"))
	d, err := os.ReadFile(digests)
	if err != nil {
		return err
	}
	_, err = stdout.Write(d)
	return err
}

// planOut: a plan prints its calls; a real run's digests are printed at the end.
func planOut(plan bool, stdout io.Writer) io.Writer {
	if plan {
		return stdout
	}
	return io.Discard
}

// startRegistry starts devregistry and waits (30 s at most) for the
// address it writes; stop ends it.
func startRegistry(ctx context.Context, bin, work string) (stop func(), addr string, err error) {
	addrFile := filepath.Join(work, "registry.addr")
	cmd := exec.Command(filepath.Join(bin, "devregistry"), "--addr-file", addrFile, "--blobs", filepath.Join(work, "blobs"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting the registry: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return stop, strings.TrimSpace(string(b)), nil
		}
		select {
		case err := <-exited:
			exited <- err // stop may still be called
			return nil, "", fmt.Errorf("the registry exited during start-up: %v", err)
		case <-deadline.C:
			stop()
			return nil, "", errors.New("the registry did not start in 30 s")
		case <-ctx.Done():
			stop()
			return nil, "", ctx.Err()
		case <-tick.C:
		}
	}
}
