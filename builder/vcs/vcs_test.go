package vcs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func run(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func TestRead(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	run(t, dir, "init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "add", "a")
	run(t, dir, "commit", "-q", "-m", "one")
	ctx := context.Background()

	info, err := Read(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Dirty || info.Time.Unix() != 1767323045 || info.Describe != info.Short() || len(info.Commit) != 40 {
		t.Fatalf("clean untagged: %+v", info)
	}
	if got := info.Tags(); len(got) != 1 || got[0] != info.Short() {
		t.Errorf("Tags = %v", got)
	}

	run(t, dir, "tag", "v1.2.3")
	info, _ = Read(ctx, dir)
	if got := info.Tags(); len(got) != 2 || got[0] != "v1.2.3" || got[1] != info.Short() {
		t.Errorf("tagged Tags = %v", got)
	}

	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	info, _ = Read(ctx, dir)
	if !info.Dirty {
		t.Error("untracked file: not dirty")
	}
	if got := info.Tags(); len(got) != 1 || got[0] != "v1.2.3-dirty" {
		t.Errorf("dirty Tags = %v", got)
	}

	if _, err := Read(ctx, t.TempDir()); err == nil {
		t.Error("Read outside a git checkout: no error")
	}
}

func TestTags(t *testing.T) {
	for in, want := range map[string]string{
		"v1.0.0-3-gabcdef123456": "v1.0.0-3-gabcdef123456",
		"feature/x+y":            "feature-x-y",
		".hidden":                "hidden",
	} {
		if got := SanitizeTag(in); got != want || !ValidTag(got) {
			t.Errorf("SanitizeTag(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "-x", "a b", "a/b"} {
		if ValidTag(bad) {
			t.Errorf("ValidTag(%q) = true", bad)
		}
	}
}
