package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newCommand(&out, &out)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// dirtyCheckout is a throwaway git repository that looks like a source tree
// (go.mod, dockerfiles/) and has an uncommitted file.
func dirtyCheckout(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	for _, f := range []string{"go.mod", "dockerfiles/Dockerfile.exec"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o644)
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "x"}} {
		c := exec.Command("git", args...)
		c.Dir = dir
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	os.WriteFile(filepath.Join(dir, "new.go"), []byte("package x\n"), 0o644)
	return dir
}

func TestNoArgsPrintsHelp(t *testing.T) {
	out, err := run(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fsbuild aggr|exec|all", "--push", "Examples:", "fsbuild exec --cuda 12.4"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

// TestBadInput: each mistake gets one error naming the flag and what is
// expected, before anything is built or pushed.
func TestBadInput(t *testing.T) {
	dirty := dirtyCheckout(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown platform", []string{"exec", "--platform", "linux/amd64,windows/amd64"}, `--platform: platform "windows/amd64" is not supported (supported: linux/amd64, linux/arm64`},
		{"unknown CUDA version", []string{"exec", "--cuda", "9.9"}, "--cuda 9.9: unknown CUDA version (known: 11.8, 12.4, 12.6, 12.8"},
		{"base without digest on push", []string{"exec", "--push", "--allow-dirty", "--base", "example.com/distroless/static:nonroot"}, "--base example.com/distroless/static:nonroot has no digest"},
		{"unpinned CUDA base on push", []string{"exec", "--push", "--allow-dirty", "--cuda", "12.4"}, "has no digest"},
		{"dirty tree on push", []string{"exec", "--push", "--source", dirty}, "has uncommitted changes, so a pushed tag would not match commit"},
		{"push and oci output", []string{"exec", "--push", "--output", "oci=/tmp/x"}, "--push conflicts with --output oci=/tmp/x"},
		{"unknown output", []string{"exec", "--output", "tarball"}, `--output "tarball": want registry, docker or oci=PATH`},
		{"empty oci path", []string{"exec", "--output", "oci="}, "--output oci=PATH: PATH is empty"},
		{"bad progress", []string{"exec", "--progress", "fancy"}, `--progress "fancy": want auto, plain, tty or quiet`},
		{"bad tag", []string{"exec", "--tag", "not a tag"}, `--tag "not a tag"`},
		{"bad repo", []string{"exec", "--repo", "Upper/Case"}, `--repo "Upper/Case"`},
		{"docker output, two platforms", []string{"exec", "--output", "docker", "--platform", "linux/amd64,linux/arm64"}, "--output docker loads one platform"},
		{"no BuildKit", []string{"exec", "--builder", "unix:///nonexistent/buildkitd.sock"}, "no BuildKit daemon answers at unix:///nonexistent/buildkitd.sock"},
		{"not a checkout", []string{"exec", "--source", t.TempDir()}, "no go.mod"},
		{"extra argument", []string{"exec", "now"}, `unknown command "now"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("fsbuild %s: error %v, want it to contain %q", strings.Join(tc.args, " "), err, tc.want)
			}
			if tc.name == "no BuildKit" && !strings.Contains(err.Error(), "scripts/buildkitd.sh start") {
				t.Errorf("the error does not say how to start BuildKit: %v", err)
			}
		})
	}
}
