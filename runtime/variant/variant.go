// Package variant is the one table of the runtime images' build variants:
// what each adds to the image tag, which Dockerfile stage and base it builds
// on, which Go build tags its programs are compiled with and which labels
// it carries. fsbuild builds from it, the release's verification parses tags
// with it and the launcher names the images it runs with it, so a new
// variant (ROCm, a CPU-optimised build) is one more row.
package variant

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fedscale/fedscale-go/runtime/version"
)

// Variant is one row of the table.
type Variant struct {
	Name string // "cpu", "cuda"
	// TagSuffix starts what the variant appends to the CPU image's tag; the
	// variant's version follows it ("-cuda" + "12.4"). "" for the CPU
	// variant, which has no version.
	TagSuffix string
	Target    string // the stage of dockerfiles/<image>.Dockerfile
	// BasePins is the checked-in file that pins the variant's base image per
	// version (builder/pins reads it); "" builds on scratch.
	BasePins string
	// BuildTags are the go build -tags of the runtime's programs.
	BuildTags []string
	// VersionLabel is the image label that records the variant's version.
	VersionLabel string
	// Release is the version the release publishes and the launcher runs
	// (runtime/version owns it); "" for an unversioned variant.
	Release string
	// Static: the programs are statically linked and run on scratch. A
	// variant that loads system libraries at run time (the CUDA driver) is
	// dynamically linked and needs a base with a C library.
	Static bool
}

var (
	// CPU is the default: static binaries on scratch.
	CPU = Variant{Name: "cpu", Target: "cpu", Static: true}
	// CUDA builds on a pinned nvidia/cuda runtime base with the executor's
	// CUDA backend (build tag cuda, runtime/model/cuda).
	CUDA = Variant{
		Name: "cuda", TagSuffix: "-cuda", Target: "cuda",
		BasePins: "dockerfiles/cuda-bases.json", BuildTags: []string{"cuda"},
		VersionLabel: "dev.fedscale.cuda.version", Release: version.CUDA,
	}
	// All is the table, the CPU variant first.
	All = []Variant{CPU, CUDA}
)

// Versioned reports whether the variant takes a version (--cuda 12.4).
func (v Variant) Versioned() bool { return v.TagSuffix != "" }

// Suffix is what v appends to the CPU image's tag for version ver:
// "-cuda12.4"; "" for the CPU variant.
func (v Variant) Suffix(ver string) string {
	if !v.Versioned() {
		return ""
	}
	return v.TagSuffix + ver
}

// Labels are the image labels v adds for version ver.
func (v Variant) Labels(ver string) map[string]string {
	if v.VersionLabel == "" {
		return nil
	}
	return map[string]string{v.VersionLabel: ver}
}

// Lookup finds the variant called name.
func Lookup(name string) (Variant, error) {
	for _, v := range All {
		if v.Name == name {
			return v, nil
		}
	}
	names := make([]string, len(All))
	for i, v := range All {
		names[i] = v.Name
	}
	return Variant{}, fmt.Errorf("unknown variant %q (known: %s)", name, strings.Join(names, ", "))
}

// FromTag splits an image tag into its variant, the variant's version and
// the release tag before the suffix: "v1.2.3-cuda12.4" is CUDA, "12.4",
// "v1.2.3"; a tag with no variant's suffix is the CPU variant's. A version
// is dot-separated digits ("-cudafoo" is no suffix).
func FromTag(tag string) (v Variant, ver, release string) {
	for _, v := range All {
		if !v.Versioned() {
			continue
		}
		i := strings.LastIndex(tag, v.TagSuffix)
		if i < 0 {
			continue
		}
		if ver := tag[i+len(v.TagSuffix):]; validVersion(ver) {
			return v, ver, tag[:i]
		}
	}
	return CPU, "", tag
}

func validVersion(s string) bool {
	parts := strings.Split(s, ".")
	return !slices.ContainsFunc(parts, func(p string) bool {
		return p == "" || strings.Trim(p, "0123456789") != ""
	})
}
