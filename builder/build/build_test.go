package build

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/fedscale/fedscale-go/builder/attest"
	"github.com/fedscale/fedscale-go/builder/buildkit"
	"github.com/fedscale/fedscale-go/builder/platform"
	"github.com/fedscale/fedscale-go/builder/publish"
	"github.com/fedscale/fedscale-go/builder/sbom"
	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/internal/standin"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
)

const maxCompressed = 25 << 20 // the size aim per image

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func baseOptions(t testing.TB, addr, regHost string, platforms string) Options {
	t.Helper()
	ps, err := platform.ParseList(platforms)
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Components: Components,
		SourceDir:  repoRoot(t),
		Repo:       regHost + "/fedscale",
		Tags:       []string{"v0.0.0-test"},
		Platforms:  ps,
		Output:     Output{Kind: OutputRegistry},
		AllowDirty: true, // tests run in working copies
		Builder:    addr,
		Registry:   publish.Registry{Insecure: []string{regHost}},
		Go:         "go", // go test puts its own toolchain first on PATH
		Log:        slog.New(fedlog.NewPlain(testWriter{t}, slog.LevelInfo)),
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func prune(t testing.TB, ctx context.Context, addr string) {
	t.Helper()
	bk, err := buildkit.Connect(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Close()
	if err := bk.Prune(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestReproduciblePush is the central promise: two clean builds of
// the same commit (BuildKit cache pruned in between) push the same digests,
// index included, to two registries; and what is pushed is the image we
// claim: non-root, one layer, small, labelled, with provenance and SBOM as
// referrers and no attestation inside the index.
func TestReproduciblePush(t *testing.T) {
	addr := infratest.BuildKit(t)
	ctx := ctxFor(t)
	const platforms = "linux/amd64,linux/arm64"

	digests := map[string][]v1.Hash{}
	var hosts []string
	for run := 0; run < 2; run++ {
		prune(t, ctx, addr)
		host := infratest.Registry(t, nil)
		hosts = append(hosts, host)
		images, err := Run(ctx, baseOptions(t, addr, host, platforms))
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		for _, img := range images {
			digests[img.Component.Image] = append(digests[img.Component.Image], img.Digest)
		}
	}
	for image, ds := range digests {
		if ds[0] != ds[1] {
			t.Errorf("%s: clean builds pushed different digests %s and %s", image, ds[0], ds[1])
		}
	}

	for _, c := range Components {
		ref, err := name.ParseReference(hosts[1]+"/fedscale/"+c.Image+":v0.0.0-test", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		checkPushed(t, ref, c, []string{"linux/amd64", "linux/arm64"})
	}
}

// checkPushed pulls ref back and checks every property of a CPU image.
func checkPushed(t *testing.T, ref name.Reference, c Component, platforms []string) {
	t.Helper()
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("%s: media type %s", ref, im.MediaType)
	}
	if im.Annotations["org.opencontainers.image.title"] != c.Image || im.Annotations["org.opencontainers.image.source"] != SourceURL {
		t.Errorf("%s: index annotations %v", ref, im.Annotations)
	}
	var got []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("%s: manifest %s without platform (an in-index attestation?)", ref, d.Digest)
		}
		got = append(got, d.Platform.String())
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Config.User != "65532:65532" {
			t.Errorf("%s %s: user %q, want non-root 65532:65532", ref, d.Platform, cfg.Config.User)
		}
		if want := "/usr/local/bin/" + c.Binary; len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != want {
			t.Errorf("%s %s: entrypoint %v, want [%s]", ref, d.Platform, cfg.Config.Entrypoint, want)
		}
		for _, k := range []string{"source", "revision", "version", "created", "title"} {
			if cfg.Config.Labels["org.opencontainers.image."+k] == "" {
				t.Errorf("%s %s: label org.opencontainers.image.%s missing", ref, d.Platform, k)
			}
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Annotations["org.opencontainers.image.revision"] == "" {
			t.Errorf("%s %s: manifest annotations %v", ref, d.Platform, m.Annotations)
		}
		if len(m.Layers) != 1 {
			t.Errorf("%s %s: %d layers, want 1", ref, d.Platform, len(m.Layers))
		}
		size := m.Config.Size
		for _, l := range m.Layers {
			size += l.Size
		}
		if size > maxCompressed {
			t.Errorf("%s %s: %d bytes compressed, want under %d", ref, d.Platform, size, maxCompressed)
		}
		t.Logf("%s %s: %.1f MB compressed", ref, d.Platform, float64(size)/(1<<20))
		files := layerFiles(t, img)
		for _, f := range []string{"usr/local/bin/" + c.Binary, "etc/passwd", "etc/ssl/certs/ca-certificates.crt", "tmp/"} {
			if _, ok := files[f]; !ok {
				t.Errorf("%s %s: layer lacks %s (has %v)", ref, d.Platform, f, keys(files))
			}
		}
		if h := files["usr/local/bin/"+c.Binary]; h != nil && (h.Uid != 0 || h.Mode&0o777 != 0o755) {
			t.Errorf("%s %s: binary owner %d mode %o", ref, d.Platform, h.Uid, h.Mode)
		}
	}
	if strings.Join(got, ",") != strings.Join(platforms, ",") {
		t.Errorf("%s: platforms %v, want %v", ref, got, platforms)
	}
	checkReferrers(t, ref, idx, len(platforms))
}

// checkReferrers: per platform one SLSA provenance whose in-toto subject is
// that platform's manifest, and one SPDX SBOM naming the binary.
func checkReferrers(t *testing.T, ref name.Reference, idx v1.ImageIndex, nPlatforms int) {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	refs, err := remote.Referrers(ref.Context().Digest(d.String()))
	if err != nil {
		t.Fatal(err)
	}
	rm, err := refs.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, desc := range rm.Manifests {
		art, err := remote.Image(ref.Context().Digest(desc.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		m, err := art.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		// The manifest, not the listing: go-containerregistry's registry lists
		// the config media type as artifactType, where the spec wants the
		// manifest's artifactType.
		count[m.ArtifactType]++
		if m.Subject == nil || m.Subject.Digest != d {
			t.Errorf("referrer %s: subject %v, want %s", desc.Digest, m.Subject, d)
		}
		layers, err := art.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("referrer %s: %d layers (%v)", desc.Digest, len(layers), err)
		}
		rc, err := layers[0].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		switch m.ArtifactType {
		case string(attest.InTotoMediaType):
			var st struct {
				PredicateType string `json:"predicateType"`
				Subject       []struct {
					Digest map[string]string `json:"digest"`
				} `json:"subject"`
			}
			if err := json.Unmarshal(data, &st); err != nil {
				t.Fatal(err)
			}
			want := strings.TrimPrefix(m.Annotations["dev.fedscale.manifest.digest"], "sha256:")
			if !strings.HasPrefix(st.PredicateType, "https://slsa.dev/provenance/") || len(st.Subject) == 0 || st.Subject[0].Digest["sha256"] != want {
				t.Errorf("provenance %s: predicate %s, subject %v, want manifest %s", desc.Digest, st.PredicateType, st.Subject, want)
			}
		case sbom.MediaType:
			var doc struct {
				SPDXVersion string `json:"spdxVersion"`
				Packages    []struct {
					Name string `json:"name"`
				} `json:"packages"`
			}
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.SPDXVersion != "SPDX-2.3" || len(doc.Packages) < 3 {
				t.Errorf("SBOM %s: %s with %d packages", desc.Digest, doc.SPDXVersion, len(doc.Packages))
			}
		default:
			t.Errorf("unexpected referrer type %q", m.ArtifactType)
		}
	}
	if count[string(attest.InTotoMediaType)] != nPlatforms || count[sbom.MediaType] != nPlatforms {
		t.Errorf("%s: referrers %v, want %d provenance and %d SBOM", ref, count, nPlatforms, nPlatforms)
	}
}

func layerFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*tar.Header{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimPrefix(h.Name, "./")] = h
		}
		rc.Close()
	}
	return files
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// standInBase pushes the stand-in for nvidia/cuda (no image can be pulled
// here) and returns its reference by digest and the index itself.
func standInBase(t *testing.T, host string) (string, v1.ImageIndex) {
	t.Helper()
	ref, err := standin.Push(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := standin.Base()
	if err != nil {
		t.Fatal(err)
	}
	return ref, idx
}

// TestCUDAVariant: the CUDA executor on a stand-in base keeps every base
// layer untouched and adds exactly one, with the NVIDIA environment.
func TestCUDAVariant(t *testing.T) {
	addr := infratest.BuildKit(t)
	ctx := ctxFor(t)
	host := infratest.Registry(t, nil)
	base, baseIdx := standInBase(t, host)

	opts := baseOptions(t, addr, host, "linux/amd64,linux/arm64")
	opts.Components = []Component{Components[1]}
	opts.CUDA = "12.4"
	opts.Base = base
	images, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := images[0].Tags[0].TagStr(); got != "v0.0.0-test-cuda12.4" {
		t.Errorf("tag %s, want v0.0.0-test-cuda12.4", got)
	}
	ref, _ := name.ParseReference(images[0].Tags[0].String(), name.Insecure)
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	bm, _ := baseIdx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Fatalf("%d manifests, want 2", len(im.Manifests))
	}
	for i, d := range im.Manifests {
		img, _ := idx.Image(d.Digest)
		baseImg, _ := baseIdx.Image(bm.Manifests[i].Digest)
		m, _ := img.Manifest()
		bmf, _ := baseImg.Manifest()
		if len(m.Layers) != len(bmf.Layers)+1 {
			t.Errorf("%s: %d layers over a %d-layer base, want exactly one more", d.Platform, len(m.Layers), len(bmf.Layers))
			continue
		}
		for j := range bmf.Layers {
			if m.Layers[j].Digest != bmf.Layers[j].Digest {
				t.Errorf("%s: base layer %d changed: %s != %s", d.Platform, j, m.Layers[j].Digest, bmf.Layers[j].Digest)
			}
		}
		cfg, _ := img.ConfigFile()
		env := strings.Join(cfg.Config.Env, " ")
		for _, want := range []string{"NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility", "CUDA_VERSION=12.4.1"} {
			if !strings.Contains(env, want) {
				t.Errorf("%s: env %v lacks %s", d.Platform, cfg.Config.Env, want)
			}
		}
		if cfg.Config.User != "65532:65532" || cfg.Config.Labels["org.opencontainers.image.base.digest"] != strings.SplitN(base, "@", 2)[1] {
			t.Errorf("%s: user %q, labels %v", d.Platform, cfg.Config.User, cfg.Config.Labels)
		}
		top, _ := img.LayerByDigest(m.Layers[len(m.Layers)-1].Digest)
		one, _ := mutate.AppendLayers(empty.Image, top)
		files := layerFiles(t, one)
		if _, ok := files["usr/local/bin/executor"]; !ok {
			t.Errorf("%s: added layer holds %v, want the executor", d.Platform, keys(files))
		}
		if _, ok := files["etc/passwd"]; ok {
			t.Errorf("%s: added layer shadows the base's /etc/passwd", d.Platform)
		}
	}
}

// TestDockerOutput loads the executor into the Docker engine and runs it.
func TestDockerOutput(t *testing.T) {
	addr := infratest.BuildKit(t)
	infratest.Docker(t)
	ctx := ctxFor(t)
	opts := baseOptions(t, addr, "", "")
	opts.Components = []Component{Components[1]}
	opts.Repo = "fsbuild-test"
	opts.Tags = []string{"docker-output"}
	opts.Output = Output{Kind: OutputDocker}
	opts.Registry = publish.Registry{}
	if _, err := Run(ctx, opts); err != nil {
		t.Fatal(err)
	}
	ref := "fsbuild-test/fedscale-exec:docker-output"
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", ref).Run() })
	out, err := exec.CommandContext(ctx, "docker", "run", "--rm", ref, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run %s --version: %v\n%s", ref, err, out)
	}
	if !strings.Contains(string(out), "docker-output") {
		t.Errorf("docker run --version printed %q, want the stamped version docker-output", out)
	}
	user, err := exec.Command("docker", "image", "inspect", "--format", "{{.Config.User}}", ref).Output()
	if err != nil || strings.TrimSpace(string(user)) != "65532:65532" {
		t.Errorf("docker image user %q (%v)", user, err)
	}
}

// TestRefusedAuth: a registry that refuses the credentials fails the run
// before anything is built or pushed, and names the registry.
func TestRefusedAuth(t *testing.T) {
	addr := infratest.BuildKit(t)
	var pushes int
	host := infratest.Registry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "fedscale" || p != "right" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			if r.Method == http.MethodPut {
				pushes++
			}
			h.ServeHTTP(w, r)
		})
	})
	opts := baseOptions(t, addr, host, "")
	opts.Registry.Auth = authn.NewMultiKeychain(staticKeychain{authn.FromConfig(authn.AuthConfig{Username: "fedscale", Password: "wrong"})})
	_, err := Run(ctxFor(t), opts)
	if err == nil || !strings.Contains(err.Error(), "registry "+host+" refused the credentials") {
		t.Fatalf("error = %v, want a refused-credentials error naming %s", err, host)
	}
	if pushes != 0 {
		t.Errorf("%d manifest/blob PUTs reached the registry", pushes)
	}
}

type staticKeychain struct{ a authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.a, nil }
