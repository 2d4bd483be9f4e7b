package devinfra

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/sync/errgroup"
)

// Tool is a pinned binary built from a helper module under tools/ (never
// the product's go.mod: their dependency sets are huge and would leak into
// it).
type Tool struct {
	Name    string // the binary's name in the cache
	Group   string // its group: one cache folder, one go build
	Package string
	// Out is the name go build gives the binary, when not Name.
	Out string
}

// toolGroup is one cache folder <Cache>/<name>-<version>/bin, keyed by the
// version of module that the helper module tools/<dir>/go.mod requires.
// Several groups may share a helper module: etcd is pinned in tools/k8s,
// next to the Kubernetes release that requires that very version, but is
// keyed by its own version.
type toolGroup struct {
	dir, module string
	// stamp gives the -X flags stamping version into the binaries: built
	// from the module cache, not a git checkout, they would otherwise
	// report v0.0.0+unknown. etcd, kwok and staticcheck carry their
	// versions as constants.
	stamp func(version string) []string
}

var toolGroups = map[string]toolGroup{
	"buildkit": {"buildkit", "github.com/moby/buildkit", func(v string) []string {
		return []string{"github.com/moby/buildkit/version.Version=" + v}
	}},
	"kubernetes": {"k8s", "k8s.io/kubernetes", kubernetesStamp},
	"etcd":       {"k8s", "go.etcd.io/etcd/server/v3", nil},
	"kwok":       {"kwok", "sigs.k8s.io/kwok", nil},
	// CoreDNS with only the plugins a test cluster's DNS needs (the stock
	// build's plugin list pulls in the cloud providers' SDKs).
	"coredns": {"coredns", "github.com/coredns/coredns", func(v string) []string {
		return []string{"github.com/coredns/coredns/coremain.GitCommit=" + v}
	}},
	"staticcheck": {"staticcheck", "honnef.co/go/tools", nil},
	"actionlint": {"actionlint", "github.com/rhysd/actionlint", func(v string) []string {
		return []string{"github.com/rhysd/actionlint.version=" + v}
	}},
}

// tools is the table of known tools, in the order usage lists them.
var tools = []Tool{
	{Name: "buildkitd", Group: "buildkit", Package: "github.com/moby/buildkit/cmd/buildkitd"},
	{Name: "buildctl", Group: "buildkit", Package: "github.com/moby/buildkit/cmd/buildctl"},
	{Name: "kube-apiserver", Group: "kubernetes", Package: "k8s.io/kubernetes/cmd/kube-apiserver"},
	{Name: "kube-controller-manager", Group: "kubernetes", Package: "k8s.io/kubernetes/cmd/kube-controller-manager"},
	{Name: "kube-scheduler", Group: "kubernetes", Package: "k8s.io/kubernetes/cmd/kube-scheduler"},
	{Name: "kubectl", Group: "kubernetes", Package: "k8s.io/kubernetes/cmd/kubectl"},
	{Name: "kubelet", Group: "kubernetes", Package: "k8s.io/kubernetes/cmd/kubelet"},
	// go build names a binary after the last path element that is not a
	// major version suffix: go.etcd.io/etcd/server/v3 becomes "server".
	{Name: "etcd", Group: "etcd", Package: "go.etcd.io/etcd/server/v3", Out: "server"},
	{Name: "kwok", Group: "kwok", Package: "sigs.k8s.io/kwok/cmd/kwok"},
	{Name: "coredns", Group: "coredns", Package: "github.com/fedscale/fedscale-go/tools/coredns"},
	{Name: "staticcheck", Group: "staticcheck", Package: "honnef.co/go/tools/cmd/staticcheck"},
	{Name: "actionlint", Group: "actionlint", Package: "github.com/rhysd/actionlint/cmd/actionlint"},
}

// kubernetesStamp is what hack/lib/version.sh stamps (gitVersion, major,
// minor) into both version packages; the defaults report v0.0.0-master.
func kubernetesStamp(v string) []string {
	major, rest, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	minor, _, _ := strings.Cut(rest, ".")
	var x []string
	for _, p := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		x = append(x, p+".gitVersion="+v, p+".gitMajor="+major, p+".gitMinor="+minor, p+".gitTreeState=clean")
	}
	return x
}

// LookupTool finds a tool of the table by name.
func LookupTool(name string) (Tool, bool) {
	i := slices.IndexFunc(tools, func(t Tool) bool { return t.Name == name })
	if i < 0 {
		return Tool{}, false
	}
	return tools[i], true
}

// ToolNames lists the known tools, those from Debian packages last.
func ToolNames() []string {
	names := make([]string, 0, len(tools)+len(debTools))
	for _, t := range tools {
		names = append(names, t.Name)
	}
	for _, d := range debTools {
		names = append(names, d.Name)
	}
	return names
}

// Toolbox builds tools once per pinned version into a cache:
// <Cache>/<group>-<version>/bin/<tool>. Binaries appear only by an atomic
// rename, so one that exists is completely built.
type Toolbox struct {
	Root  string // the repository: helper modules under Root/tools
	Cache string // FEDSCALE_TOOLS_CACHE, default ~/.cache/fedscale-tools
	Go    string // the go command (GO, default go)
	// Log gets progress; Stderr gets go build's own output.
	Log    *slog.Logger
	Stderr io.Writer
}

// ToolboxFromEnv is the toolbox for the repository at root, configured as
// scripts/tools.sh was: FEDSCALE_TOOLS_CACHE and GO.
func ToolboxFromEnv(root string, log *slog.Logger) (*Toolbox, error) {
	cache := os.Getenv("FEDSCALE_TOOLS_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("FEDSCALE_TOOLS_CACHE is unset and %w", err)
		}
		cache = filepath.Join(home, ".cache", "fedscale-tools")
	}
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	if _, err := exec.LookPath(goCmd); err != nil {
		// Non-login shells (CI, sudo) may not have the toolchain on PATH.
		goCmd = "/usr/local/go/bin/go"
	}
	return &Toolbox{Root: root, Cache: cache, Go: goCmd, Log: log, Stderr: os.Stderr}, nil
}

// ModuleVersion is the version of module that the go.mod file data (read
// from file, named in errors) requires.
func ModuleVersion(file string, data []byte, module string) (string, error) {
	f, err := modfile.ParseLax(file, data, nil)
	if err != nil {
		return "", err
	}
	for _, r := range f.Require {
		if r.Mod.Path == module {
			return r.Mod.Version, nil
		}
	}
	return "", fmt.Errorf("%s: no requirement of %s", file, module)
}

// build is one group's share of a request.
type build struct {
	group   string
	tools   []Tool
	version string
	key     string // the cache folder <Cache>/<group>-<version>
}

func (b *build) bin() string { return filepath.Join(b.key, "bin") }

func (b *build) missing() []Tool {
	var m []Tool
	for _, t := range b.tools {
		if fi, err := os.Stat(filepath.Join(b.bin(), t.Name)); err != nil || fi.Mode()&0o111 == 0 {
			m = append(m, t)
		}
	}
	return m
}

// plan groups the named tools (a group builds with one go build, so
// shared packages compile once), in the order each group is first named,
// and keys each group's cache folder by its pinned version.
func (tb *Toolbox) plan(names []string) ([]*build, error) {
	var builds []*build
	byGroup := map[string]*build{}
	for _, n := range names {
		t, ok := LookupTool(n)
		if !ok {
			return nil, fmt.Errorf("unknown tool %q (known: %s)", n, strings.Join(ToolNames(), " "))
		}
		b := byGroup[t.Group]
		if b == nil {
			g := toolGroups[t.Group]
			gomod := filepath.Join(tb.Root, "tools", g.dir, "go.mod")
			data, err := os.ReadFile(gomod)
			if err != nil {
				return nil, err
			}
			v, err := ModuleVersion(gomod, data, g.module)
			if err != nil {
				return nil, err
			}
			b = &build{group: t.Group, version: v, key: filepath.Join(tb.Cache, t.Group+"-"+v)}
			byGroup[t.Group] = b
			builds = append(builds, b)
		}
		if !slices.Contains(b.tools, t) {
			b.tools = append(b.tools, t)
		}
	}
	return builds, nil
}

// Dirs returns the bin folder of each named tool's group, one per group in
// the order first named, building what is missing: groups in parallel.
// A tool from Debian packages (debTools) is its own group, fetched after
// the builds; the order of the answer is still the order first named.
func (tb *Toolbox) Dirs(ctx context.Context, names ...string) ([]string, error) {
	var goNames, debNames []string
	for _, n := range names {
		if _, ok := lookupDebTool(n); ok {
			if !slices.Contains(debNames, n) {
				debNames = append(debNames, n)
			}
			continue
		}
		goNames = append(goNames, n)
	}
	if len(debNames) > 0 {
		dirs, err := tb.Dirs(ctx, goNames...)
		if err != nil {
			return nil, err
		}
		byName := map[string]string{}
		for _, n := range debNames {
			d, _ := lookupDebTool(n)
			if byName[n], err = tb.debDir(ctx, d); err != nil {
				return nil, err
			}
		}
		// Merge in first-named order: Go groups come out of dirs in theirs.
		var out []string
		seen := map[string]bool{}
		for _, n := range names {
			dir := byName[n]
			if dir == "" {
				t, _ := LookupTool(n)
				dir = filepath.Join(tb.Cache, t.Group) // prefix of the group's key
				i := slices.IndexFunc(dirs, func(d string) bool { return strings.HasPrefix(d, dir+"-") })
				dir = dirs[i]
			}
			if !seen[dir] {
				seen[dir] = true
				out = append(out, dir)
			}
		}
		return out, nil
	}
	builds, err := tb.plan(names)
	if err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, b := range builds {
		g.Go(func() error { return tb.ensure(gctx, b) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	dirs := make([]string, len(builds))
	for i, b := range builds {
		dirs[i] = b.bin()
	}
	return dirs, nil
}

// Paths returns each named tool's binary, building what is missing.
func (tb *Toolbox) Paths(ctx context.Context, names ...string) (map[string]string, error) {
	dirs, err := tb.Dirs(ctx, names...)
	if err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, n := range names {
		for _, d := range dirs {
			if p := filepath.Join(d, n); isExecutable(p) {
				paths[n] = p
				break
			}
		}
		if paths[n] == "" {
			return nil, fmt.Errorf("no %s in %v after the build", n, dirs)
		}
	}
	return paths, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// ensure builds b's missing tools. A second caller building the same key
// waits on the key's lock, then finds the binaries and skips.
func (tb *Toolbox) ensure(ctx context.Context, b *build) error {
	if len(b.missing()) == 0 {
		return nil
	}
	if err := os.MkdirAll(b.bin(), 0o755); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, filepath.Join(b.key, ".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	todo := b.missing()
	if len(todo) == 0 {
		return nil
	}
	tmp, err := os.MkdirTemp(b.key, ".build.") // same filesystem: the move is a rename
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var names, pkgs []string
	for _, t := range todo {
		names = append(names, t.Name)
		pkgs = append(pkgs, t.Package)
	}
	what := strings.Join(names, " ")
	tb.Log.Info(fmt.Sprintf("building %s (%s %s) into %s ...", what, b.group, b.version, b.bin()))
	start := time.Now()
	cmd := exec.CommandContext(ctx, tb.Go, buildArgs(b.group, b.version, tmp, pkgs)...)
	cmd.Dir = filepath.Join(tb.Root, "tools", toolGroups[b.group].dir)
	// CGO_ENABLED=0: static binaries, as upstream ships buildkitd, the
	// control plane, etcd and kwok. GOWORK=off and -mod=readonly: exactly
	// what tools/<dir>/go.{mod,sum} pin, whatever the caller's environment
	// says (later entries win).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly")
	cmd.Stdout, cmd.Stderr = tb.Stderr, tb.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s (%s %s) in %s: %w", what, b.group, b.version, cmd.Dir, err)
	}
	for _, t := range todo {
		out := t.Out
		if out == "" {
			out = t.Name
		}
		if err := os.Rename(filepath.Join(tmp, out), filepath.Join(b.bin(), t.Name)); err != nil {
			return err
		}
	}
	tb.Log.Info(fmt.Sprintf("built %s in %.0f s", what, time.Since(start).Seconds()))
	return nil
}

// buildArgs is the go build command line of a group: -trimpath (no local
// paths in the binaries), -s -w (a small cache; nobody debugs these
// daemons), and the group's version stamp.
func buildArgs(group, version, outDir string, pkgs []string) []string {
	ldflags := []string{"-s", "-w"}
	if stamp := toolGroups[group].stamp; stamp != nil {
		for _, x := range stamp(version) {
			ldflags = append(ldflags, "-X", x)
		}
	}
	args := []string{"build", "-trimpath", "-ldflags", strings.Join(ldflags, " "), "-o", outDir + string(filepath.Separator)}
	return append(args, pkgs...)
}
