// Package pins reads and updates dockerfiles/cuda-bases.json, the one checked-in
// file that pins the nvidia/cuda base image of each supported CUDA version to
// a digest, so a CUDA image is rebuilt on exactly the base it was released on.
package pins

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/fedscale/fedscale-go/builder/publish"
	"github.com/fedscale/fedscale-go/runtime/variant"
)

// File is where the pins live, relative to the repository root: the CUDA
// variant's (runtime/variant owns it).
var File = variant.CUDA.BasePins

// Base is one pinned base image.
type Base struct {
	Image  string `json:"image"`  // tag reference, e.g. docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04
	Digest string `json:"digest"` // sha256:... of the tag's index, "" until resolved
}

// Ref is the reference BuildKit pulls: image@digest when pinned.
func (b Base) Ref() string {
	if b.Digest == "" {
		return b.Image
	}
	return b.Image + "@" + b.Digest
}

// Pins is the file's content.
type Pins struct {
	Comment string          `json:"comment,omitempty"`
	Bases   map[string]Base `json:"bases"`
}

// Versions lists the known CUDA versions, sorted.
func (p Pins) Versions() []string {
	v := make([]string, 0, len(p.Bases))
	for k := range p.Bases {
		v = append(v, k)
	}
	sort.Strings(v)
	return v
}

// Lookup returns the base for version, or an error listing the known ones.
func (p Pins) Lookup(version string) (Base, error) {
	b, ok := p.Bases[version]
	if !ok {
		return Base{}, fmt.Errorf("--cuda %s: unknown CUDA version (known: %s; add one to %s and run \"fsbuild pin\")", version, strings.Join(p.Versions(), ", "), File)
	}
	return b, nil
}

// Load reads the pins file.
func Load(path string) (Pins, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Pins{}, fmt.Errorf("CUDA base pins: %w", err)
	}
	var p Pins
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Pins{}, fmt.Errorf("CUDA base pins %s: %w", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Pins{}, fmt.Errorf("CUDA base pins %s: unexpected data after the JSON object", path)
	}
	for v, b := range p.Bases {
		if _, err := name.NewTag(b.Image, name.StrictValidation); err != nil {
			return Pins{}, fmt.Errorf("CUDA base pins %s: bases.%q.image: %w", path, v, err)
		}
		if b.Digest != "" {
			if h, err := v1.NewHash(b.Digest); err != nil || h.Algorithm != "sha256" {
				return Pins{}, fmt.Errorf("CUDA base pins %s: bases.%q.digest %q: want sha256:<64 hex digits> or empty", path, v, b.Digest)
			}
		}
	}
	return p, nil
}

// Save writes p to path (sorted keys, two-space indent, trailing newline).
func Save(path string, p Pins) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// Resolve asks the registry for the current digest of each image's tag and
// returns the pins with those digests, plus the versions whose digest changed.
func Resolve(ctx context.Context, reg publish.Registry, p Pins) (Pins, []string, error) {
	out := Pins{Comment: p.Comment, Bases: map[string]Base{}}
	var changed []string
	for _, v := range p.Versions() {
		b := p.Bases[v]
		ref, err := reg.Reference(b.Image)
		if err != nil {
			return Pins{}, nil, err
		}
		desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(reg.Keychain()), remote.WithTransport(reg.RoundTripper()))
		if err != nil {
			return Pins{}, nil, fmt.Errorf("resolving %s: %w", b.Image, err)
		}
		if desc.Digest.String() != b.Digest {
			changed = append(changed, v)
		}
		out.Bases[v] = Base{Image: b.Image, Digest: desc.Digest.String()}
	}
	return out, changed, nil
}
