// Package publish moves built images out of fsbuild: pushes an image index
// and its referrers to a registry and reads them back, writes them to an OCI
// layout folder, or loads one platform into a Docker engine.
//
// Credentials come from the user's Docker config and credential helpers
// (authn.DefaultKeychain), the same files BuildKit's auth provider reads.
package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/daemon"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Registry says how to talk to registries.
type Registry struct {
	// Insecure lists registry hosts (host[:port]) spoken to over plain HTTP.
	Insecure []string
	// Auth resolves credentials; authn.DefaultKeychain when nil.
	Auth authn.Keychain
	// Transport is the HTTP transport; remote.DefaultTransport when nil.
	Transport http.RoundTripper
}

// Keychain is the credential source in use.
func (r Registry) Keychain() authn.Keychain {
	if r.Auth == nil {
		return authn.DefaultKeychain
	}
	return r.Auth
}

// RoundTripper is the HTTP transport in use.
func (r Registry) RoundTripper() http.RoundTripper {
	if r.Transport == nil {
		return remote.DefaultTransport
	}
	return r.Transport
}

func (r Registry) insecure(host string) bool {
	for _, h := range r.Insecure {
		if h == host {
			return true
		}
	}
	return false
}

// Tag parses an image reference with a tag, honouring Insecure.
func (r Registry) Tag(s string) (name.Tag, error) {
	t, err := name.NewTag(s)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image reference %q: %w", s, err)
	}
	if r.insecure(t.RegistryStr()) {
		t, err = name.NewTag(s, name.Insecure)
	}
	return t, err
}

// Reference parses any reference (tag or digest), honouring Insecure.
func (r Registry) Reference(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", s, err)
	}
	if r.insecure(ref.Context().RegistryStr()) {
		ref, err = name.ParseReference(s, name.Insecure)
	}
	return ref, err
}

func (r Registry) options(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(r.Keychain()), remote.WithTransport(r.RoundTripper())}
}

// CheckPush fails, before anything is written, when the registry cannot be
// reached or refuses to let us push to repo.
func (r Registry) CheckPush(ctx context.Context, repo name.Repository) error {
	ref := repo.Tag("fsbuild-permission-check")
	if err := remote.CheckPushPermission(ref, r.Keychain(), r.RoundTripper()); err != nil {
		return explain(repo, err)
	}
	return nil
}

// explain turns registry errors into one line that says what to do.
func explain(repo name.Repository, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("registry %s refused the credentials for %s (HTTP %d); log in with \"docker login %s\" or fix the credential helper in ~/.docker/config.json: %w",
				repo.RegistryStr(), repo, terr.StatusCode, repo.RegistryStr(), err)
		}
	}
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("registry %s speaks plain HTTP; pass --insecure-registry %s if that is intended: %w", repo.RegistryStr(), repo.RegistryStr(), err)
	}
	return fmt.Errorf("registry %s (%s): %w", repo.RegistryStr(), repo, err)
}

// Push writes idx under every tag (all in one repository), then each
// referrer by digest, then reads everything back: the tags must resolve to
// the index digest and the referrers API (or its tag fallback) must list
// every referrer. It returns the index digest.
func (r Registry) Push(ctx context.Context, tags []name.Tag, idx v1.ImageIndex, referrers []v1.Image) (v1.Hash, error) {
	if len(tags) == 0 {
		return v1.Hash{}, fmt.Errorf("push: no tags")
	}
	want, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	repo := tags[0].Context()
	opts := r.options(ctx)
	if err := remote.WriteIndex(tags[0], idx, opts...); err != nil {
		return v1.Hash{}, explain(repo, err)
	}
	for _, t := range tags[1:] {
		if err := remote.Tag(t, idx, opts...); err != nil {
			return v1.Hash{}, explain(repo, err)
		}
	}
	var refDigests []v1.Hash
	for _, a := range referrers {
		d, err := a.Digest()
		if err != nil {
			return v1.Hash{}, err
		}
		if err := remote.Write(repo.Digest(d.String()), a, opts...); err != nil {
			return v1.Hash{}, fmt.Errorf("pushing referrer %s: %w", d, explain(repo, err))
		}
		refDigests = append(refDigests, d)
	}
	return want, r.Verify(ctx, tags, want, refDigests)
}

// Verify reads the tags back and checks they name want, and that every
// digest in referrers is listed as a referrer of want.
func (r Registry) Verify(ctx context.Context, tags []name.Tag, want v1.Hash, referrers []v1.Hash) error {
	opts := r.options(ctx)
	for _, t := range tags {
		desc, err := remote.Head(t, opts...)
		if err != nil {
			return fmt.Errorf("reading back %s: %w", t, explain(t.Context(), err))
		}
		if desc.Digest != want {
			return fmt.Errorf("reading back %s: the registry has %s, fsbuild built %s", t, desc.Digest, want)
		}
	}
	if len(referrers) == 0 {
		return nil
	}
	subject := tags[0].Context().Digest(want.String())
	idx, err := remote.Referrers(subject, opts...)
	if err != nil {
		return fmt.Errorf("listing referrers of %s: %w", subject, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	listed := map[v1.Hash]bool{}
	for _, d := range im.Manifests {
		listed[d.Digest] = true
	}
	for _, d := range referrers {
		if !listed[d] {
			return fmt.Errorf("reading back %s: referrer %s is not listed", subject, d)
		}
	}
	return nil
}

// WriteLayout writes idx (named by refName, the OCI ref.name annotation) and
// its referrers into the OCI layout folder path, creating it when missing.
func WriteLayout(path, refName string, idx v1.ImageIndex, referrers []v1.Image) error {
	var p layout.Path
	var err error
	if _, statErr := os.Stat(filepath.Join(path, "index.json")); statErr == nil {
		p, err = layout.FromPath(path)
	} else {
		p, err = layout.Write(path, empty.Index)
	}
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", path, err)
	}
	ann := map[string]string{"org.opencontainers.image.ref.name": refName}
	if err := p.ReplaceIndex(idx, match(refName), layout.WithAnnotations(ann)); err != nil {
		return fmt.Errorf("OCI layout %s: %w", path, err)
	}
	for _, a := range referrers {
		d, err := a.Digest()
		if err != nil {
			return err
		}
		if err := p.ReplaceImage(a, func(desc v1.Descriptor) bool { return desc.Digest == d }); err != nil {
			return fmt.Errorf("OCI layout %s: %w", path, err)
		}
	}
	return nil
}

func match(refName string) func(v1.Descriptor) bool {
	return func(d v1.Descriptor) bool { return d.Annotations["org.opencontainers.image.ref.name"] == refName }
}

// LoadDocker loads img into the Docker engine ($DOCKER_HOST or the default
// socket) under every tag.
func LoadDocker(ctx context.Context, tags []name.Tag, img v1.Image) error {
	if len(tags) == 0 {
		return fmt.Errorf("docker load: no tags")
	}
	if _, err := daemon.Write(tags[0], img, daemon.WithContext(ctx)); err != nil {
		return fmt.Errorf("loading %s into the Docker engine (DOCKER_HOST=%q): %w", tags[0], os.Getenv("DOCKER_HOST"), err)
	}
	for _, t := range tags[1:] {
		if err := daemon.Tag(tags[0], t, daemon.WithContext(ctx)); err != nil {
			return fmt.Errorf("tagging %s in the Docker engine: %w", t, err)
		}
	}
	return nil
}
