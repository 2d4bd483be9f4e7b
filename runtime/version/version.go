// Package version holds the build's version string, stamped by the linker
// (-X github.com/fedscale/fedscale-go/runtime/version.Version=...), and the
// rest of what a `version` command reports, read from the binary's build
// information.
package version

import (
	"runtime"
	"runtime/debug"
)

// Version is the release this binary was built from; "dev" for plain builds.
var Version = "dev"

// CUDA is the CUDA version of the released CUDA images (fsbuild --cuda, one
// of dockerfiles/cuda-bases.json's): the release publishes them, and the
// launcher runs them for use_cuda jobs (runtime/variant's CUDA row).
const CUDA = "12.4"

// Info is what `launcher version` and `fsbuild version` print.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"` // the VCS revision Go stamped, "-dirty" appended for a modified tree; "unknown" without one
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"` // GOOS/GOARCH
}

// Get returns this binary's Info.
func Get() Info {
	info := Info{Version: Version, Commit: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.Commit = commit(bi.Settings)
	}
	return info
}

// commit reads vcs.revision and vcs.modified, which go build records when
// it builds inside a checkout (-buildvcs=auto, fsbuild's and make's builds).
func commit(settings []debug.BuildSetting) string {
	rev, dirty := "", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	switch {
	case rev == "":
		return "unknown"
	case dirty:
		return rev + "-dirty"
	}
	return rev
}
