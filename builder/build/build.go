// Package build is fsbuild's pipeline: it compiles the runtime for each
// platform, stages the layer, has BuildKit assemble the image, moves the
// attestations out of the index into referrers (with an SBOM made from the
// binaries' Go build info), and hands the result to package publish.
//
// Build and Publish are separate so that nothing is pushed until every
// requested image has been built.
package build

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/moby/buildkit/util/progress/progressui"

	"github.com/fedscale/fedscale-go/builder/attest"
	"github.com/fedscale/fedscale-go/builder/buildkit"
	"github.com/fedscale/fedscale-go/builder/gobuild"
	"github.com/fedscale/fedscale-go/builder/pins"
	"github.com/fedscale/fedscale-go/builder/platform"
	"github.com/fedscale/fedscale-go/builder/publish"
	"github.com/fedscale/fedscale-go/builder/rootfs"
	"github.com/fedscale/fedscale-go/builder/sbom"
	"github.com/fedscale/fedscale-go/builder/vcs"
	"github.com/fedscale/fedscale-go/runtime/variant"
	"github.com/fedscale/fedscale-go/runtime/version"
)

// SourceURL is the project's public source, written into the image labels
// (a constant rather than the clone's remote, which may be a local path).
const SourceURL = "https://github.com/fedscale/fedscale-go"

// Component is one image fsbuild knows how to make.
type Component struct {
	Name       string // command-line name: aggr or exec
	Image      string // repository name under --repo
	Binary     string
	Package    string // import path relative to the module root
	Dockerfile string // under dockerfiles/
}

// Components are the images of the runtime, in build order.
var Components = []Component{
	{Name: "aggr", Image: "fedscale-aggr", Binary: "aggregator", Package: "./runtime/cmd/aggregator", Dockerfile: "Dockerfile.aggr"},
	{Name: "exec", Image: "fedscale-exec", Binary: "executor", Package: "./runtime/cmd/executor", Dockerfile: "Dockerfile.exec"},
}

// OutputKind is where images go.
type OutputKind string

// The outputs fsbuild supports.
const (
	OutputNone     OutputKind = ""         // build only
	OutputRegistry OutputKind = "registry" // push
	OutputOCI      OutputKind = "oci"      // an OCI layout folder
	OutputDocker   OutputKind = "docker"   // load into the Docker engine
)

// Output is a parsed --output value.
type Output struct {
	Kind OutputKind
	Path string // for OutputOCI
}

// ParseOutput reads --output: registry, docker, or oci=PATH.
func ParseOutput(s string) (Output, error) {
	switch {
	case s == "":
		return Output{}, nil
	case s == string(OutputRegistry):
		return Output{Kind: OutputRegistry}, nil
	case s == string(OutputDocker):
		return Output{Kind: OutputDocker}, nil
	case strings.HasPrefix(s, "oci="):
		p := strings.TrimPrefix(s, "oci=")
		if p == "" {
			return Output{}, fmt.Errorf("--output oci=PATH: PATH is empty")
		}
		return Output{Kind: OutputOCI, Path: p}, nil
	}
	return Output{}, fmt.Errorf("--output %q: want registry, docker or oci=PATH", s)
}

// Options is everything one fsbuild run needs.
type Options struct {
	Components []Component
	SourceDir  string // repository root (go.mod, dockerfiles/)
	Repo       string // e.g. fedscale or 127.0.0.1:5000/fedscale
	Tags       []string
	Platforms  []platform.Platform
	CUDA       string // CUDA version, "" for the CPU image
	Base       string // base image override
	Output     Output
	AllowDirty bool
	// SourceDateEpoch is every timestamp in the image; nil means the HEAD
	// commit's time.
	SourceDateEpoch *int64
	Builder         string // BuildKit address; "" for $BUILDKIT_HOST or the default
	Registry        publish.Registry
	Progress        progressui.DisplayMode
	ProgressTo      io.Writer    // BuildKit's progress display; nil for none
	Log             *slog.Logger // fsbuild's own messages; nil for none
	Go              string       // the go command
	WorkDir         string       // scratch space; a temporary folder when ""
}

// Image is one built image.
type Image struct {
	Component Component
	Tags      []name.Tag
	Index     v1.ImageIndex
	Digest    v1.Hash
	Referrers []v1.Image // provenance and SBOM artifacts, subject = Digest
	Base      string     // base reference, "" for scratch
}

// Ref is the first tag with the digest: what to pull or pin.
func (i Image) Ref() string { return i.Tags[0].String() + "@" + i.Digest.String() }

// plan is Options checked and filled in.
type plan struct {
	Options
	info    vcs.Info
	sde     int64
	base    string
	system  bool
	variant variant.Variant       // from Options.CUDA
	tags    map[string][]name.Tag // by component name
}

// check validates opts without touching BuildKit, a registry or the compiler.
func check(ctx context.Context, opts Options) (*plan, error) {
	p := &plan{Options: opts, tags: map[string][]name.Tag{}}
	if len(opts.Components) == 0 {
		return nil, fmt.Errorf("no image to build: want aggr, exec or all")
	}
	if len(opts.Platforms) == 0 {
		p.Platforms = []platform.Platform{platform.Host()}
	}
	if _, err := os.Stat(filepath.Join(opts.SourceDir, "go.mod")); err != nil {
		return nil, fmt.Errorf("source folder %s: no go.mod (run fsbuild inside the fedscale-go repository or pass --source): %w", opts.SourceDir, err)
	}
	info, err := vcs.Read(ctx, opts.SourceDir)
	if err != nil {
		return nil, fmt.Errorf("reading the commit to build: %w", err)
	}
	p.info = info
	if opts.Output.Kind == OutputRegistry && info.Dirty && !opts.AllowDirty {
		return nil, fmt.Errorf("the work tree %s has uncommitted changes, so a pushed tag would not match commit %s; commit or stash them, or pass --allow-dirty", opts.SourceDir, info.Short())
	}
	if opts.Output.Kind == OutputDocker && len(p.Platforms) != 1 {
		return nil, fmt.Errorf("--output docker loads one platform into the engine, got --platform %s; pass a single platform", platform.Join(p.Platforms))
	}
	p.sde = info.Time.Unix()
	if opts.SourceDateEpoch != nil {
		p.sde = *opts.SourceDateEpoch
	}
	if p.sde < 0 {
		return nil, fmt.Errorf("--source-date-epoch %d: want seconds since 1970 (>= 0)", p.sde)
	}

	tags := opts.Tags
	if len(tags) == 0 {
		tags = info.Tags()
	}
	p.variant = variant.CPU
	if opts.CUDA != "" {
		p.variant = variant.CUDA
	}
	suffix := p.variant.Suffix(opts.CUDA)
	if p.variant.BasePins != "" {
		pinned, err := pins.Load(filepath.Join(opts.SourceDir, p.variant.BasePins))
		if err != nil {
			return nil, err
		}
		b, err := pinned.Lookup(opts.CUDA)
		if err != nil {
			return nil, err
		}
		p.base = b.Ref()
	}
	if opts.Base != "" {
		p.base = opts.Base
	}
	p.system = p.base == ""
	if p.base != "" {
		ref, err := name.ParseReference(p.base)
		if err != nil {
			return nil, fmt.Errorf("--base %q: %w", p.base, err)
		}
		if _, ok := ref.(name.Digest); !ok && opts.Output.Kind == OutputRegistry {
			return nil, fmt.Errorf("--base %s has no digest: a pushed image must name its base by digest (%s@sha256:...) so the release can be rebuilt; for --cuda run \"fsbuild pin\" first", p.base, p.base)
		}
	}
	for _, c := range opts.Components {
		for _, t := range tags {
			t += suffix
			if !vcs.ValidTag(t) {
				return nil, fmt.Errorf("--tag %q: a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", t)
			}
			ref, err := opts.Registry.Tag(opts.Repo + "/" + c.Image + ":" + t)
			if err != nil {
				return nil, fmt.Errorf("--repo %q: %w", opts.Repo, err)
			}
			p.tags[c.Name] = append(p.tags[c.Name], ref)
		}
	}
	return p, nil
}

func (p *plan) logf(format string, args ...any) {
	if p.Log != nil {
		p.Log.Info(fmt.Sprintf(format, args...))
	}
}

// Result is the images one Build made. Their blobs live in a scratch
// folder until Close.
type Result struct {
	Images []Image
	remove string
}

// Close deletes the scratch folder (when Build made it).
func (r *Result) Close() error {
	if r == nil || r.remove == "" {
		return nil
	}
	return os.RemoveAll(r.remove)
}

// Build makes every image in opts; nothing leaves this machine. Call
// Publish with the result, then Close it.
func Build(ctx context.Context, opts Options) (res *Result, err error) {
	p, err := check(ctx, opts)
	if err != nil {
		return nil, err
	}
	if p.Output.Kind == OutputRegistry {
		// Refuse early, before minutes of building, when the push would fail.
		for _, c := range p.Components {
			if err := p.Registry.CheckPush(ctx, p.tags[c.Name][0].Context()); err != nil {
				return nil, err
			}
		}
	}
	addr, from := buildkit.AddressFrom(p.Builder)
	bk, err := buildkit.ConnectFrom(ctx, addr, from)
	if err != nil {
		return nil, err
	}
	defer bk.Close()

	res = &Result{}
	work := p.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "fsbuild-"); err != nil {
			return nil, err
		}
		res.remove = work
		defer func() {
			if err != nil {
				res.Close()
			}
		}()
	}
	progs := make([]gobuild.Program, len(p.Components))
	for i, c := range p.Components {
		progs[i] = gobuild.Program{Name: c.Binary, ImportPath: c.Package}
	}
	ver := strings.TrimSuffix(p.tags[p.Components[0].Name][0].TagStr(), p.variant.Suffix(p.CUDA))
	p.logf("compiling %d program(s) for %s (version %s)", len(progs), platform.Join(p.Platforms), ver)
	bins, err := gobuild.Build(ctx, gobuild.Options{
		ModuleDir: p.SourceDir, Programs: progs, Platforms: p.Platforms, Version: ver,
		OutDir: filepath.Join(work, "bin"), Go: p.Go, Tags: p.variant.BuildTags,
	})
	if err != nil {
		return nil, err
	}
	for _, c := range p.Components {
		img, err := p.buildOne(ctx, bk, c, bins, ver, filepath.Join(work, c.Name))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Image, err)
		}
		p.logf("built %s", img.Ref())
		res.Images = append(res.Images, img)
	}
	return res, nil
}

func (p *plan) buildOne(ctx context.Context, bk *buildkit.Client, c Component, bins []gobuild.Binary, ver, work string) (Image, error) {
	ctxDir := filepath.Join(work, "context")
	mine := map[platform.Platform]gobuild.Binary{}
	for _, b := range bins {
		if b.Program.Name != c.Binary {
			continue
		}
		mine[b.Platform] = b
		if err := rootfs.Stage(filepath.Join(ctxDir, b.Platform.Dir()), rootfs.Spec{
			Binaries: map[string]string{c.Binary: b.Path}, System: p.system,
		}); err != nil {
			return Image{}, err
		}
	}
	created := time.Unix(p.sde, 0).UTC()
	labels := map[string]string{
		"org.opencontainers.image.source":      SourceURL,
		"org.opencontainers.image.revision":    p.info.Commit,
		"org.opencontainers.image.version":     ver,
		"org.opencontainers.image.created":     created.Format(time.RFC3339),
		"org.opencontainers.image.title":       c.Image,
		"org.opencontainers.image.description": "FedScale " + c.Binary + " (Go runtime)",
	}
	target, args := p.variant.Target, map[string]string{}
	maps.Copy(labels, p.variant.Labels(p.CUDA))
	if p.base != "" {
		args["BASE"] = p.base
		labels["org.opencontainers.image.base.name"] = baseName(p.base)
		if d, err := name.NewDigest(p.base); err == nil {
			labels["org.opencontainers.image.base.digest"] = d.DigestStr()
		}
	}
	outDir := filepath.Join(work, "oci")
	err := bk.Solve(ctx, buildkit.Build{
		ContextDir:      ctxDir,
		DockerfileDir:   filepath.Join(p.SourceDir, "dockerfiles"),
		Dockerfile:      c.Dockerfile,
		Target:          target,
		Platforms:       p.Platforms,
		BuildArgs:       args,
		Labels:          labels,
		Annotations:     labels,
		SourceDateEpoch: p.sde,
		Provenance:      true,
		OutDir:          outDir,
		// The name fills the provenance's subject; the OCI layout's own
		// index.json (discarded) is the only other place it goes.
		Name:       p.tags[c.Name][0].String(),
		Progress:   p.Progress,
		ProgressTo: p.ProgressTo,
	})
	if err != nil {
		return Image{}, err
	}
	lp, err := layout.ImageIndexFromPath(outDir)
	if err != nil {
		return Image{}, fmt.Errorf("reading BuildKit's OCI output: %w", err)
	}
	top, err := lp.IndexManifest()
	if err != nil || len(top.Manifests) != 1 {
		return Image{}, fmt.Errorf("BuildKit's OCI output: want one top-level entry (%v)", err)
	}
	exported, err := lp.ImageIndex(top.Manifests[0].Digest)
	if err != nil {
		return Image{}, fmt.Errorf("BuildKit's OCI output is not an image index: %w", err)
	}
	idx, stmts, err := attest.Split(exported)
	if err != nil {
		return Image{}, err
	}
	if idx, err = attest.Annotate(idx, labels); err != nil {
		return Image{}, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return Image{}, err
	}
	mf, err := idx.IndexManifest()
	if err != nil {
		return Image{}, err
	}
	subject := v1.Descriptor{MediaType: mf.MediaType, Digest: digest}
	if subject.Size, err = idx.Size(); err != nil {
		return Image{}, err
	}
	img := Image{Component: c, Tags: p.tags[c.Name], Index: idx, Digest: digest, Base: p.base}

	for _, s := range stmts {
		a, err := attest.Artifact{
			ArtifactType: string(attest.InTotoMediaType),
			Subject:      subject,
			Blobs:        []attest.Blob{{MediaType: s.MediaType, Data: s.Data, Annotations: map[string]string{"in-toto.io/predicate-type": s.PredicateType}}},
			Annotations:  referrerAnnotations(s.Subject, created),
		}.Image()
		if err != nil {
			return Image{}, err
		}
		img.Referrers = append(img.Referrers, a)
	}
	for _, d := range mf.Manifests {
		pl := platform.FromOCI(d.Platform)
		b, ok := mine[pl]
		if !ok {
			return Image{}, fmt.Errorf("index lists platform %s that fsbuild did not compile for", pl)
		}
		doc, err := sbom.SPDX(sbom.Options{
			Name:      c.Image + " " + pl.String(),
			Namespace: SourceURL + "/spdx/" + c.Image + "/" + d.Digest.String(),
			Created:   created,
			Creator:   "fsbuild-" + version.Version,
			Binaries:  []sbom.Binary{{Path: rootfs.BinDir + "/" + c.Binary, Info: b.Info, SHA256: b.SHA256}},
		})
		if err != nil {
			return Image{}, err
		}
		a, err := attest.Artifact{
			ArtifactType: sbom.MediaType,
			Subject:      subject,
			Blobs:        []attest.Blob{{MediaType: sbom.MediaType, Data: doc}},
			Annotations:  referrerAnnotations(d, created),
		}.Image()
		if err != nil {
			return Image{}, err
		}
		img.Referrers = append(img.Referrers, a)
	}
	return img, nil
}

// referrerAnnotations say which platform manifest of the index an artifact
// describes (its subject is the index, the digest users pull and verify).
func referrerAnnotations(d v1.Descriptor, created time.Time) map[string]string {
	a := map[string]string{
		"org.opencontainers.image.created": created.Format(time.RFC3339),
		"dev.fedscale.manifest.digest":     d.Digest.String(),
	}
	if d.Platform != nil {
		a["dev.fedscale.manifest.platform"] = d.Platform.String()
	}
	return a
}

func baseName(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref[:i]
	}
	return ref
}

// Publish sends the images to opts.Output. With OutputRegistry every image is
// pushed under each of its tags, then read back and verified.
func Publish(ctx context.Context, opts Options, images []Image) error {
	switch opts.Output.Kind {
	case OutputNone:
		return nil
	case OutputRegistry:
		for _, img := range images {
			if _, err := opts.Registry.Push(ctx, img.Tags, img.Index, img.Referrers); err != nil {
				return fmt.Errorf("%s: %w", img.Component.Image, err)
			}
			if opts.Log != nil {
				opts.Log.Info(fmt.Sprintf("pushed %s (%d referrers)", img.Ref(), len(img.Referrers)))
			}
		}
	case OutputOCI:
		for _, img := range images {
			for _, t := range img.Tags {
				if err := publish.WriteLayout(opts.Output.Path, t.String(), img.Index, img.Referrers); err != nil {
					return err
				}
			}
		}
	case OutputDocker:
		for _, img := range images {
			im, err := img.Index.IndexManifest()
			if err != nil {
				return err
			}
			one, err := img.Index.Image(im.Manifests[0].Digest)
			if err != nil {
				return err
			}
			if err := publish.LoadDocker(ctx, img.Tags, one); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown output %q", opts.Output.Kind)
	}
	return nil
}

// Run builds, then publishes, and returns the images (whose blobs are gone:
// use their digests, tags and manifests).
func Run(ctx context.Context, opts Options) ([]Image, error) {
	res, err := Build(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	return res.Images, Publish(ctx, opts, res.Images)
}
