// Package standin makes the small, deterministic image that plays the
// nvidia/cuda base where no image can be pulled: for `make release-dryrun`
// (package release) and for fsbuild's CUDA-variant tests.
package standin

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Platforms are the platforms of the stand-in base: the release's.
var Platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

// Repo is where the stand-in goes under a registry host.
const Repo = "nvidia/cuda"

// Tag names the stand-in: the pinned 12.4 base's tag, marked.
const Tag = "12.4.1-runtime-ubuntu22.04-standin"

// Base returns a small two-platform index that plays
// nvidia/cuda:12.4.1-runtime (no image can be pulled here): per platform two
// layers (a passwd and os-release; the CUDA version file and a fake
// libcudart) and the CUDA image's environment. It is deterministic: the same
// bytes, so the same digest, every time.
func Base() (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range Platforms {
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		for _, files := range [][]File{
			{{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"}, {"etc/os-release", "NAME=\"nvidia/cuda stand-in\"\n"}},
			{{"usr/local/cuda/version.json", `{"cuda":{"version":"12.4.1"}}` + "\n"}, {"usr/local/cuda/lib64/libcudart.so.12", "not really libcudart for " + p.Architecture + "\n"}},
		} {
			l, err := TarLayer(files)
			if err != nil {
				return nil, err
			}
			if img, err = mutate.AppendLayers(img, l); err != nil {
				return nil, err
			}
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		cfg = cfg.DeepCopy()
		cfg.OS, cfg.Architecture = p.OS, p.Architecture
		cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
		cfg.Config.Env = []string{
			"PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"CUDA_VERSION=12.4.1",
			"NVIDIA_REQUIRE_CUDA=cuda>=12.4",
		}
		cfg.Config.Labels = map[string]string{"dev.fedscale.standin": "nvidia/cuda:12.4.1-runtime-ubuntu22.04"}
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			return nil, err
		}
		p := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx, nil
}

// Push pushes Base to host/nvidia/cuda:<Tag> and
// returns its reference by digest (tag@digest), what fsbuild --base wants.
func Push(ctx context.Context, host string, opts ...remote.Option) (string, error) {
	idx, err := Base()
	if err != nil {
		return "", err
	}
	tag, err := name.NewTag(host+"/"+Repo+":"+Tag, name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.WriteIndex(tag, idx, append([]remote.Option{remote.WithContext(ctx)}, opts...)...); err != nil {
		return "", fmt.Errorf("pushing the stand-in base to %s: %w", tag, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return tag.String() + "@" + d.String(), nil
}

// File is one regular file of a layer.
type File struct{ Name, Body string }

// TarLayer packs files (mode 0644, time 0) into an uncompressed OCI layer.
func TarLayer(files []File) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: 0o644, Size: int64(len(f.Body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, f.Body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, tarball.WithMediaType(types.OCILayer))
}
