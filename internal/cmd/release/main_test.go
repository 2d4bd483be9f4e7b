package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"images"}, {"notes", ""}, {"notes", "out", "extra"}, {"publish", "out"}, {"dryrun", "--apply"}} {
		if err := run(context.Background(), args, &bytes.Buffer{}); !errors.Is(err, errUsage) {
			t.Errorf("release %q: %v, want the usage", args, err)
		}
	}
}

// TestNotesAndLDFLAGS: the notes step from a digests file, and the
// Makefile's LDFLAGS as make expands them (the version stamp included).
func TestNotesAndLDFLAGS(t *testing.T) {
	t.Chdir("../../..")
	out := t.TempDir()
	d := "sha256:" + strings.Repeat("a", 64)
	if err := os.WriteFile(filepath.Join(out, "digests.txt"), []byte("r:5000/fedscale/fedscale-aggr:v9@"+d+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_REF_NAME", "v9")
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"notes", out}, &stdout); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(out, "notes.md"))
	if err != nil || !bytes.Equal(file, stdout.Bytes()) || !strings.Contains(stdout.String(), "r:5000/fedscale/fedscale-aggr@"+d) {
		t.Errorf("notes.md (%v):\n%s\nprinted:\n%s", err, file, stdout.String())
	}
	if err := run(context.Background(), []string{"sign", t.TempDir()}, &stdout); err == nil || !strings.Contains(err.Error(), "run the images step first") {
		t.Errorf("sign without digests: %v", err)
	}
	ld, err := makefileLDFLAGS(context.Background())
	if err != nil || !strings.Contains(ld, "-X github.com/fedscale/fedscale-go/runtime/version.Version=") || strings.Contains(ld, "$(") {
		t.Fatalf("makefileLDFLAGS = %q, %v", ld, err)
	}
	// A release binary is built so: for another platform, static, with
	// those flags (a small command stands in for fsbuild and launcher).
	bin := filepath.Join(t.TempDir(), "goldendiff-linux-arm64")
	if err := goBuild(context.Background(), ld, "linux", "arm64", bin, "./internal/cmd/goldendiff"); err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command(goCmd(), "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	// (-trimpath leaves -ldflags out of the build info.)
	for _, want := range []string{"GOARCH=arm64", "CGO_ENABLED=0", "-trimpath=true"} {
		if !strings.Contains(string(info), want) {
			t.Errorf("go version -m %s lacks %q:\n%s", bin, want, info)
		}
	}
}
