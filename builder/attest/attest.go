// Package attest turns BuildKit's in-index attestations into OCI referrers.
//
// BuildKit puts a provenance attestation into the image index as an extra
// manifest (platform unknown/unknown) that embeds build timestamps, so the
// index digest changes on every build and several consumers choke on the
// extra platform. Split removes those manifests, leaving an index that
// depends only on the image content, and returns the statements; Artifact
// wraps a statement (or an SBOM) as an OCI 1.1 artifact whose subject is the
// image, which registries list through the referrers API (or the tag-schema
// fallback that go-containerregistry maintains).
package attest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BuildKit's markers on attestation manifests and their layers.
const (
	refTypeAnnotation   = "vnd.docker.reference.type"
	refDigestAnnotation = "vnd.docker.reference.digest"
	refTypeAttestation  = "attestation-manifest"
	predicateAnnotation = "in-toto.io/predicate-type"
)

// InTotoMediaType is the media type of an in-toto statement.
const InTotoMediaType types.MediaType = "application/vnd.in-toto+json"

// EmptyMediaType is the OCI 1.1 empty config of artifacts.
const EmptyMediaType types.MediaType = "application/vnd.oci.empty.v1+json"

// Statement is one attestation taken out of an index.
type Statement struct {
	Subject       v1.Descriptor // the platform manifest it describes
	PredicateType string
	MediaType     types.MediaType
	Data          []byte
}

// Split returns idx without its attestation manifests, and the statements
// those manifests carried. (With attestations on, BuildKit always exports an
// index, even for one platform, so every image fsbuild makes is an index.)
func Split(idx v1.ImageIndex) (v1.ImageIndex, []Statement, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, fmt.Errorf("reading image index: %w", err)
	}
	var images []v1.Descriptor
	var attestations []v1.Descriptor
	for _, d := range im.Manifests {
		switch {
		case d.Annotations[refTypeAnnotation] == refTypeAttestation:
			attestations = append(attestations, d)
		case d.MediaType.IsImage():
			images = append(images, d)
		default:
			return nil, nil, fmt.Errorf("image index entry %s has media type %s, want an image manifest", d.Digest, d.MediaType)
		}
	}
	if len(images) == 0 {
		return nil, nil, fmt.Errorf("image index has no image manifests")
	}
	byDigest := map[string]v1.Descriptor{}
	for _, d := range images {
		byDigest[d.Digest.String()] = d
	}
	kept := *im.DeepCopy()
	kept.MediaType = types.OCIImageIndex
	kept.Manifests = images
	out, err := Rewrap(idx, &kept)
	if err != nil {
		return nil, nil, err
	}

	var stmts []Statement
	for _, a := range attestations {
		subject, ok := byDigest[a.Annotations[refDigestAnnotation]]
		if !ok {
			return nil, nil, fmt.Errorf("attestation %s refers to %q, which is not in the index", a.Digest, a.Annotations[refDigestAnnotation])
		}
		img, err := idx.Image(a.Digest)
		if err != nil {
			return nil, nil, fmt.Errorf("reading attestation %s: %w", a.Digest, err)
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, nil, fmt.Errorf("reading attestation %s: %w", a.Digest, err)
		}
		for _, l := range m.Layers {
			layer, err := img.LayerByDigest(l.Digest)
			if err != nil {
				return nil, nil, fmt.Errorf("attestation %s layer %s: %w", a.Digest, l.Digest, err)
			}
			data, err := readAll(layer)
			if err != nil {
				return nil, nil, fmt.Errorf("attestation %s layer %s: %w", a.Digest, l.Digest, err)
			}
			stmts = append(stmts, Statement{Subject: subject, PredicateType: l.Annotations[predicateAnnotation], MediaType: l.MediaType, Data: data})
		}
	}
	sort.SliceStable(stmts, func(i, j int) bool {
		return platformString(stmts[i].Subject.Platform) < platformString(stmts[j].Subject.Platform)
	})
	return out, stmts, nil
}

func readAll(l v1.Layer) ([]byte, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(rc)
	return buf.Bytes(), err
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return ""
	}
	return p.String()
}

// Blob is one layer of an artifact.
type Blob struct {
	MediaType   types.MediaType
	Data        []byte
	Annotations map[string]string
}

// Artifact is an OCI 1.1 artifact manifest: an empty config, the blobs as
// layers, and the image it is about as subject.
type Artifact struct {
	ArtifactType string
	Subject      v1.Descriptor
	Blobs        []Blob
	Annotations  map[string]string
}

// emptyConfig is the OCI 1.1 empty descriptor's content.
var emptyConfig = []byte("{}")

// Image returns the artifact as a v1.Image that go-containerregistry can
// push (remote.Write) or store (layout.AppendImage).
func (a Artifact) Image() (v1.Image, error) {
	if a.ArtifactType == "" || len(a.Blobs) == 0 || a.Subject.Digest.Hex == "" {
		return nil, fmt.Errorf("artifact: want an artifact type, a subject and at least one blob")
	}
	cfgDigest, cfgSize, err := v1.SHA256(bytes.NewReader(emptyConfig))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  a.ArtifactType,
		Config:        v1.Descriptor{MediaType: EmptyMediaType, Digest: cfgDigest, Size: cfgSize},
		Subject:       &v1.Descriptor{MediaType: a.Subject.MediaType, Digest: a.Subject.Digest, Size: a.Subject.Size},
		Annotations:   a.Annotations,
	}
	core := &artifactCore{layers: map[v1.Hash]v1.Layer{}}
	for _, b := range a.Blobs {
		l := static.NewLayer(b.Data, b.MediaType)
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		core.layers[d] = l
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: b.MediaType, Digest: d, Size: int64(len(b.Data)), Annotations: b.Annotations})
	}
	if core.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(core)
}

type artifactCore struct {
	manifest []byte
	layers   map[v1.Hash]v1.Layer
}

func (c *artifactCore) RawConfigFile() ([]byte, error)      { return emptyConfig, nil }
func (c *artifactCore) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (c *artifactCore) RawManifest() ([]byte, error)        { return c.manifest, nil }
func (c *artifactCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := c.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("artifact has no blob %s", h)
}

// Rewrap returns the index whose manifest is m and whose children (images,
// nested indexes) are read from base. It keeps descriptors exactly as given,
// unlike mutate.AppendManifests, which adds fields of its own.
func Rewrap(base v1.ImageIndex, m *v1.IndexManifest) (v1.ImageIndex, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &index{base: base, manifest: m.DeepCopy(), raw: raw}, nil
}

// Annotate returns idx with its own annotations replaced by ann.
func Annotate(idx v1.ImageIndex, ann map[string]string) (v1.ImageIndex, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	m := im.DeepCopy()
	m.Annotations = ann
	return Rewrap(idx, m)
}

type index struct {
	base     v1.ImageIndex // where children are read from
	manifest *v1.IndexManifest
	raw      []byte
}

func (i *index) Image(h v1.Hash) (v1.Image, error)           { return i.base.Image(h) }
func (i *index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) { return i.base.ImageIndex(h) }

func (i *index) MediaType() (types.MediaType, error)       { return i.manifest.MediaType, nil }
func (i *index) RawManifest() ([]byte, error)              { return i.raw, nil }
func (i *index) IndexManifest() (*v1.IndexManifest, error) { return i.manifest.DeepCopy(), nil }
func (i *index) Size() (int64, error)                      { return int64(len(i.raw)), nil }
func (i *index) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(i.raw))
	return h, err
}
