package devinfra

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// writePauseImage builds internal/cmd/pause (static) and packs it as the
// single-layer image pauseRef, in the docker-save format ctr imports.
func writePauseImage(ctx context.Context, root, goCmd, out string) error {
	bin := out + ".bin"
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./internal/cmd/pause")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the pause binary: %w\n%s", err, b)
	}
	defer os.Remove(bin)
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "pause", Mode: 0o755, Size: int64(len(exe)), ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	if _, err := tw.Write(exe); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layerTar := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint = []string{"/pause"}
	cf.Config.User = "65535:65535"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	ref, err := name.ParseReference(pauseRef)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(out, ref, img)
}

// importTarball imports a docker-save tarball into the node's containerd,
// where the CRI plugin (and so kubelet) finds it.
func importTarball(ctx context.Context, address, path string) error {
	_, err := ctr(ctx, address, "images", "import", path)
	return err
}

// RemoveImages removes images (as ImportLayout named them) from the
// containerd at address; one that is not there is no error.
func RemoveImages(ctx context.Context, address string, refs ...string) error {
	for _, r := range refs {
		if _, err := ctr(ctx, address, "images", "rm", r); err != nil {
			return err
		}
	}
	return nil
}

// ImportLayout imports every tagged image of an OCI layout folder (what
// `fsbuild --output oci=DIR` writes) into the node's containerd at address, this
// machine's platform of each, and returns the references imported. The
// layout's names are partial references ctr would not normalise: each
// image goes through a docker-save tarball, whose names the CRI plugin
// resolves as kubelet spells them.
func ImportLayout(ctx context.Context, address, dir string) ([]string, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	refs := map[name.Reference]v1.Image{}
	var names []string
	for _, d := range im.Manifests {
		ref := d.Annotations["org.opencontainers.image.ref.name"]
		if ref == "" {
			continue // a referrer (provenance), not an image
		}
		tag, err := name.NewTag(ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
		img, err := platformImage(idx, d)
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", ref, dir, err)
		}
		refs[tag] = img
		names = append(names, containerdName(tag))
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%s: no tagged image", dir)
	}
	tmp, err := os.MkdirTemp("", "fedscale-node-import-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	tar := filepath.Join(tmp, "images.tar")
	f, err := os.Create(tar)
	if err != nil {
		return nil, err
	}
	if err := tarball.MultiRefWrite(refs, f); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return names, importTarball(ctx, address, tar)
}

// containerdName is tag as containerd stores it: Docker Hub's images
// under docker.io, not go-containerregistry's index.docker.io.
func containerdName(tag name.Tag) string {
	if tag.RegistryStr() == name.DefaultRegistry {
		return "docker.io/" + tag.RepositoryStr() + ":" + tag.TagStr()
	}
	return tag.Name()
}

// platformImage is d's image for linux on this machine's architecture: d
// itself, or the matching entry of its index.
func platformImage(idx v1.ImageIndex, d v1.Descriptor) (v1.Image, error) {
	if !d.MediaType.IsIndex() {
		return idx.Image(d.Digest)
	}
	child, err := idx.ImageIndex(d.Digest)
	if err != nil {
		return nil, err
	}
	cm, err := child.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, m := range cm.Manifests {
		if m.Platform != nil && m.Platform.OS == "linux" && m.Platform.Architecture == runtime.GOARCH {
			return child.Image(m.Digest)
		}
	}
	return nil, fmt.Errorf("no linux/%s image", runtime.GOARCH)
}

// NodeTasks lists the containers of the node's containerd at address that
// run (a task not stopped) for pods of namespace whose names start with
// podPrefix: what a stopped job must not leave running.
func NodeTasks(ctx context.Context, address, namespace, podPrefix string) ([]string, error) {
	out, err := ctr(ctx, address, "containers", "ls", "-q",
		`labels."io.kubernetes.pod.namespace"==`+namespace+`,labels."io.kubernetes.pod.name"~="^`+regexp.QuoteMeta(podPrefix)+`"`)
	if err != nil {
		return nil, err
	}
	ours := map[string]bool{}
	for _, id := range strings.Fields(string(out)) {
		ours[id] = true
	}
	if len(ours) == 0 {
		return nil, nil
	}
	out, err = ctr(ctx, address, "tasks", "ls")
	if err != nil {
		return nil, err
	}
	var running []string
	for _, line := range strings.Split(string(out), "\n")[1:] {
		f := strings.Fields(line) // TASK PID STATUS
		if len(f) == 3 && ours[f[0]] && f[2] != "STOPPED" {
			running = append(running, f[0]+" ("+f[2]+")")
		}
	}
	return running, nil
}
