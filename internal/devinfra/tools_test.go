package devinfra

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestModuleVersion(t *testing.T) {
	for _, tc := range []struct {
		name, gomod, module, want, err string
	}{
		{"require block", "module x\n\ngo 1.26\n\ntool github.com/moby/buildkit/cmd/buildkitd\n\nrequire (\n\tgithub.com/moby/buildkit v0.34.2\n\tgithub.com/moby/buildkit/other v1.0.0\n)\n",
			"github.com/moby/buildkit", "v0.34.2", ""},
		{"one-line require", "module x\nrequire sigs.k8s.io/kwok v0.8.0 // indirect\n", "sigs.k8s.io/kwok", "v0.8.0", ""},
		{"a module named like a prefix is another module", "module x\nrequire k8s.io/kubernetesx v0.9.0\n", "k8s.io/kubernetes", "", "no requirement of k8s.io/kubernetes"},
		{"only a tool directive", "module x\ntool honnef.co/go/tools/cmd/staticcheck\n", "honnef.co/go/tools", "", "no requirement"},
		{"not a go.mod", "module x\nrequire (\n", "a", "", "go.mod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ModuleVersion("tools/x/go.mod", []byte(tc.gomod), tc.module)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "tools/x/go.mod") {
					t.Fatalf("err = %v, want one naming the file and %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("= %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// fakeRoot is a repository whose helper modules pin version v of every
// group's key module (with the major version a /vN module path demands).
func fakeRoot(t *testing.T, v string) string {
	root := t.TempDir()
	for _, g := range toolGroups {
		dir := filepath.Join(root, "tools", g.dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(filepath.Join(dir, "go.mod"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		mv := v
		if i := strings.LastIndex(g.module, "/v"); i >= 0 && !strings.Contains(g.module[i+2:], ".") {
			mv = "v" + g.module[i+2:] + v[strings.Index(v, "."):]
		}
		if _, err := f.WriteString("require " + g.module + " " + mv + "\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return root
}

func testToolbox(t *testing.T, root, goCmd string) *Toolbox {
	return &Toolbox{Root: root, Cache: t.TempDir(), Go: goCmd, Stderr: io.Discard,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// The cache folder is <cache>/<group>-<version of the group's key module>,
// as scripts/tools.sh keyed it, so its cache is reused as it is; a group
// is listed once, in the order first named.
func TestToolCacheKeying(t *testing.T) {
	tb := testToolbox(t, fakeRoot(t, "v1.2.3"), "/nonexistent/go")
	builds, err := tb.plan([]string{"kube-apiserver", "etcd", "kwok", "kube-scheduler", "etcd", "buildkitd", "staticcheck", "actionlint"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, b := range builds {
		keys = append(keys, strings.TrimPrefix(b.key, tb.Cache+"/"))
	}
	want := []string{"kubernetes-v1.2.3", "etcd-v3.2.3", "kwok-v1.2.3", "buildkit-v1.2.3", "staticcheck-v1.2.3", "actionlint-v1.2.3"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
	if n := len(builds[0].tools); n != 2 {
		t.Errorf("the kubernetes group builds %d tools, want kube-apiserver and kube-scheduler", n)
	}
	if _, err := tb.plan([]string{"kube-proxy"}); err == nil || !strings.Contains(err.Error(), `unknown tool "kube-proxy" (known: buildkitd`) {
		t.Errorf("an unknown tool: %v", err)
	}
}

// The keys of this repository's pins are the folders the cache holds:
// <group>-<the version tools/<dir>/go.mod requires>.
func TestToolCacheKeyingRepository(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tb := testToolbox(t, root, "/nonexistent/go")
	var names []string
	for _, tool := range tools {
		names = append(names, tool.Name)
	}
	builds, err := tb.plan(names)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range builds {
		g := toolGroups[b.group]
		data, err := os.ReadFile(filepath.Join(root, "tools", g.dir, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		pinned := regexp.MustCompile(`(?m)^\s*(require\s+)?` + regexp.QuoteMeta(g.module+" "+b.version) + `(\s|$)`)
		if !pinned.Match(data) || !strings.HasSuffix(b.key, "/"+b.group+"-"+b.version) {
			t.Errorf("group %s: key %s does not match %s in %s/go.mod", b.group, b.key, b.version, g.dir)
		}
	}
}

// A cache that holds the binaries is used as it is: no build (the go
// command here does not even exist).
func TestToolCacheHit(t *testing.T) {
	tb := testToolbox(t, fakeRoot(t, "v0.34.2"), "/nonexistent/go")
	bin := filepath.Join(tb.Cache, "buildkit-v0.34.2", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"buildkitd", "buildctl"} {
		if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dirs, err := tb.Dirs(context.Background(), "buildkitd", "buildctl")
	if err != nil || !slices.Equal(dirs, []string{bin}) {
		t.Fatalf("Dirs = %q, %v; want [%s] without a build", dirs, err, bin)
	}
	// A missing binary is built: with this go command, that fails.
	if err := os.Remove(filepath.Join(bin, "buildctl")); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Dirs(context.Background(), "buildkitd", "buildctl"); err == nil || !strings.Contains(err.Error(), "building buildctl (buildkit v0.34.2)") {
		t.Fatalf("Dirs with buildctl missing: %v, want a build of buildctl only", err)
	}
}

// fakeGo stands in for the go command: it records its arguments and
// environment, and writes the binaries go build would name.
const fakeGo = `#!/bin/sh
echo "$PWD|$CGO_ENABLED|$GOWORK|$GOFLAGS|$*" >>"$FAKEGO_LOG"
out=""
while [ $# -gt 0 ]; do
	case $1 in
	-o) out=$2; shift ;;
	-ldflags) shift ;;
	build | -trimpath) ;;
	*) b=${1##*/}; case $b in v[0-9]*) b=${1%/*}; b=${b##*/} ;; esac; echo fake >"$out/$b"; chmod +x "$out/$b" ;;
	esac
	shift
done
`

// Cold builds: one go build per group, groups in parallel, in the helper
// module with the pinned environment and the version stamp; etcd's
// "server" is renamed.
func TestToolBuild(t *testing.T) {
	root := fakeRoot(t, "v1.37.2")
	goCmd := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(goCmd, []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "log")
	t.Setenv("FAKEGO_LOG", logPath)
	t.Setenv("GOFLAGS", "-mod=mod") // the caller's; the build must override it
	tb := testToolbox(t, root, goCmd)
	var progress strings.Builder
	tb.Log = slog.New(slog.NewTextHandler(&progress, nil))
	paths, err := tb.Paths(context.Background(), "kube-apiserver", "etcd", "kube-scheduler")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(tb.Cache, "etcd-v3.37.2", "bin", "etcd"); paths["etcd"] != want {
		t.Errorf("etcd at %s, want %s", paths["etcd"], want)
	}
	for n, p := range paths {
		if !isExecutable(p) {
			t.Errorf("%s: %s is not an executable", n, p)
		}
	}
	log, _ := os.ReadFile(logPath)
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d go builds, want 2 (kubernetes, etcd):\n%s", len(lines), log)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, filepath.Join(root, "tools", "k8s")+"|0|off|-mod=readonly|build -trimpath -ldflags -s -w") {
			t.Errorf("go build ran as %q", l)
		}
		if strings.Contains(l, "kube-apiserver") && !strings.Contains(l, "-X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37") {
			t.Errorf("kubernetes build lacks the version stamp: %q", l)
		}
	}
	for _, want := range []string{"building kube-apiserver kube-scheduler (kubernetes v1.37.2)", "building etcd (etcd v3.37.2)", "built etcd in"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
	// Built once: a second call finds everything.
	if _, err := tb.Paths(context.Background(), "kube-apiserver", "etcd", "kube-scheduler"); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(logPath); string(again) != string(log) {
		t.Errorf("a second call built again:\n%s", again)
	}
}

// A Debian-package tool whose libraries are in the cache is used as it is
// (apt-get is not even on PATH), and Dirs answers in first-named order
// across both kinds of tools.
func TestDebToolCacheHit(t *testing.T) {
	tb := testToolbox(t, fakeRoot(t, "v0.34.2"), "/nonexistent/go")
	t.Setenv("PATH", "")
	d, _ := lookupDebTool("nvrtc")
	lib := filepath.Join(tb.Cache, "nvrtc-"+d.Version, "lib")
	bin := filepath.Join(tb.Cache, "buildkit-v0.34.2", "bin")
	for _, f := range []string{filepath.Join(lib, d.Want), filepath.Join(bin, "buildkitd")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		names []string
		want  []string
	}{
		{[]string{"nvrtc"}, []string{lib}},
		{[]string{"nvrtc", "buildkitd", "nvrtc"}, []string{lib, bin}},
		{[]string{"buildkitd", "nvrtc"}, []string{bin, lib}},
	} {
		got, err := tb.Dirs(context.Background(), tc.names...)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Dirs(%v) = %v, %v; want %v", tc.names, got, err, tc.want)
		}
	}
	if !slices.Contains(ToolNames(), "nvrtc") {
		t.Error("ToolNames does not list nvrtc")
	}
}
