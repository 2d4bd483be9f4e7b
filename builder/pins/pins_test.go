package pins_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/fedscale/fedscale-go/builder/pins"
	"github.com/fedscale/fedscale-go/builder/publish"
	"github.com/fedscale/fedscale-go/internal/infratest"
)

const goodDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cuda-bases.json")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadCheckedIn(t *testing.T) {
	path := filepath.Join("..", "..", filepath.FromSlash(pins.File))
	p, err := pins.Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	b, err := p.Lookup("12.4")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.Image, "nvidia/cuda:12.4") {
		t.Errorf("12.4 image %q", b.Image)
	}
	if p.Comment == "" {
		t.Errorf("comment not read")
	}
	v := p.Versions()
	if len(v) == 0 || !sortedStrings(v) {
		t.Errorf("Versions() = %v, want sorted and non-empty", v)
	}
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] > s[i] {
			return false
		}
	}
	return true
}

func TestLoad(t *testing.T) {
	p, err := pins.Load(writeFile(t, `{"comment":"c","bases":{
		"12.4":{"image":"docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04","digest":"`+goodDigest+`"},
		"11.8":{"image":"docker.io/nvidia/cuda:11.8.0-runtime-ubuntu22.04","digest":""}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := pins.Pins{Comment: "c", Bases: map[string]pins.Base{
		"12.4": {Image: "docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04", Digest: goodDigest},
		"11.8": {Image: "docker.io/nvidia/cuda:11.8.0-runtime-ubuntu22.04"},
	}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Load = %+v, want %+v", p, want)
	}
	if got := p.Versions(); !reflect.DeepEqual(got, []string{"11.8", "12.4"}) {
		t.Errorf("Versions() = %v", got)
	}
}

func TestLoadErrors(t *testing.T) {
	base := func(image, digest string) string {
		return `{"bases":{"12.4":{"image":"` + image + `","digest":"` + digest + `"}}}`
	}
	const img = "docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04"
	for _, tc := range []struct {
		name    string
		content string // "" means the file does not exist
		want    []string
	}{
		{name: "missing file", want: []string{"no such file"}},
		{name: "invalid JSON", content: `{"bases": {`, want: []string{"unexpected EOF"}},
		{name: "not an object", content: `[]`, want: []string{"cannot unmarshal"}},
		{name: "unknown top-level field", content: `{"bases":{},"extra":1}`, want: []string{`unknown field "extra"`}},
		{name: "unknown base field", content: `{"bases":{"12.4":{"image":"` + img + `","digest":"","tag":"x"}}}`, want: []string{`unknown field "tag"`}},
		{name: "image without tag", content: base("docker.io/nvidia/cuda", ""), want: []string{`bases."12.4".image`}},
		{name: "image not a reference", content: base("Not A Ref!", ""), want: []string{`bases."12.4".image`}},
		{name: "empty image", content: base("", ""), want: []string{`bases."12.4".image`}},
		{name: "digest without sha256:", content: base(img, "0123456789abcdef"), want: []string{`bases."12.4".digest`, "0123456789abcdef", "sha256:"}},
		{name: "digest of another algorithm", content: base(img, "sha512:abcd"), want: []string{`bases."12.4".digest`}},
		{name: "digest sha256: with no hex", content: base(img, "sha256:"), want: []string{`bases."12.4".digest`}},
		{name: "digest sha256: with non-hex", content: base(img, "sha256:not-hex"), want: []string{`bases."12.4".digest`}},
		{name: "trailing data", content: base(img, "") + `{"bases":{}}`, want: []string{"after"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "missing.json")
			if tc.content != "" {
				path = writeFile(t, tc.content)
			}
			p, err := pins.Load(path)
			if err == nil {
				t.Fatalf("Load = %+v, want an error", p)
			}
			for _, w := range append([]string{path}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLookup(t *testing.T) {
	p := pins.Pins{Bases: map[string]pins.Base{
		"12.6": {Image: "docker.io/nvidia/cuda:12.6.3-runtime-ubuntu24.04"},
		"11.8": {Image: "docker.io/nvidia/cuda:11.8.0-runtime-ubuntu22.04", Digest: goodDigest},
	}}
	b, err := p.Lookup("11.8")
	if err != nil || b != p.Bases["11.8"] {
		t.Errorf("Lookup(11.8) = %+v, %v", b, err)
	}
	for _, v := range []string{"9.9", "", "12"} {
		_, err := p.Lookup(v)
		if err == nil {
			t.Fatalf("Lookup(%q) succeeded", v)
		}
		for _, w := range []string{"--cuda " + v + ":", "known: 11.8, 12.6;", pins.File} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Lookup(%q) error %q does not mention %q", v, err, w)
			}
		}
	}
}

func TestBaseRef(t *testing.T) {
	for _, tc := range []struct {
		b    pins.Base
		want string
	}{
		{pins.Base{Image: "docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04"}, "docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04"},
		{pins.Base{Image: "docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04", Digest: goodDigest}, "docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04@" + goodDigest},
	} {
		got := tc.b.Ref()
		if got != tc.want {
			t.Errorf("%+v.Ref() = %q, want %q", tc.b, got, tc.want)
		}
		if _, err := name.ParseReference(got, name.StrictValidation); err != nil {
			t.Errorf("Ref() %q does not parse: %v", got, err)
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    pins.Pins
	}{
		{"full", pins.Pins{Comment: "CUDA <bases> & `fsbuild pin`", Bases: map[string]pins.Base{
			"12.8": {Image: "docker.io/nvidia/cuda:12.8.1-runtime-ubuntu24.04"},
			"11.8": {Image: "docker.io/nvidia/cuda:11.8.0-runtime-ubuntu22.04", Digest: goodDigest},
			"12.4": {Image: "docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04"},
		}}},
		{"no comment", pins.Pins{Bases: map[string]pins.Base{"12.4": {Image: "docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			first := filepath.Join(dir, "a.json")
			if err := pins.Save(first, tc.p); err != nil {
				t.Fatal(err)
			}
			loaded, err := pins.Load(first)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(loaded, tc.p) {
				t.Errorf("Load(Save(p)) = %+v, want %+v", loaded, tc.p)
			}
			second := filepath.Join(dir, "b.json")
			if err := pins.Save(second, loaded); err != nil {
				t.Fatal(err)
			}
			a, _ := os.ReadFile(first)
			b, _ := os.ReadFile(second)
			if string(a) != string(b) {
				t.Errorf("Save is not byte-stable:\n%s\n---\n%s", a, b)
			}
			if !strings.HasSuffix(string(a), "}\n") || strings.HasSuffix(string(a), "\n\n") {
				t.Errorf("want exactly one trailing newline: %q", a)
			}
			if tc.p.Comment == "" && strings.Contains(string(a), "comment") {
				t.Errorf("empty comment written: %s", a)
			}
			// Sorted keys, two-space indent.
			last := -1
			for _, v := range tc.p.Versions() {
				i := strings.Index(string(a), "\n    \""+v+"\": {")
				if i < 0 || i < last {
					t.Errorf("version %s missing or out of order in\n%s", v, a)
				}
				last = i
			}
		})
	}
}

func push(t *testing.T, ref string) v1.Hash {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithAuth(authn.Anonymous)); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestResolve(t *testing.T) {
	host := infratest.Registry(t, nil, registry.WithReferrersSupport(false))
	ctx := context.Background()
	reg := publish.Registry{Auth: authn.NewMultiKeychain()} // anonymous; never reads ~/.docker
	img124 := host + "/nvidia/cuda:12.4.1-runtime-ubuntu22.04"
	img126 := host + "/nvidia/cuda:12.6.3-runtime-ubuntu24.04"
	d124 := push(t, img124)
	d126 := push(t, img126)

	in := pins.Pins{Comment: "keep me", Bases: map[string]pins.Base{
		"12.6": {Image: img126},
		"12.4": {Image: img124, Digest: goodDigest}, // stale
	}}
	out, changed, err := pins.Resolve(ctx, reg, in)
	if err != nil {
		t.Fatal(err)
	}
	want := pins.Pins{Comment: "keep me", Bases: map[string]pins.Base{
		"12.4": {Image: img124, Digest: d124.String()},
		"12.6": {Image: img126, Digest: d126.String()},
	}}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("Resolve = %+v, want %+v", out, want)
	}
	if !reflect.DeepEqual(changed, []string{"12.4", "12.6"}) {
		t.Errorf("changed = %v, want [12.4 12.6]", changed)
	}
	if in.Bases["12.6"].Digest != "" || in.Bases["12.4"].Digest != goodDigest {
		t.Errorf("Resolve modified its input: %+v", in)
	}

	// The resolved pins survive Save/Load (the digests validate).
	path := filepath.Join(t.TempDir(), "pins.json")
	if err := pins.Save(path, out); err != nil {
		t.Fatal(err)
	}
	if _, err := pins.Load(path); err != nil {
		t.Fatal(err)
	}

	again, changed, err := pins.Resolve(ctx, reg, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 0 || !reflect.DeepEqual(again, out) {
		t.Errorf("second Resolve: changed %v, pins %+v", changed, again)
	}

	// The tag moves: only that version changes.
	d124b := push(t, img124)
	moved, changed, err := pins.Resolve(ctx, reg, out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(changed, []string{"12.4"}) || moved.Bases["12.4"].Digest != d124b.String() || moved.Bases["12.6"] != out.Bases["12.6"] {
		t.Errorf("after moving 12.4: changed %v, pins %+v", changed, moved)
	}
}

func TestResolveMissingTag(t *testing.T) {
	host := infratest.Registry(t, nil, registry.WithReferrersSupport(false))
	push(t, host+"/nvidia/cuda:12.4.1-runtime-ubuntu22.04")
	missing := host + "/nvidia/cuda:99.0-runtime"
	for _, image := range []string{missing, host + "/nvidia/nope:1.0"} {
		p := pins.Pins{Bases: map[string]pins.Base{
			"12.4": {Image: host + "/nvidia/cuda:12.4.1-runtime-ubuntu22.04"},
			"99.0": {Image: image},
		}}
		out, changed, err := pins.Resolve(context.Background(), publish.Registry{Auth: authn.NewMultiKeychain()}, p)
		if err == nil {
			t.Fatalf("Resolve of %s = %+v, %v; want an error", image, out, changed)
		}
		if !strings.Contains(err.Error(), "resolving "+image) {
			t.Errorf("error %q does not name %s", err, image)
		}
	}
}

func TestResolveCancelled(t *testing.T) {
	host := infratest.Registry(t, nil, registry.WithReferrersSupport(false))
	img := host + "/nvidia/cuda:12.4.1-runtime-ubuntu22.04"
	push(t, img)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := pins.Resolve(ctx, publish.Registry{Auth: authn.NewMultiKeychain()}, pins.Pins{Bases: map[string]pins.Base{"12.4": {Image: img}}})
	if err == nil {
		t.Fatal("Resolve with a cancelled context succeeded")
	}
}
