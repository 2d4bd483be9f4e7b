// Package release holds the pieces of `make release-dryrun`
// (scripts/release-dryrun.sh) that are Go rather than shell: the pull-back
// check of what fsbuild pushed (the stand-in CUDA base is package standin).
// Its test also keeps .github/workflows/release.yml and the dry-run in step.
package release

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/fedscale/fedscale-go/builder/attest"
	"github.com/fedscale/fedscale-go/builder/build"
	"github.com/fedscale/fedscale-go/builder/sbom"
	"github.com/fedscale/fedscale-go/runtime/variant"
)

// ReleasePlatforms are the platforms every released image carries.
var ReleasePlatforms = []string{"linux/amd64", "linux/arm64"}

// ReadDigests reads fsbuild --print-digest output: one REF@DIGEST a line;
// blank lines and lines starting with # are skipped.
func ReadDigests(r io.Reader) ([]string, error) {
	var refs []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		refs = append(refs, line)
	}
	return refs, sc.Err()
}

// Want is what a release's images must look like.
type Want struct {
	// Images are the repository names (last path element) that must each
	// appear once per variant; default: fsbuild's components.
	Images []string
	// Platforms each index must list, exactly; default ReleasePlatforms.
	Platforms []string
	// CUDABase, when set, is the base reference (NAME@DIGEST) every CUDA
	// image must record as org.opencontainers.image.base.digest.
	CUDABase string
	// Insecure: talk plain HTTP to the registry (loopback registries are
	// plain HTTP anyway).
	Insecure bool
}

// Checked is one verified image.
type Checked struct {
	Ref       string   // as read
	Image     string   // repository name, e.g. fedscale-exec
	Variant   string   // "cpu" or "cuda<VERSION>"
	Version   string   // the tag without its -cuda<VERSION> suffix
	Platforms []string // from the index
	Referrers int      // provenance and SBOM artifacts found
}

// Verify pulls every ref back and checks it: the tag resolves to the digest;
// the digest is an OCI image index of exactly want.Platforms, each an image
// manifest whose config says that platform; per platform one SLSA
// provenance and one SPDX SBOM are attached as referrers; a CUDA image (tag
// ending -cuda<V>) says dev.fedscale.cuda.version=<V> and, with
// want.CUDABase, was built on that base. The set must be complete: every
// image in every variant present (CPU plus at least one CUDA), once, and
// every tag the same version.
func Verify(ctx context.Context, refs []string, want Want, opts ...remote.Option) ([]Checked, error) {
	if len(want.Images) == 0 {
		for _, c := range build.Components {
			want.Images = append(want.Images, c.Image)
		}
	}
	if len(want.Platforms) == 0 {
		want.Platforms = ReleasePlatforms
	}
	var nopts []name.Option
	if want.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	var baseDigest string
	if want.CUDABase != "" {
		d, err := name.NewDigest(want.CUDABase, nopts...)
		if err != nil {
			return nil, fmt.Errorf("CUDA base %q: %w", want.CUDABase, err)
		}
		baseDigest = d.DigestStr()
	}
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)

	var errs []error
	var out []Checked
	seen := map[[2]string]string{}
	variants := map[string]bool{}
	for _, ref := range refs {
		c, err := verifyOne(ref, want, baseDigest, nopts, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ref, err))
			continue
		}
		key := [2]string{c.Image, c.Variant}
		if prev, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("%s: %s %s listed twice (also %s)", ref, c.Image, c.Variant, prev))
		}
		seen[key] = ref
		variants[c.Variant] = true
		out = append(out, c)
	}
	if len(errs) > 0 {
		return out, errors.Join(errs...)
	}
	// One release is one commit: every tag the same version (a CPU tag
	// v1.2.3, its CUDA one v1.2.3-cuda12.4).
	for _, c := range out[1:] {
		if c.Version != out[0].Version {
			errs = append(errs, fmt.Errorf("not one release: %s is version %s, %s is %s", out[0].Ref, out[0].Version, c.Ref, c.Version))
		}
	}
	if !variants[variant.CPU.Name] {
		errs = append(errs, errors.New("no CPU image"))
	}
	if len(variants) < 2 {
		errs = append(errs, errors.New("no CUDA image"))
	}
	vs := make([]string, 0, len(variants))
	for v := range variants {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	for _, img := range want.Images {
		for _, v := range vs {
			if _, ok := seen[[2]string{img, v}]; !ok {
				errs = append(errs, fmt.Errorf("missing %s (%s)", img, v))
			}
		}
	}
	for k, ref := range seen {
		if !slices.Contains(want.Images, k[0]) {
			errs = append(errs, fmt.Errorf("%s: unexpected image %s (want %s)", ref, k[0], strings.Join(want.Images, ", ")))
		}
	}
	return out, errors.Join(errs...)
}

func verifyOne(ref string, want Want, baseDigest string, nopts []name.Option, opts []remote.Option) (Checked, error) {
	c := Checked{Ref: ref}
	dref, err := name.NewDigest(ref, nopts...)
	if err != nil {
		return c, fmt.Errorf("not NAME:TAG@DIGEST: %w", err)
	}
	at := strings.LastIndex(ref, "@")
	tref, err := name.NewTag(ref[:at], append(slices.Clone(nopts), name.StrictValidation)...)
	if err != nil {
		return c, fmt.Errorf("no tag before the digest: %w", err)
	}
	repo := dref.Context().RepositoryStr()
	c.Image = repo[strings.LastIndex(repo, "/")+1:]
	// runtime/variant's table says which variant a tag suffix names.
	v, cuda, release := variant.FromTag(tref.TagStr())
	c.Variant, c.Version = v.Name+cuda, release

	// The tag must name the digest fsbuild printed.
	head, err := remote.Head(tref, opts...)
	if err != nil {
		return c, fmt.Errorf("resolving the tag: %w", err)
	}
	if head.Digest.String() != dref.DigestStr() {
		return c, fmt.Errorf("tag %s points at %s, not the printed digest", tref.TagStr(), head.Digest)
	}
	// Fetching by digest checks the content hashes to it.
	desc, err := remote.Get(dref, opts...)
	if err != nil {
		return c, fmt.Errorf("pulling: %w", err)
	}
	if desc.MediaType != types.OCIImageIndex {
		return c, fmt.Errorf("media type %s, want an OCI image index (%s)", desc.MediaType, types.OCIImageIndex)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return c, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return c, err
	}
	for _, d := range im.Manifests {
		if d.Platform == nil {
			return c, fmt.Errorf("index entry %s has no platform (an in-index attestation?)", d.Digest)
		}
		p := d.Platform.String()
		if d.MediaType != types.OCIManifestSchema1 && d.MediaType != types.DockerManifestSchema2 {
			return c, fmt.Errorf("%s: entry media type %s, want an image manifest", p, d.MediaType)
		}
		if slices.Contains(c.Platforms, p) {
			return c, fmt.Errorf("platform %s listed twice", p)
		}
		c.Platforms = append(c.Platforms, p)
		img, err := idx.Image(d.Digest)
		if err != nil {
			return c, fmt.Errorf("%s: %w", p, err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return c, fmt.Errorf("%s: config: %w", p, err)
		}
		if got := (&v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}).String(); got != p {
			return c, fmt.Errorf("%s: the image's config says %s", p, got)
		}
		for k, want := range v.Labels(cuda) {
			if got := cfg.Config.Labels[k]; got != want {
				return c, fmt.Errorf("%s: label %s=%q, want %q", p, k, got, want)
			}
		}
	}
	got, wantP := slices.Sorted(slices.Values(c.Platforms)), slices.Sorted(slices.Values(want.Platforms))
	if !slices.Equal(got, wantP) {
		return c, fmt.Errorf("platforms %v, want exactly %v", got, wantP)
	}
	if cuda != "" && baseDigest != "" {
		if b := im.Annotations["org.opencontainers.image.base.digest"]; b != baseDigest {
			return c, fmt.Errorf("base digest %q, want the CUDA base %s", b, baseDigest)
		}
	}

	// Provenance and SBOM: per platform one of each, subject the index.
	rl, err := remote.Referrers(dref, opts...)
	if err != nil {
		return c, fmt.Errorf("listing referrers: %w", err)
	}
	rm, err := rl.IndexManifest()
	if err != nil {
		return c, err
	}
	count := map[string]int{}
	for _, d := range rm.Manifests {
		art, err := remote.Image(dref.Context().Digest(d.Digest.String()), opts...)
		if err != nil {
			return c, fmt.Errorf("referrer %s: %w", d.Digest, err)
		}
		m, err := art.Manifest()
		if err != nil {
			return c, fmt.Errorf("referrer %s: %w", d.Digest, err)
		}
		if m.Subject == nil || m.Subject.Digest.String() != dref.DigestStr() {
			return c, fmt.Errorf("referrer %s: subject %v, want the index", d.Digest, m.Subject)
		}
		// The manifest's artifactType, not the listing's (go-containerregistry's
		// registry lists the config media type there).
		count[m.ArtifactType+" "+m.Annotations["dev.fedscale.manifest.platform"]]++
		c.Referrers++
	}
	for _, p := range want.Platforms {
		for _, kind := range []struct{ what, typ string }{{"provenance", string(attest.InTotoMediaType)}, {"SBOM", sbom.MediaType}} {
			if n := count[kind.typ+" "+p]; n != 1 {
				return c, fmt.Errorf("%d %s referrers for %s, want 1", n, kind.what, p)
			}
		}
	}
	return c, nil
}
