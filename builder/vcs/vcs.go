// Package vcs reads what fsbuild needs to know about the source checkout from
// git: the commit, a human version (git describe), the commit time that
// becomes SOURCE_DATE_EPOCH, and whether the work tree has uncommitted changes.
package vcs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Info describes the checkout an image is built from.
type Info struct {
	Commit   string    // full hash of HEAD
	Describe string    // git describe --tags --always (12-hex abbreviation)
	Time     time.Time // committer time of HEAD
	Dirty    bool      // tracked or untracked-but-not-ignored changes exist
	Remote   string    // URL of the "origin" remote, "" when there is none
}

// Short is the 12-hex abbreviation of the commit.
func (i Info) Short() string {
	if len(i.Commit) > 12 {
		return i.Commit[:12]
	}
	return i.Commit
}

// Tags are the default image tags: the describe output (with "-dirty" when
// the tree is dirty, so a tag never claims a commit it does not match), plus
// the bare commit when describe says more than the commit.
func (i Info) Tags() []string {
	d := SanitizeTag(i.Describe)
	if i.Dirty {
		d += "-dirty"
	}
	tags := []string{d}
	if i.Describe != i.Short() && !i.Dirty {
		tags = append(tags, i.Short())
	}
	return tags
}

// Read inspects the git checkout at dir.
func Read(ctx context.Context, dir string) (Info, error) {
	var info Info
	var err error
	if info.Commit, err = git(ctx, dir, "rev-parse", "HEAD"); err != nil {
		return Info{}, err
	}
	if info.Describe, err = git(ctx, dir, "describe", "--tags", "--always", "--abbrev=12", "--match", "v[0-9]*"); err != nil {
		return Info{}, err
	}
	ct, err := git(ctx, dir, "log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return Info{}, err
	}
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return Info{}, fmt.Errorf("git log: commit time %q: %w", ct, err)
	}
	info.Time = time.Unix(sec, 0).UTC()
	status, err := git(ctx, dir, "status", "--porcelain", "--untracked-files=normal")
	if err != nil {
		return Info{}, err
	}
	info.Dirty = status != ""
	// A missing remote is normal for a local clone: not an error.
	info.Remote, _ = git(ctx, dir, "remote", "get-url", "origin")
	return info, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("git %s in %s: %s", strings.Join(args, " "), dir, strings.TrimSpace(stderr.String()))
		}
		return "", fmt.Errorf("git %s in %s: %w (is git installed?)", strings.Join(args, " "), dir, err)
	}
	return strings.TrimSpace(stdout.String()), nil
}

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ValidTag reports whether s is a valid OCI tag.
func ValidTag(s string) bool { return tagRE.MatchString(s) }

// SanitizeTag maps a describe string onto the OCI tag alphabet.
func SanitizeTag(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || c == '.' || c == '-' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		if !ok {
			b[i] = '-'
		}
	}
	s = strings.TrimLeft(string(b), ".-")
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}
