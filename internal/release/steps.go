package release

// The steps of a release that are not GitHub plumbing (internal/cmd/release,
// run by scripts/release.sh from .github/workflows/release.yml and by
// `make release-dryrun`): what fsbuild is asked to build, which binaries are
// attached, their checksums, what is signed and the release notes. Both the
// workflow and the dry-run read them from here, so they cannot drift.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fedscale/fedscale-go/runtime/variant"
	"github.com/fedscale/fedscale-go/runtime/version"
)

// CUDAVersion is the CUDA version of the release's CUDA images (one of
// dockerfiles/cuda-bases.json's): runtime/variant's CUDA row, since the
// launcher's use_cuda jobs run those images by default.
const CUDAVersion = version.CUDA

// Build is one fsbuild call of a release.
type Build struct {
	Set  string   // names the call's digest file, OUT/<Set>.digests
	Args []string // fsbuild's arguments, before where-to flags
	CUDA bool     // builds on a CUDA base (the dry-run gives a stand-in --base)
}

// Builds are the release's fsbuild calls, in order: both images in every
// variant of runtime/variant's table (the CPU one first), each one index of
// ReleasePlatforms, pushed. A versioned variant is asked for with
// --<name> <its release version>.
func Builds() []Build {
	common := []string{"all", "--push", "--platform", strings.Join(ReleasePlatforms, ","), "--progress", "plain"}
	var out []Build
	for _, v := range variant.All {
		b := Build{Set: v.Name, Args: slices.Clone(common), CUDA: v.BasePins != ""}
		if v.Versioned() {
			b.Args = append(b.Args, "--"+v.Name, v.Release)
		}
		out = append(out, b)
	}
	return out
}

// Argv is b's whole fsbuild command line: its Args, --base cudaBase on a
// CUDA build when cudaBase is set, the caller's where-to flags, and
// --print-digest digestFile.
func (b Build) Argv(cudaBase string, where []string, digestFile string) []string {
	argv := slices.Clone(b.Args)
	if b.CUDA && cudaBase != "" {
		argv = append(argv, "--base", cudaBase)
	}
	argv = append(argv, where...)
	return append(argv, "--print-digest", digestFile)
}

// Binary is a command attached to a GitHub release.
type Binary struct {
	Name    string // file name prefix
	Package string // its main package, relative to the repository root
}

// Binaries are the commands a release attaches, for each of
// BinaryPlatforms.
var (
	Binaries        = []Binary{{"fsbuild", "./builder/cmd/fsbuild"}, {"launcher", "./launcher/cmd/launcher"}}
	BinaryPlatforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}
)

// BinaryTarget is one binary file of a release.
type BinaryTarget struct {
	Binary
	OS, Arch string
	File     string // <name>-<os>-<arch>
}

// BinaryTargets lists every binary file of a release, platform by platform.
func BinaryTargets() []BinaryTarget {
	var out []BinaryTarget
	for _, p := range BinaryPlatforms {
		goos, arch, _ := strings.Cut(p, "/")
		for _, b := range Binaries {
			out = append(out, BinaryTarget{Binary: b, OS: goos, Arch: arch, File: b.Name + "-" + goos + "-" + arch})
		}
	}
	return out
}

// WriteSums writes sha256sum's format (hash, two spaces, name) for the
// files of dir, in the order given: what `sha256sum -c SHA256SUMS` checks.
func WriteSums(w io.Writer, dir string, files []string) error {
	for _, name := range files {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if _, err := fmt.Fprintf(w, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), name); err != nil {
			return err
		}
	}
	return nil
}

// Pushed is one line of fsbuild --print-digest: NAME[:TAG]@DIGEST.
type Pushed struct {
	Name, Tag, Digest string
}

// ParsePushed splits a REF@DIGEST line. The tag is what follows the last
// ':' of the last path element (a registry's :port is not a tag).
func ParsePushed(ref string) (Pushed, error) {
	at := strings.LastIndexByte(ref, '@')
	if at <= 0 || !strings.Contains(ref[at+1:], ":") {
		return Pushed{}, fmt.Errorf("%q is not NAME:TAG@DIGEST", ref)
	}
	p := Pushed{Name: ref[:at], Digest: ref[at+1:]}
	if i := strings.LastIndexByte(p.Name, ':'); i > strings.LastIndexByte(p.Name, '/') {
		p.Name, p.Tag = p.Name[:i], p.Name[i+1:]
	}
	return p, nil
}

// ByDigest is NAME@DIGEST: what to pull and sign, never a tag that can move.
func (p Pushed) ByDigest() string { return p.Name + "@" + p.Digest }

// ReadPushed reads a digests file (ReadDigests) and parses every line.
func ReadPushed(path string) ([]Pushed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	refs, err := ReadDigests(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%s: no REF@DIGEST lines", path)
	}
	out := make([]Pushed, 0, len(refs))
	for _, r := range refs {
		p, err := ParsePushed(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// NotesInfo is where a release comes from.
type NotesInfo struct {
	Server  string // e.g. https://github.com
	Repo    string // owner/name
	Version string // the release's tag
}

// WriteNotes writes the release notes: the images with their digests,
// how to pull them by digest, verify their signatures and rebuild them,
// and the binaries.
func WriteNotes(w io.Writer, images []Pushed, info NotesInfo) error {
	var b strings.Builder
	b.WriteString(`## Container images

Each is one index of linux/amd64 and linux/arm64, built by fsbuild with SLSA
provenance and an SPDX SBOM per platform attached as OCI referrers, and signed
with cosign (keyless: this repository's release workflow).

| image | tag | digest |
|---|---|---|
`)
	for _, p := range images {
		fmt.Fprintf(&b, "| `%s` | `%s` | `%s` |\n", p.Name, p.Tag, p.Digest)
	}
	b.WriteString("\nPull by digest:\n\n```\n")
	for _, p := range images {
		b.WriteString(p.ByDigest() + "\n")
	}
	fmt.Fprintf(&b, "```\n\nVerify a signature:\n\n```sh\ncosign verify \\\n"+
		"  --certificate-identity '%s/%s/.github/workflows/release.yml@refs/tags/%s' \\\n"+
		"  --certificate-oidc-issuer https://token.actions.githubusercontent.com \\\n"+
		"  NAME@DIGEST\n```\n\n", info.Server, info.Repo, info.Version)
	fmt.Fprintf(&b, "To rebuild and compare: check out `%s` and run\n"+
		"`fsbuild all --output oci=/tmp/verify --platform %s` (see the README).\n\n", info.Version, strings.Join(ReleasePlatforms, ","))
	b.WriteString("## Binaries\n\n`fsbuild` and `launcher` for linux and darwin, amd64 and arm64; check them with\n" +
		"`sha256sum -c SHA256SUMS --ignore-missing`.\n")
	_, err := io.WriteString(w, b.String())
	return err
}
