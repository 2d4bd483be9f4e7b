package attest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/fedscale/fedscale-go/builder/attest"
	"github.com/fedscale/fedscale-go/internal/infratest"
)

const (
	refType      = "vnd.docker.reference.type"
	refDigest    = "vnd.docker.reference.digest"
	predicateKey = "in-toto.io/predicate-type"
	slsaV1       = "https://slsa.dev/provenance/v1"

	// sha256 of "{}", the OCI 1.1 empty descriptor.
	emptyDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
)

var (
	amd64   = &v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64   = &v1.Platform{OS: "linux", Architecture: "arm64"}
	unknown = &v1.Platform{OS: "unknown", Architecture: "unknown"}
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// platformImage is a small OCI image, like one BuildKit exports per platform.
func platformImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// statement is an in-toto statement about subject; started varies like
// BuildKit's build timestamps do.
func statement(subject v1.Hash, started string) []byte {
	return []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":%q}}],"predicateType":%q,"predicate":{"metadata":{"buildStartedOn":%q}}}`,
		subject.Hex, slsaV1, started))
}

// attestationImage is a BuildKit attestation manifest: one in-toto layer.
func attestationImage(t *testing.T, stmt []byte) v1.Image {
	t.Helper()
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:       static.NewLayer(stmt, attest.InTotoMediaType),
		MediaType:   attest.InTotoMediaType,
		Annotations: map[string]string{predicateKey: slsaV1},
	})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

func attestationAddendum(t *testing.T, subject v1.Hash, stmt []byte) mutate.IndexAddendum {
	return mutate.IndexAddendum{
		Add: attestationImage(t, stmt),
		Descriptor: v1.Descriptor{
			Platform:    unknown,
			Annotations: map[string]string{refType: "attestation-manifest", refDigest: subject.String()},
		},
	}
}

type fixture struct {
	amd, arm       v1.Image
	amdD, armD     v1.Hash
	amdStmt, armSt []byte
	idx            v1.ImageIndex
}

// buildKitIndex is an index like BuildKit's with provenance: two platform
// images and one attestation manifest per platform (arm64's listed first).
func buildKitIndex(t *testing.T, base v1.ImageIndex, amd, arm v1.Image, started string) fixture {
	t.Helper()
	f := fixture{amd: amd, arm: arm, amdD: digestOf(t, amd), armD: digestOf(t, arm)}
	f.amdStmt = statement(f.amdD, started)
	f.armSt = statement(f.armD, started)
	f.idx = mutate.AppendManifests(base,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: amd64}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: arm64}},
		attestationAddendum(t, f.armD, f.armSt),
		attestationAddendum(t, f.amdD, f.amdStmt),
	)
	return f
}

func TestSplit(t *testing.T) {
	amd, arm := platformImage(t), platformImage(t)
	annotated := mutate.Annotations(empty.Index, map[string]string{"org.opencontainers.image.source": "https://example.invalid/src"}).(v1.ImageIndex)
	for _, tc := range []struct {
		name string
		base v1.ImageIndex
	}{
		{"oci index", annotated},
		{"docker manifest list", mutate.IndexMediaType(annotated, types.DockerManifestList)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := buildKitIndex(t, tc.base, amd, arm, "2024-01-01T00:00:00Z")
			inM, err := f.idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(inM.Manifests) != 4 {
				t.Fatalf("fixture has %d manifests, want 4", len(inM.Manifests))
			}
			out, stmts, err := attest.Split(f.idx)
			if err != nil {
				t.Fatal(err)
			}
			m, err := out.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != types.OCIImageIndex {
				t.Errorf("index media type %s, want %s", m.MediaType, types.OCIImageIndex)
			}
			if mt, _ := out.MediaType(); mt != types.OCIImageIndex {
				t.Errorf("MediaType() = %s, want %s", mt, types.OCIImageIndex)
			}
			if got := m.Annotations["org.opencontainers.image.source"]; got != "https://example.invalid/src" {
				t.Errorf("index annotations not kept: %v", m.Annotations)
			}
			if len(m.Manifests) != 2 {
				t.Fatalf("split index has %d manifests, want 2: %+v", len(m.Manifests), m.Manifests)
			}
			wantPlat := map[v1.Hash]*v1.Platform{f.amdD: amd64, f.armD: arm64}
			for i, d := range m.Manifests {
				if !reflect.DeepEqual(d, inM.Manifests[i]) {
					t.Errorf("manifest %d changed:\n got %+v\nwant %+v", i, d, inM.Manifests[i])
				}
				if d.Platform == nil || d.Platform.OS == "unknown" {
					t.Errorf("manifest %s has platform %v", d.Digest, d.Platform)
					continue
				}
				if !d.Platform.Equals(*wantPlat[d.Digest]) {
					t.Errorf("manifest %s has platform %v, want %v", d.Digest, d.Platform, wantPlat[d.Digest])
				}
				if _, ok := d.Annotations[refType]; ok {
					t.Errorf("manifest %s kept attestation annotations", d.Digest)
				}
				// Children stay readable through the new index.
				img, err := out.Image(d.Digest)
				if err != nil {
					t.Fatalf("Image(%s): %v", d.Digest, err)
				}
				if got := digestOf(t, img); got != d.Digest {
					t.Errorf("Image(%s) has digest %s", d.Digest, got)
				}
			}

			raw, err := out.RawManifest()
			if err != nil {
				t.Fatal(err)
			}
			if got := digestOf(t, out).String(); got != sha(raw) {
				t.Errorf("Digest() = %s, sha256 of RawManifest is %s", got, sha(raw))
			}
			if size, _ := out.Size(); size != int64(len(raw)) {
				t.Errorf("Size() = %d, want %d", size, len(raw))
			}
			var fromRaw v1.IndexManifest
			if err := json.Unmarshal(raw, &fromRaw); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&fromRaw, m) {
				t.Errorf("RawManifest and IndexManifest disagree:\n%s\n%+v", raw, m)
			}

			// Statements: sorted by platform, subject = the platform's
			// descriptor, data byte-equal to the layer.
			if len(stmts) != 2 {
				t.Fatalf("got %d statements, want 2", len(stmts))
			}
			wantStmts := []struct {
				subject v1.Descriptor
				data    []byte
			}{{m.Manifests[0], f.amdStmt}, {m.Manifests[1], f.armSt}}
			for i, w := range wantStmts {
				s := stmts[i]
				if !reflect.DeepEqual(s.Subject, w.subject) {
					t.Errorf("statement %d subject %+v, want %+v", i, s.Subject, w.subject)
				}
				if !bytes.Equal(s.Data, w.data) {
					t.Errorf("statement %d data %q, want %q", i, s.Data, w.data)
				}
				if s.PredicateType != slsaV1 {
					t.Errorf("statement %d predicate type %q", i, s.PredicateType)
				}
				if s.MediaType != attest.InTotoMediaType {
					t.Errorf("statement %d media type %q", i, s.MediaType)
				}
			}
		})
	}
}

func TestSplitDigestIgnoresAttestations(t *testing.T) {
	amd, arm := platformImage(t), platformImage(t)
	f1 := buildKitIndex(t, empty.Index, amd, arm, "2024-01-01T00:00:00Z")
	f2 := buildKitIndex(t, empty.Index, amd, arm, "2025-06-30T12:34:56Z")
	if digestOf(t, f1.idx) == digestOf(t, f2.idx) {
		t.Fatal("fixture: BuildKit indexes should differ when the attestations do")
	}
	split := func(idx v1.ImageIndex) (v1.Hash, []attest.Statement) {
		out, stmts, err := attest.Split(idx)
		if err != nil {
			t.Fatal(err)
		}
		return digestOf(t, out), stmts
	}
	d1, s1 := split(f1.idx)
	d1again, _ := split(f1.idx)
	d2, s2 := split(f2.idx)
	if d1 != d1again {
		t.Errorf("Split is not stable: %s then %s", d1, d1again)
	}
	if d1 != d2 {
		t.Errorf("split index digest depends on the attestations: %s vs %s", d1, d2)
	}
	if bytes.Equal(s1[0].Data, s2[0].Data) {
		t.Errorf("statements should carry their own content")
	}

	// An index without attestations splits to the same digest too.
	plain := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: amd64}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: arm64}},
	)
	d3, s3 := split(plain)
	if d3 != d1 {
		t.Errorf("index without attestations splits to %s, with them %s", d3, d1)
	}
	if len(s3) != 0 {
		t.Errorf("got %d statements from an index without attestations", len(s3))
	}
}

func TestSplitErrors(t *testing.T) {
	img := platformImage(t)
	imgD := digestOf(t, img)
	nested, err := random.Index(64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	stray := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	imageAdd := mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: amd64}}

	for _, tc := range []struct {
		name string
		idx  v1.ImageIndex
		want []string
	}{
		{
			name: "attestation of a digest not in the index",
			idx:  mutate.AppendManifests(empty.Index, imageAdd, attestationAddendum(t, stray, statement(stray, "x"))),
			want: []string{"not in the index", stray.String()},
		},
		{
			name: "empty index",
			idx:  empty.Index,
			want: []string{"no image manifests"},
		},
		{
			name: "only attestations",
			idx:  mutate.AppendManifests(empty.Index, attestationAddendum(t, imgD, statement(imgD, "x"))),
			want: []string{"no image manifests"},
		},
		{
			name: "nested index",
			idx:  mutate.AppendManifests(empty.Index, imageAdd, mutate.IndexAddendum{Add: nested}),
			want: []string{"media type " + string(types.OCIImageIndex), "want an image manifest", digestOf(t, nested).String()},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stmts, err := attest.Split(tc.idx)
			if err == nil {
				t.Fatalf("Split succeeded (%v, %d statements), want an error", out, len(stmts))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestAnnotate(t *testing.T) {
	amd, arm := platformImage(t), platformImage(t)
	f := buildKitIndex(t, mutate.Annotations(empty.Index, map[string]string{"old": "gone"}).(v1.ImageIndex), amd, arm, "t")
	split, _, err := attest.Split(f.idx)
	if err != nil {
		t.Fatal(err)
	}
	before, err := split.RawManifest()
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		ann  map[string]string
	}{
		{"labels", map[string]string{"org.opencontainers.image.version": "1.2.3", "org.opencontainers.image.revision": "abc"}},
		{"none", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := attest.Annotate(split, tc.ann)
			if err != nil {
				t.Fatal(err)
			}
			m, err := out.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.ann) == 0 && len(m.Annotations) != 0 || len(tc.ann) != 0 && !reflect.DeepEqual(m.Annotations, tc.ann) {
				t.Errorf("annotations %v, want %v (replaced, not merged)", m.Annotations, tc.ann)
			}
			if len(m.Manifests) != 2 || m.MediaType != types.OCIImageIndex {
				t.Errorf("manifests or media type changed: %+v", m)
			}
			for _, d := range m.Manifests {
				if _, err := out.Image(d.Digest); err != nil {
					t.Errorf("Image(%s): %v", d.Digest, err)
				}
			}
			raw, err := out.RawManifest()
			if err != nil {
				t.Fatal(err)
			}
			if got := digestOf(t, out).String(); got != sha(raw) {
				t.Errorf("Digest() = %s, sha256 of RawManifest is %s", got, sha(raw))
			}
			var fromRaw v1.IndexManifest
			if err := json.Unmarshal(raw, &fromRaw); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromRaw.Annotations, m.Annotations) && (len(fromRaw.Annotations) != 0 || len(m.Annotations) != 0) {
				t.Errorf("raw annotations %v, IndexManifest %v", fromRaw.Annotations, m.Annotations)
			}
		})
	}
	after, err := split.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("Annotate changed its input")
	}
}

func TestRewrapIndexManifestIsACopy(t *testing.T) {
	img := platformImage(t)
	base := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: amd64}})
	m, err := base.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out, err := attest.Rewrap(base, m)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := out.IndexManifest()
	got.Manifests[0].Platform.Architecture = "mips"
	got.Annotations = map[string]string{"x": "y"}
	again, _ := out.IndexManifest()
	if again.Manifests[0].Platform.Architecture != "amd64" || again.Annotations != nil {
		t.Errorf("IndexManifest returned shared state: %+v", again)
	}
	if _, err := out.ImageIndex(digestOf(t, img)); err == nil {
		t.Errorf("ImageIndex of an image digest succeeded")
	}
}

func subjectIndex(t *testing.T) (v1.ImageIndex, v1.Descriptor) {
	t.Helper()
	idx, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	size, err := idx.Size()
	if err != nil {
		t.Fatal(err)
	}
	return idx, v1.Descriptor{MediaType: types.OCIImageIndex, Digest: digestOf(t, idx), Size: size}
}

func TestArtifactImage(t *testing.T) {
	_, subject := subjectIndex(t)
	stmt := []byte(`{"_type":"https://in-toto.io/Statement/v1"}`)
	sbom := []byte(`{"spdxVersion":"SPDX-2.3"}`)
	a := attest.Artifact{
		ArtifactType: string(attest.InTotoMediaType),
		Subject:      v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size, Annotations: map[string]string{"not": "copied"}, Platform: amd64},
		Blobs: []attest.Blob{
			{MediaType: attest.InTotoMediaType, Data: stmt, Annotations: map[string]string{predicateKey: slsaV1}},
			{MediaType: "application/spdx+json", Data: sbom},
		},
		Annotations: map[string]string{"dev.fedscale.manifest.platform": "linux/amd64"},
	}
	img, err := a.Image()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if got := digestOf(t, img).String(); got != sha(raw) {
		t.Errorf("Digest() = %s, sha256 of RawManifest is %s", got, sha(raw))
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("MediaType() = %s", mt)
	}

	var m struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		ArtifactType  string            `json:"artifactType"`
		Config        json.RawMessage   `json:"config"`
		Layers        []json.RawMessage `json:"layers"`
		Subject       json.RawMessage   `json:"subject"`
		Annotations   map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 2 || m.MediaType != string(types.OCIManifestSchema1) || m.ArtifactType != string(attest.InTotoMediaType) {
		t.Errorf("header: %+v", m)
	}
	wantJSON := func(what string, got json.RawMessage, want string) {
		t.Helper()
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := json.Unmarshal([]byte(want), &w); err != nil {
			t.Fatalf("%s: want: %v", what, err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %s, want %s", what, got, want)
		}
	}
	wantJSON("config", m.Config, fmt.Sprintf(`{"mediaType":%q,"size":2,"digest":%q}`, attest.EmptyMediaType, emptyDigest))
	wantJSON("subject", m.Subject, fmt.Sprintf(`{"mediaType":%q,"size":%d,"digest":%q}`, subject.MediaType, subject.Size, subject.Digest))
	if len(m.Layers) != 2 {
		t.Fatalf("%d layers, want 2", len(m.Layers))
	}
	wantJSON("layer 0", m.Layers[0], fmt.Sprintf(`{"mediaType":%q,"size":%d,"digest":%q,"annotations":{%q:%q}}`, attest.InTotoMediaType, len(stmt), sha(stmt), predicateKey, slsaV1))
	wantJSON("layer 1", m.Layers[1], fmt.Sprintf(`{"mediaType":"application/spdx+json","size":%d,"digest":%q}`, len(sbom), sha(sbom)))
	if !reflect.DeepEqual(m.Annotations, a.Annotations) {
		t.Errorf("annotations %v, want %v", m.Annotations, a.Annotations)
	}

	// What remote.Write and layout use.
	cfg, err := img.RawConfigFile()
	if err != nil || string(cfg) != "{}" {
		t.Errorf("RawConfigFile() = %q, %v", cfg, err)
	}
	if cn, err := img.ConfigName(); err != nil || cn.String() != emptyDigest {
		t.Errorf("ConfigName() = %s, %v", cn, err)
	}
	mf, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if mf.ArtifactType != string(attest.InTotoMediaType) || mf.Subject == nil || mf.Subject.Digest != subject.Digest {
		t.Errorf("Manifest(): %+v", mf)
	}
	for _, blob := range [][]byte{stmt, sbom} {
		h, _ := v1.NewHash(sha(blob))
		l, err := img.LayerByDigest(h)
		if err != nil {
			t.Fatalf("LayerByDigest(%s): %v", h, err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, blob) {
			t.Errorf("layer %s = %q, %v; want %q", h, got, err, blob)
		}
	}
	if _, err := img.LayerByDigest(v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}); err == nil {
		t.Errorf("LayerByDigest of an unknown blob succeeded")
	}

	// Deterministic: the same artifact gives the same digest.
	img2, err := a.Image()
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, img2) != digestOf(t, img) {
		t.Errorf("Artifact.Image is not deterministic")
	}
}

func TestArtifactImageErrors(t *testing.T) {
	subject := v1.Descriptor{MediaType: types.OCIImageIndex, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}, Size: 10}
	blobs := []attest.Blob{{MediaType: attest.InTotoMediaType, Data: []byte("{}")}}
	for _, tc := range []struct {
		name string
		a    attest.Artifact
	}{
		{"no artifact type", attest.Artifact{Subject: subject, Blobs: blobs}},
		{"no subject", attest.Artifact{ArtifactType: "x/y", Blobs: blobs}},
		{"no blobs", attest.Artifact{ArtifactType: "x/y", Subject: subject}},
		{"empty blob list", attest.Artifact{ArtifactType: "x/y", Subject: subject, Blobs: []attest.Blob{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if img, err := tc.a.Image(); err == nil {
				t.Fatalf("Image() = %v, want an error", img)
			} else if !strings.Contains(err.Error(), "artifact") {
				t.Errorf("error %q", err)
			}
		})
	}
}

func TestArtifactPushAndList(t *testing.T) {
	host := infratest.Registry(t, nil)
	ctx := context.Background()
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(authn.Anonymous)}
	repo, err := name.NewRepository(host + "/fedscale/app")
	if err != nil {
		t.Fatal(err)
	}
	idx, subject := subjectIndex(t)
	if err := remote.WriteIndex(repo.Tag("v1"), idx, opts...); err != nil {
		t.Fatal(err)
	}

	artifactTypes := []string{string(attest.InTotoMediaType), "application/spdx+json"}
	want := map[v1.Hash]string{}
	for i, at := range artifactTypes {
		img, err := attest.Artifact{
			ArtifactType: at,
			Subject:      subject,
			Blobs:        []attest.Blob{{MediaType: types.MediaType(at), Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}},
		}.Image()
		if err != nil {
			t.Fatal(err)
		}
		d := digestOf(t, img)
		if err := remote.Write(repo.Digest(d.String()), img, opts...); err != nil {
			t.Fatalf("pushing artifact: %v", err)
		}
		want[d] = at
	}

	list, err := remote.Referrers(repo.Digest(subject.Digest.String()), opts...)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := list.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(lm.Manifests) != len(want) {
		t.Fatalf("referrers list has %d entries, want %d: %+v", len(lm.Manifests), len(want), lm.Manifests)
	}
	for _, d := range lm.Manifests {
		at, ok := want[d.Digest]
		if !ok {
			t.Errorf("unexpected referrer %s", d.Digest)
			continue
		}
		// ggcr's registry lists the config media type as artifactType, so
		// read the manifest itself.
		got, err := remote.Get(repo.Digest(d.Digest.String()), opts...)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			ArtifactType string         `json:"artifactType"`
			Subject      *v1.Descriptor `json:"subject"`
		}
		if err := json.Unmarshal(got.Manifest, &m); err != nil {
			t.Fatal(err)
		}
		if m.ArtifactType != at || m.Subject == nil || m.Subject.Digest != subject.Digest {
			t.Errorf("referrer %s: artifactType %q subject %+v; want %q about %s", d.Digest, m.ArtifactType, m.Subject, at, subject.Digest)
		}
	}
}
