package release

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/fedscale/fedscale-go/builder/attest"
	"github.com/fedscale/fedscale-go/builder/publish"
	"github.com/fedscale/fedscale-go/builder/sbom"
	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/internal/standin"
)

var fakeN int

// fake is how one made-up release image deviates from what fsbuild pushes.
type fake struct {
	image, cuda  string
	version      string   // the tag without -cuda; default v0.0.0-test
	platforms    []string // default ReleasePlatforms
	noReferrers  bool
	baseDigest   string
	wrongCUDAlbl bool
}

// push pushes an index shaped like fsbuild's (the stand-in's layers, labels,
// per-platform provenance and SBOM referrers) and returns REF@DIGEST.
func (f fake) push(t *testing.T, ctx context.Context, host string) string {
	t.Helper()
	// Content of its own, so no two fakes share a digest (or its referrers).
	fakeN++
	platforms := f.platforms
	if platforms == nil {
		platforms = ReleasePlatforms
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, ps := range platforms {
		p, err := v1.ParsePlatform(ps)
		if err != nil {
			t.Fatal(err)
		}
		img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		l, err := standin.TarLayer([]standin.File{{Name: "usr/local/bin/" + f.image, Body: fmt.Sprintf("binary %d for %s", fakeN, ps)}})
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
		cfg, _ := img.ConfigFile()
		cfg = cfg.DeepCopy()
		cfg.OS, cfg.Architecture = p.OS, p.Architecture
		if f.cuda != "" {
			v := f.cuda
			if f.wrongCUDAlbl {
				v = "11.8"
			}
			cfg.Config.Labels = map[string]string{"dev.fedscale.cuda.version": v}
		}
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	if f.baseDigest != "" {
		idx = mutate.Annotations(idx, map[string]string{"org.opencontainers.image.base.digest": f.baseDigest}).(v1.ImageIndex)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	size, _ := idx.Size()
	subject := v1.Descriptor{MediaType: types.OCIImageIndex, Digest: d, Size: size}
	var refs []v1.Image
	if !f.noReferrers {
		for _, p := range platforms {
			for _, typ := range []string{string(attest.InTotoMediaType), sbom.MediaType} {
				a, err := attest.Artifact{
					ArtifactType: typ, Subject: subject,
					Blobs:       []attest.Blob{{MediaType: types.MediaType(typ), Data: []byte(`{"for":"` + p + `"}`)}},
					Annotations: map[string]string{"dev.fedscale.manifest.platform": p},
				}.Image()
				if err != nil {
					t.Fatal(err)
				}
				refs = append(refs, a)
			}
		}
	}
	tag := f.version
	if tag == "" {
		tag = "v0.0.0-test"
	}
	if f.cuda != "" {
		tag += "-cuda" + f.cuda
	}
	tg, err := name.NewTag(host+"/fedscale/"+f.image+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (publish.Registry{Insecure: []string{host}}).Push(ctx, []name.Tag{tg}, idx, refs); err != nil {
		t.Fatal(err)
	}
	return tg.String() + "@" + d.String()
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	// release pushes a complete, correct release to a registry of its own
	// (cases replace images, which moves tags) and returns its lines.
	release := func(t *testing.T) (host, base, baseDigest string, refs []string) {
		host = infratest.Registry(t, nil)
		base, err := standin.Push(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		bd, _ := name.NewDigest(base)
		return host, base, bd.DigestStr(), []string{
			fake{image: "fedscale-aggr"}.push(t, ctx, host),
			fake{image: "fedscale-exec"}.push(t, ctx, host),
			fake{image: "fedscale-aggr", cuda: "12.4", baseDigest: bd.DigestStr()}.push(t, ctx, host),
			fake{image: "fedscale-exec", cuda: "12.4", baseDigest: bd.DigestStr()}.push(t, ctx, host),
		}
	}

	host, base, _, refs := release(t)
	again, err := standin.Push(ctx, host)
	if err != nil || again != base {
		t.Fatalf("the stand-in base is not deterministic: %s, then %s (%v)", base, again, err)
	}
	checked, err := Verify(ctx, refs, Want{CUDABase: base})
	if err != nil {
		t.Fatalf("a complete release fails: %v", err)
	}
	if len(checked) != 4 || checked[2].Variant != "cuda12.4" || checked[0].Referrers != 4 || checked[3].Version != "v0.0.0-test" {
		t.Errorf("checked %+v", checked)
	}

	for _, tc := range []struct {
		what string
		// edit returns the lines to verify, given a correct release's.
		edit func(t *testing.T, host, bd string, refs []string) []string
		want string
	}{
		{"one image missing", func(t *testing.T, host, bd string, refs []string) []string { return refs[:3] }, "missing fedscale-exec (cuda12.4)"},
		{"no CUDA", func(t *testing.T, host, bd string, refs []string) []string { return refs[:2] }, "no CUDA image"},
		{"listed twice", func(t *testing.T, host, bd string, refs []string) []string { return append(refs, refs[0]) }, "listed twice"},
		{"one platform", func(t *testing.T, host, bd string, refs []string) []string {
			refs[0] = fake{image: "fedscale-aggr", platforms: []string{"linux/amd64"}}.push(t, ctx, host)
			return refs
		}, "want exactly [linux/amd64 linux/arm64]"},
		{"three platforms", func(t *testing.T, host, bd string, refs []string) []string {
			refs[0] = fake{image: "fedscale-aggr", platforms: []string{"linux/amd64", "linux/arm64", "linux/s390x"}}.push(t, ctx, host)
			return refs
		}, "want exactly"},
		{"no referrers", func(t *testing.T, host, bd string, refs []string) []string {
			refs[1] = fake{image: "fedscale-exec", noReferrers: true}.push(t, ctx, host)
			return refs
		}, "0 provenance referrers"},
		{"other base", func(t *testing.T, host, bd string, refs []string) []string {
			refs[3] = fake{image: "fedscale-exec", cuda: "12.4", baseDigest: "sha256:" + strings.Repeat("1", 64)}.push(t, ctx, host)
			return refs
		}, "want the CUDA base"},
		{"wrong CUDA label", func(t *testing.T, host, bd string, refs []string) []string {
			refs[3] = fake{image: "fedscale-exec", cuda: "12.4", baseDigest: bd, wrongCUDAlbl: true}.push(t, ctx, host)
			return refs
		}, "dev.fedscale.cuda.version"},
		{"two versions", func(t *testing.T, host, bd string, refs []string) []string {
			refs[3] = fake{image: "fedscale-exec", cuda: "12.4", baseDigest: bd, version: "v0.0.1-test"}.push(t, ctx, host)
			return refs
		}, "not one release"},
		{"digest not the tag's", func(t *testing.T, host, bd string, refs []string) []string {
			refs[0] = refs[0][:strings.LastIndex(refs[0], "@")] + "@" + strings.Split(refs[1], "@")[1]
			return refs
		}, "not the printed digest"},
		{"not an index", func(t *testing.T, host, bd string, refs []string) []string {
			tg, _ := name.NewTag(host+"/fedscale/fedscale-aggr:v0.0.0-test", name.Insecure)
			img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
			if err := remote.Write(tg, img); err != nil {
				t.Fatal(err)
			}
			d, _ := img.Digest()
			refs[0] = tg.String() + "@" + d.String()
			return refs
		}, "want an OCI image index"},
		{"a stranger", func(t *testing.T, host, bd string, refs []string) []string {
			return append(refs, fake{image: "fedscale-other"}.push(t, ctx, host))
		}, "unexpected image fedscale-other"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			host, base, bd, refs := release(t)
			_, err := Verify(ctx, tc.edit(t, host, bd, refs), Want{CUDABase: base})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestReadDigests(t *testing.T) {
	got, err := ReadDigests(strings.NewReader("# fsbuild --print-digest\n\na/b:c@sha256:00\n  d/e:f@sha256:11  \n"))
	if err != nil || len(got) != 2 || got[1] != "d/e:f@sha256:11" {
		t.Errorf("ReadDigests: %q, %v", got, err)
	}
}
