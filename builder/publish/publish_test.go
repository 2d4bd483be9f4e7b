package publish_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/fedscale/fedscale-go/builder/attest"
	"github.com/fedscale/fedscale-go/builder/publish"
	"github.com/fedscale/fedscale-go/internal/infratest"
)

const (
	fakeHost = "registry.example:5000" // not loopback: https unless Insecure
	refName  = "org.opencontainers.image.ref.name"
)

var anon = authn.NewMultiKeychain() // resolves to Anonymous; never reads ~/.docker

// noReferrers is go-containerregistry's registry without the referrers API.
var noReferrers = registry.WithReferrersSupport(false)

// dialTo is a transport that connects every request to addr, whatever the
// host name, so fakeHost reaches an in-process registry.
func dialTo(addr string) http.RoundTripper {
	return &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// imageIndex returns a random index and artifacts that refer to it.
func imageIndex(t *testing.T, nReferrers int) (v1.ImageIndex, []v1.Image, []v1.Hash) {
	t.Helper()
	idx, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	size, err := idx.Size()
	if err != nil {
		t.Fatal(err)
	}
	subject := v1.Descriptor{MediaType: types.OCIImageIndex, Digest: digestOf(t, idx), Size: size}
	var imgs []v1.Image
	var ds []v1.Hash
	for i := 0; i < nReferrers; i++ {
		img, err := attest.Artifact{
			ArtifactType: string(attest.InTotoMediaType),
			Subject:      subject,
			Blobs:        []attest.Blob{{MediaType: attest.InTotoMediaType, Data: []byte(fmt.Sprintf(`{"n":%d,"s":%q}`, i, subject.Digest))}},
		}.Image()
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
		ds = append(ds, digestOf(t, img))
	}
	return idx, imgs, ds
}

func TestTagAndReference(t *testing.T) {
	const dig = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name       string
		insecure   []string
		ref        string
		wantScheme string
		wantTag    string // "" for digest references (Tag must fail)
	}{
		{"listed host", []string{fakeHost}, fakeHost + "/fs/app:v1", "http", "v1"},
		{"listed among others", []string{"other:1", fakeHost}, fakeHost + "/fs/app:v1", "http", "v1"},
		{"not listed", nil, fakeHost + "/fs/app:v1", "https", "v1"},
		{"other host listed", []string{"registry.example"}, fakeHost + "/fs/app:v1", "https", "v1"},
		{"default tag", []string{fakeHost}, fakeHost + "/fs/app", "http", "latest"},
		{"docker hub", []string{fakeHost}, "fedscale/app:v1", "https", "v1"},
		{"digest, listed", []string{fakeHost}, fakeHost + "/fs/app@" + dig, "http", ""},
		{"digest, not listed", nil, fakeHost + "/fs/app@" + dig, "https", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := publish.Registry{Insecure: tc.insecure}
			ref, err := r.Reference(tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			if got := ref.Context().Scheme(); got != tc.wantScheme {
				t.Errorf("Reference(%q) scheme %s, want %s", tc.ref, got, tc.wantScheme)
			}
			if _, isDigest := ref.(name.Digest); isDigest != (tc.wantTag == "") {
				t.Errorf("Reference(%q) = %T", tc.ref, ref)
			}
			tag, err := r.Tag(tc.ref)
			if tc.wantTag == "" {
				if err == nil {
					t.Errorf("Tag(%q) = %v, want an error", tc.ref, tag)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tag.Scheme(); got != tc.wantScheme {
				t.Errorf("Tag(%q) scheme %s, want %s", tc.ref, got, tc.wantScheme)
			}
			if tag.TagStr() != tc.wantTag {
				t.Errorf("Tag(%q) tag %q, want %q", tc.ref, tag.TagStr(), tc.wantTag)
			}
			// Derived references keep the scheme.
			if got := tag.Context().Digest(dig).Scheme(); got != tc.wantScheme {
				t.Errorf("derived digest scheme %s, want %s", got, tc.wantScheme)
			}
		})
	}
}

func TestTagAndReferenceErrors(t *testing.T) {
	r := publish.Registry{Insecure: []string{fakeHost}}
	for _, s := range []string{"", "UPPER/app:v1", fakeHost + "/fs/app:bad tag", "a:b:c:d"} {
		if tag, err := r.Tag(s); err == nil {
			t.Errorf("Tag(%q) = %v, want an error", s, tag)
		} else if !strings.Contains(err.Error(), fmt.Sprintf("image reference %q", s)) {
			t.Errorf("Tag(%q) error %q does not quote the reference", s, err)
		}
		if ref, err := r.Reference(s); err == nil {
			t.Errorf("Reference(%q) = %v, want an error", s, ref)
		} else if !strings.Contains(err.Error(), fmt.Sprintf("image reference %q", s)) {
			t.Errorf("Reference(%q) error %q does not quote the reference", s, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	var r publish.Registry
	if r.Keychain() != authn.DefaultKeychain {
		t.Errorf("default keychain is not authn.DefaultKeychain")
	}
	if r.RoundTripper() != remote.DefaultTransport {
		t.Errorf("default transport is not remote.DefaultTransport")
	}
	tr := dialTo("127.0.0.1:1")
	r = publish.Registry{Auth: anon, Transport: tr}
	if r.Keychain() != anon || r.RoundTripper() != tr {
		t.Errorf("configured keychain/transport not used")
	}
}

type staticKeychain struct{ auth authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, nil }

// basicAuth wraps a registry so it demands user:pass.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(reg http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
			reg.ServeHTTP(w, r)
		})
	}
}

func TestCheckPushCredentials(t *testing.T) {
	host := infratest.Registry(t, basicAuth("alice", "s3cret"), noReferrers)
	repo, err := name.NewRepository(host + "/fs/app")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		auth authn.Authenticator
		ok   bool
	}{
		{"anonymous", authn.Anonymous, false},
		{"wrong password", &authn.Basic{Username: "alice", Password: "nope"}, false},
		{"right password", &authn.Basic{Username: "alice", Password: "s3cret"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := publish.Registry{Auth: staticKeychain{tc.auth}}
			err := r.CheckPush(context.Background(), repo)
			if tc.ok {
				if err != nil {
					t.Fatalf("CheckPush: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckPush succeeded, want an error")
			}
			for _, w := range []string{"refused the credentials", host, "HTTP 401", `docker login ` + host} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCheckPushInsecure(t *testing.T) {
	addr := infratest.Registry(t, nil, noReferrers)
	repoStr := fakeHost + "/fs/app"
	for _, tc := range []struct {
		name     string
		insecure []string
		want     []string // nil: success
	}{
		{"listed", []string{fakeHost}, nil},
		{"not listed", nil, []string{"speaks plain HTTP", "--insecure-registry " + fakeHost}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := publish.Registry{Insecure: tc.insecure, Auth: anon, Transport: dialTo(addr)}
			tag, err := r.Tag(repoStr + ":v1")
			if err != nil {
				t.Fatal(err)
			}
			err = r.CheckPush(context.Background(), tag.Context())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckPush: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckPush succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCheckPushUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	repo, err := name.NewRepository(addr + "/fs/app")
	if err != nil {
		t.Fatal(err)
	}
	err = publish.Registry{Auth: anon}.CheckPush(context.Background(), repo)
	if err == nil || !strings.Contains(err.Error(), "registry "+addr) {
		t.Fatalf("CheckPush = %v, want an error naming %s", err, addr)
	}
}

func TestPushAndVerify(t *testing.T) {
	for _, tc := range []struct {
		name      string
		referrers bool
	}{
		{"referrers API", true},
		{"tag fallback", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := infratest.Registry(t, nil, registry.WithReferrersSupport(tc.referrers))
			ctx := context.Background()
			r := publish.Registry{Auth: anon}
			var tags []name.Tag
			for _, s := range []string{"v1.2.3", "latest"} {
				tag, err := r.Tag(host + "/fs/app:" + s)
				if err != nil {
					t.Fatal(err)
				}
				tags = append(tags, tag)
			}
			idx, refs, refDigests := imageIndex(t, 2)
			want := digestOf(t, idx)

			got, err := r.Push(ctx, tags, idx, refs)
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			if got != want {
				t.Errorf("Push = %s, want %s", got, want)
			}
			opts := []remote.Option{remote.WithAuth(authn.Anonymous)}
			for _, tag := range tags {
				d, err := remote.Head(tag, opts...)
				if err != nil {
					t.Fatal(err)
				}
				if d.Digest != want {
					t.Errorf("%s = %s, want %s", tag, d.Digest, want)
				}
			}
			list, err := remote.Referrers(tags[0].Context().Digest(want.String()), opts...)
			if err != nil {
				t.Fatal(err)
			}
			lm, err := list.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			listed := map[v1.Hash]bool{}
			for _, d := range lm.Manifests {
				listed[d.Digest] = true
			}
			for _, d := range refDigests {
				if !listed[d] {
					t.Errorf("referrer %s not listed: %+v", d, lm.Manifests)
				}
			}
			if err := r.Verify(ctx, tags, want, refDigests); err != nil {
				t.Errorf("Verify after Push: %v", err)
			}

			// A referrer the registry does not list.
			stray := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
			err = r.Verify(ctx, tags, want, append(refDigests, stray))
			if err == nil || !strings.Contains(err.Error(), "referrer "+stray.String()+" is not listed") || !strings.Contains(err.Error(), want.String()) {
				t.Errorf("Verify with an unlisted referrer = %v", err)
			}

			// A tag that is not there.
			missing, _ := r.Tag(host + "/fs/app:missing")
			err = r.Verify(ctx, []name.Tag{tags[0], missing}, want, nil)
			if err == nil || !strings.Contains(err.Error(), "reading back "+missing.String()) {
				t.Errorf("Verify with a missing tag = %v", err)
			}

			// The second tag is moved to another index.
			other, _, _ := imageIndex(t, 0)
			if err := remote.WriteIndex(tags[1], other, opts...); err != nil {
				t.Fatal(err)
			}
			otherD := digestOf(t, other)
			err = r.Verify(ctx, tags, want, refDigests)
			if err == nil {
				t.Fatal("Verify succeeded with a moved tag")
			}
			for _, w := range []string{"reading back " + tags[1].String(), "the registry has " + otherD.String(), "fsbuild built " + want.String()} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestPushErrors(t *testing.T) {
	idx, refs, _ := imageIndex(t, 1)
	if _, err := (publish.Registry{Auth: anon}).Push(context.Background(), nil, idx, refs); err == nil || !strings.Contains(err.Error(), "no tags") {
		t.Errorf("Push without tags = %v", err)
	}

	host := infratest.Registry(t, basicAuth("alice", "s3cret"), noReferrers)
	tag, err := name.NewTag(host + "/fs/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = publish.Registry{Auth: anon}.Push(context.Background(), []name.Tag{tag}, idx, refs)
	if err == nil || !strings.Contains(err.Error(), "refused the credentials") {
		t.Errorf("Push to a registry refusing us = %v", err)
	}
}

func readLayout(t *testing.T, dir string) (layout.Path, *v1.IndexManifest) {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return lp, im
}

func named(im *v1.IndexManifest, ref string) []v1.Descriptor {
	var out []v1.Descriptor
	for _, d := range im.Manifests {
		if d.Annotations[refName] == ref {
			out = append(out, d)
		}
	}
	return out
}

func count(im *v1.IndexManifest, h v1.Hash) int {
	n := 0
	for _, d := range im.Manifests {
		if d.Digest == h {
			n++
		}
	}
	return n
}

// checkChildren reads every image of idx (read from a layout), and all
// its blobs.
func checkChildren(t *testing.T, idx v1.ImageIndex) {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatalf("image %s: %v", d.Digest, err)
		}
		if got := digestOf(t, img); got != d.Digest {
			t.Errorf("image %s has digest %s", d.Digest, got)
		}
		if _, err := img.ConfigFile(); err != nil {
			t.Errorf("image %s config: %v", d.Digest, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatalf("image %s layers: %v", d.Digest, err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("image %s layer: %v", d.Digest, err)
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				t.Errorf("image %s layer: %v", d.Digest, err)
			}
		}
	}
}

func TestWriteLayout(t *testing.T) {
	const ref1 = "registry.example:5000/fs/app:v1"
	const ref2 = "registry.example:5000/fs/app:latest"
	dir := filepath.Join(t.TempDir(), "out", "oci") // does not exist yet
	idx, refs, refDigests := imageIndex(t, 2)
	want := digestOf(t, idx)

	check := func(step string) *v1.IndexManifest {
		t.Helper()
		lp, im := readLayout(t, dir)
		if n := named(im, ref1); len(n) != 1 || n[0].Digest != want || n[0].MediaType != types.OCIImageIndex {
			t.Errorf("%s: entries named %s: %+v", step, ref1, n)
		}
		root, err := lp.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		stored, err := root.ImageIndex(want)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got := digestOf(t, stored); got != want {
			t.Errorf("%s: stored index has digest %s", step, got)
		}
		checkChildren(t, stored)
		for i, d := range refDigests {
			if c := count(im, d); c != 1 {
				t.Errorf("%s: referrer %s listed %d times", step, d, c)
			}
			img, err := lp.Image(d)
			if err != nil {
				t.Fatalf("%s: referrer %s: %v", step, d, err)
			}
			got, _ := img.RawManifest()
			wantRaw, _ := refs[i].RawManifest()
			if string(got) != string(wantRaw) {
				t.Errorf("%s: referrer %s manifest differs", step, d)
			}
			layers, err := img.Layers()
			if err != nil || len(layers) != 1 {
				t.Fatalf("%s: referrer layers: %v, %v", step, layers, err)
			}
			rc, err := layers[0].Compressed()
			if err != nil {
				t.Fatalf("%s: referrer blob: %v", step, err)
			}
			rc.Close()
		}
		return im
	}

	if err := publish.WriteLayout(dir, ref1, idx, refs); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		t.Errorf("no oci-layout file: %v", err)
	}
	first := check("first write")
	if len(first.Manifests) != 3 {
		t.Errorf("first write: %d entries, want 3 (index and 2 referrers)", len(first.Manifests))
	}

	// Same name again: replaced, not duplicated.
	if err := publish.WriteLayout(dir, ref1, idx, refs); err != nil {
		t.Fatal(err)
	}
	if again := check("second write"); len(again.Manifests) != len(first.Manifests) {
		t.Errorf("second write: %d entries, want %d", len(again.Manifests), len(first.Manifests))
	}

	// Another name for the same index: a second named entry.
	if err := publish.WriteLayout(dir, ref2, idx, refs); err != nil {
		t.Fatal(err)
	}
	im := check("second name")
	if n := named(im, ref2); len(n) != 1 || n[0].Digest != want {
		t.Errorf("entries named %s: %+v", ref2, n)
	}
	if count(im, want) != 2 {
		t.Errorf("index listed %d times, want 2 (one per name)", count(im, want))
	}

	// A new build under the first name replaces its entry.
	idx2, refs2, _ := imageIndex(t, 1)
	want2 := digestOf(t, idx2)
	if err := publish.WriteLayout(dir, ref1, idx2, refs2); err != nil {
		t.Fatal(err)
	}
	lp, im := readLayout(t, dir)
	if n := named(im, ref1); len(n) != 1 || n[0].Digest != want2 {
		t.Errorf("after rebuild, entries named %s: %+v", ref1, n)
	}
	if n := named(im, ref2); len(n) != 1 || n[0].Digest != want {
		t.Errorf("after rebuild, entries named %s: %+v", ref2, n)
	}
	root, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if stored, err := root.ImageIndex(want2); err != nil {
		t.Errorf("rebuilt index not stored: %v", err)
	} else {
		checkChildren(t, stored)
	}
}

func TestWriteLayoutExistingEmptyDir(t *testing.T) {
	dir := t.TempDir() // exists, but no index.json
	idx, _, _ := imageIndex(t, 0)
	if err := publish.WriteLayout(dir, "app:v1", idx, nil); err != nil {
		t.Fatal(err)
	}
	_, im := readLayout(t, dir)
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations[refName] != "app:v1" {
		t.Errorf("index.json: %+v", im.Manifests)
	}
}

func TestWriteLayoutErrors(t *testing.T) {
	idx, _, _ := imageIndex(t, 0)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, "index.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, corrupt} {
		err := publish.WriteLayout(dir, "app:v1", idx, nil)
		if err == nil || !strings.Contains(err.Error(), "OCI layout "+dir) {
			t.Errorf("WriteLayout(%s) = %v, want an error naming it", dir, err)
		}
	}
}
