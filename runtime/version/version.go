// Package version holds the build's version string, stamped by the linker
// (-X github.com/fedscale/fedscale-go/runtime/version.Version=...).
package version

// Version is the release this binary was built from; "dev" for plain builds.
var Version = "dev"
