// Package platform holds the target platforms fsbuild can build for: parsing
// of --platform values, the host default, and the Go and OCI spellings of each.
//
// Only platforms Go can cross-compile to with CGO_ENABLED=0 are accepted,
// because fsbuild never emulates: binaries are compiled on the host and copied
// into the image.
package platform

import (
	"fmt"
	"runtime"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Platform is one OS/architecture(/variant) target, e.g. linux/arm/v7.
type Platform struct {
	OS      string
	Arch    string
	Variant string
}

// supported lists every accepted platform. Variant-less spellings of arm64
// are normalised to no variant (v8 is implied), as BuildKit does.
var supported = []Platform{
	{OS: "linux", Arch: "amd64"},
	{OS: "linux", Arch: "arm64"},
	{OS: "linux", Arch: "arm", Variant: "v7"},
	{OS: "linux", Arch: "ppc64le"},
	{OS: "linux", Arch: "s390x"},
	{OS: "linux", Arch: "riscv64"},
}

// String is the OCI spelling: os/arch[/variant].
func (p Platform) String() string {
	if p.Variant == "" {
		return p.OS + "/" + p.Arch
	}
	return p.OS + "/" + p.Arch + "/" + p.Variant
}

// Dir is the folder name fsbuild stages this platform's files under in the
// build context; the Dockerfiles refer to it as ${TARGETOS}_${TARGETARCH}${TARGETVARIANT}.
func (p Platform) Dir() string { return p.OS + "_" + p.Arch + p.Variant }

// GoEnv is the environment that makes `go build` target this platform.
func (p Platform) GoEnv() []string {
	env := []string{"GOOS=" + p.OS, "GOARCH=" + p.Arch}
	if p.Arch == "arm" {
		env = append(env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	return env
}

// Host is the platform of this machine, as a linux image would run on it.
func Host() Platform {
	p := Platform{OS: "linux", Arch: runtime.GOARCH}
	if p.Arch == "arm" {
		p.Variant = "v7"
	}
	return p
}

// Supported returns the accepted platforms in their OCI spelling.
func Supported() []string {
	out := make([]string, len(supported))
	for i, p := range supported {
		out[i] = p.String()
	}
	return out
}

// OCI is p as an image index descriptor states it.
func (p Platform) OCI() *v1.Platform {
	return &v1.Platform{OS: p.OS, Architecture: p.Arch, Variant: p.Variant}
}

// FromOCI is the platform an image index descriptor states (OS version and
// features, which no supported platform has, are dropped); none for nil.
func FromOCI(p *v1.Platform) Platform {
	if p == nil {
		return Platform{}
	}
	return Platform{OS: p.OS, Arch: p.Architecture, Variant: p.Variant}
}

// Parse reads one platform such as "linux/amd64" or "linux/arm/v7" with
// go-containerregistry's parser, then normalises it as BuildKit does and
// checks that fsbuild can build it.
func Parse(s string) (Platform, error) {
	s = strings.TrimSpace(s)
	op, err := v1.ParsePlatform(s)
	if err != nil || op.OS == "" || op.Architecture == "" || op.OSVersion != "" || strings.Count(s, "/") > 2 {
		return Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant (supported: %s)", s, strings.Join(Supported(), ", "))
	}
	p := FromOCI(op)
	if p.Arch == "arm64" && p.Variant == "v8" {
		p.Variant = ""
	}
	if p.Arch == "arm" && p.Variant == "" {
		p.Variant = "v7"
	}
	for _, q := range supported {
		if q == p {
			return p, nil
		}
	}
	return Platform{}, fmt.Errorf("platform %q is not supported (supported: %s)", s, strings.Join(Supported(), ", "))
}

// ParseList reads a comma-separated --platform value. The result is sorted
// and free of duplicates, so the image index lists platforms in one order
// whatever order the user typed them in.
func ParseList(s string) ([]Platform, error) {
	if strings.TrimSpace(s) == "" {
		return []Platform{Host()}, nil
	}
	seen := map[Platform]bool{}
	var out []Platform
	for _, f := range strings.Split(s, ",") {
		p, err := Parse(f)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// Join is the comma-separated OCI spelling of ps, as BuildKit's platform
// frontend option takes it.
func Join(ps []Platform) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
