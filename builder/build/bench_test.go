package build

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/fedscale/fedscale-go/builder/platform"
	"github.com/fedscale/fedscale-go/builder/rootfs"
	"github.com/fedscale/fedscale-go/internal/infratest"
)

// BenchmarkImageBuild sets fsbuild beside ko (the reference tool)
// on the same machine, the same committed tree, the same Go toolchain and
// the same registry, for the host platform:
//
//	cold:     both images, empty Go build cache (and BuildKit cache pruned)
//	warm-one: the executor image again after a change to one Go file
//
// Needs buildkitd ($BUILDKIT_HOST) and ko on PATH or in $(go env GOPATH)/bin
// (go install github.com/google/ko@latest); skipped without them.
//
//	go test -run '^$' -bench ImageBuild -benchtime 3x ./builder/build
func BenchmarkImageBuild(b *testing.B) {
	addr := infratest.BuildKit(b)
	ko := koPath()
	if ko == "" {
		b.Skip("ko not installed (go install github.com/google/ko@latest)")
	}
	host := infratest.Registry(b, nil)
	src := cloneHEAD(b)
	base := pushKoBase(b, host)
	goCmd := "go" // go test puts its own toolchain first on PATH
	ctx := context.Background()

	fsbuild := func(b *testing.B, components []Component) {
		opts := baseOptions(b, addr, host, "")
		opts.SourceDir, opts.Components, opts.Log, opts.Go = src, components, nil, goCmd
		if _, err := Run(ctx, opts); err != nil {
			b.Fatal(err)
		}
	}
	kob := func(b *testing.B, pkgs ...string) {
		cmd := exec.Command(ko, append([]string{"build", "--bare", "--platform", platform.Host().String(), "--insecure-registry"}, pkgs...)...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "KO_DOCKER_REPO="+host+"/ko", "KO_DEFAULTBASEIMAGE="+base, "PATH="+filepath.Dir(goCmd)+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ko build: %v\n%s", err, out)
		}
	}
	both := []string{"./runtime/cmd/aggregator", "./runtime/cmd/executor"}

	b.Run("cold/fsbuild", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			b.Setenv("GOCACHE", b.TempDir())
			prune(b, ctx, addr)
			b.StartTimer()
			fsbuild(b, Components)
		}
	})
	b.Run("cold/ko", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			b.Setenv("GOCACHE", b.TempDir())
			b.StartTimer()
			kob(b, both...)
		}
	})
	// Warm runs share one Go cache, primed once by each tool before timing.
	warm := b.TempDir()
	change := filepath.Join(src, "runtime", "executor", "zz_bench_change.go")
	edit := func(i int) {
		body := fmt.Sprintf("package executor\n\n// benchChange is edited by BenchmarkImageBuild.\nvar benchChange = %d\n\nfunc init() { _ = benchChange }\n", time.Now().UnixNano()+int64(i))
		if err := os.WriteFile(change, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("warm-one-file/fsbuild", func(b *testing.B) {
		b.Setenv("GOCACHE", warm)
		edit(-1)
		fsbuild(b, Components[1:])
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			edit(i)
			b.StartTimer()
			fsbuild(b, Components[1:])
		}
	})
	b.Run("warm-one-file/ko", func(b *testing.B) {
		b.Setenv("GOCACHE", warm)
		edit(-1)
		kob(b, both[1])
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			edit(i)
			b.StartTimer()
			kob(b, both[1])
		}
	})
}

func koPath() string {
	if p, err := exec.LookPath("ko"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "ko")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// cloneHEAD clones the committed tree, so edits by the benchmark never touch
// the working copy.
func cloneHEAD(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "src")
	if out, err := exec.Command("git", "clone", "--quiet", "--local", "--no-hardlinks", repoRoot(b), dir).CombinedOutput(); err != nil {
		b.Fatalf("git clone: %v\n%s", err, out)
	}
	return dir
}

// pushKoBase gives ko what fsbuild's scratch images carry (passwd, CA
// certificates, /tmp) as its base, so both tools ship the same files.
func pushKoBase(b *testing.B, host string) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "rootfs")
	if err := rootfs.Stage(dir, rootfs.Spec{System: true}); err != nil {
		b.Fatal(err)
	}
	layer, err := dirLayer(dir)
	if err != nil {
		b.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		b.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	hp := platform.Host()
	cfg.OS, cfg.Architecture = hp.OS, hp.Arch
	cfg.Config.User = "65532:65532"
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		b.Fatal(err)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: hp.OCI()}})
	tag, _ := name.NewTag(host+"/base/static:bench", name.Insecure)
	if err := remote.WriteIndex(tag, idx); err != nil {
		b.Fatal(err)
	}
	d, _ := idx.Digest()
	return tag.String() + "@" + d.String()
}

// dirLayer packs a folder into an uncompressed-tar layer.
func dirLayer(dir string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname = filepath.ToSlash(rel), time.Unix(0, 0), 0, 0, "", ""
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, tarball.WithMediaType(types.OCILayer))
}
