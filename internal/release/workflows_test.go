package release

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/fedscale/fedscale-go/builder/build"
	"github.com/fedscale/fedscale-go/builder/pins"
)

// These tests read .github/workflows/{ci,release}.yml and keep them honest:
// actions pinned by SHA, minimal permissions, the release gated on CI, and,
// above all, the release's fsbuild calls equal to `make release-dryrun`'s but
// for where the images go. The latter runs the workflow's own steps (bash)
// with stand-ins for sudo, fsbuild and cosign, and the dry-run's --plan mode
// with the same fsbuild stand-in, and compares what fsbuild was asked.

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ".github", "workflows", "release.yml")); err != nil {
		t.Fatalf("no release workflow: %v", err)
	}
	return root
}

type workflow struct {
	Name        string            `yaml:"name"`
	On          yaml.Node         `yaml:"on"`
	Permissions yaml.Node         `yaml:"permissions"`
	Env         map[string]string `yaml:"env"`
	Jobs        map[string]*job   `yaml:"jobs"`
	node        yaml.Node
}

type job struct {
	Needs       yaml.Node         `yaml:"needs"`
	Uses        string            `yaml:"uses"`
	Permissions map[string]string `yaml:"permissions"`
	Env         map[string]string `yaml:"env"`
	Steps       []step            `yaml:"steps"`
}

type step struct {
	ID    string            `yaml:"id"`
	Name  string            `yaml:"name"`
	Uses  string            `yaml:"uses"`
	Run   string            `yaml:"run"`
	Shell string            `yaml:"shell"`
	With  map[string]string `yaml:"with"`
	Env   map[string]string `yaml:"env"`
}

func loadWorkflow(t *testing.T, name string) *workflow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".github", "workflows", name))
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(data, &w.node); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := w.node.Decode(&w); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &w
}

// uses lists every `uses:` value node of a workflow (steps and reusable-
// workflow jobs), with its line comment.
func usesNodes(n *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "uses" && n.Content[i+1].Kind == yaml.ScalarNode {
				out = append(out, n.Content[i+1])
			}
		}
	}
	for _, c := range n.Content {
		out = append(out, usesNodes(c)...)
	}
	return out
}

var (
	pinnedRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@]+)?@[0-9a-f]{40}$`)
	versionRE = regexp.MustCompile(`^# v[0-9]+\.[0-9]+\.[0-9]+$`)
)

// knownInputs are the inputs of the actions we pin: actionlint checks inputs
// only for actions it knows by tag, never for a SHA, so a typo would pass.
var knownInputs = map[string][]string{
	"actions/checkout":          {"fetch-depth", "persist-credentials", "ref", "fetch-tags", "submodules", "path"},
	"actions/setup-go":          {"go-version-file", "go-version", "cache", "cache-dependency-path", "check-latest"},
	"actions/cache":             {"path", "key", "restore-keys", "enableCrossOsArchive", "fail-on-cache-miss", "lookup-only"},
	"docker/login-action":       {"registry", "username", "password", "logout"},
	"sigstore/cosign-installer": {"cosign-release", "install-dir", "use-sudo"},
}

func TestActionsPinnedBySHA(t *testing.T) {
	for _, name := range []string{"ci.yml", "release.yml"} {
		w := loadWorkflow(t, name)
		n := 0
		for _, u := range usesNodes(&w.node) {
			if strings.HasPrefix(u.Value, "./") {
				continue // this repository's own reusable workflow
			}
			n++
			if !pinnedRE.MatchString(u.Value) {
				t.Errorf("%s:%d: uses %s: pin third-party actions by full commit SHA", name, u.Line, u.Value)
			}
			if !versionRE.MatchString(u.LineComment) {
				t.Errorf("%s:%d: uses %s: want a `# vX.Y.Z` comment naming the release, got %q", name, u.Line, u.Value, u.LineComment)
			}
		}
		if n == 0 {
			t.Errorf("%s: no actions found (parser out of step with the file?)", name)
		}
		for jn, j := range w.Jobs {
			for _, s := range j.Steps {
				if s.Uses == "" {
					continue
				}
				action := s.Uses[:strings.Index(s.Uses, "@")]
				allowed, ok := knownInputs[action]
				if !ok {
					t.Errorf("%s: job %s uses %s: add its inputs to knownInputs", name, jn, action)
					continue
				}
				for in := range s.With {
					if !slices.Contains(allowed, in) {
						t.Errorf("%s: job %s: %s has no input %q (known: %v)", name, jn, action, in, allowed)
					}
				}
			}
		}
	}
}

func TestPermissionsMinimal(t *testing.T) {
	for _, name := range []string{"ci.yml", "release.yml"} {
		w := loadWorkflow(t, name)
		if w.Permissions.Kind != yaml.MappingNode || len(w.Permissions.Content) != 0 {
			t.Errorf("%s: top-level permissions must be {} (each job asks for its own)", name)
		}
		for jn, j := range w.Jobs {
			if len(j.Permissions) == 0 {
				t.Errorf("%s: job %s has no permissions block", name, jn)
			}
			for scope, level := range j.Permissions {
				if level == "read" || level == "none" {
					continue
				}
				allowed := name == "release.yml" && jn == "publish" && (scope == "contents" || scope == "id-token")
				if !allowed {
					t.Errorf("%s: job %s: %s: %s is more than it needs", name, jn, scope, level)
				}
			}
		}
	}
	p := loadWorkflow(t, "release.yml").Jobs["publish"]
	if p == nil || p.Permissions["id-token"] != "write" || p.Permissions["contents"] != "write" {
		t.Errorf("release.yml: the publish job needs id-token: write (keyless cosign) and contents: write (the GitHub release)")
	}
}

// triggers returns the event names of `on:` and the node of each.
func triggers(t *testing.T, on yaml.Node) map[string]*yaml.Node {
	t.Helper()
	m := map[string]*yaml.Node{}
	switch on.Kind {
	case yaml.ScalarNode:
		m[on.Value] = &yaml.Node{}
	case yaml.SequenceNode:
		for _, c := range on.Content {
			m[c.Value] = &yaml.Node{}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(on.Content); i += 2 {
			m[on.Content[i].Value] = on.Content[i+1]
		}
	default:
		t.Fatalf("on: unexpected YAML kind %v", on.Kind)
	}
	return m
}

func TestCIWorkflow(t *testing.T) {
	w := loadWorkflow(t, "ci.yml")
	on := triggers(t, w.On)
	for _, ev := range []string{"pull_request", "push", "workflow_call"} {
		if _, ok := on[ev]; !ok {
			t.Errorf("ci.yml: not triggered by %s", ev)
		}
	}
	var runs []string
	for _, j := range w.Jobs {
		for _, s := range j.Steps {
			runs = append(runs, s.Run)
		}
	}
	all := strings.Join(runs, "\n")
	for _, want := range []string{"go vet ./...", "staticcheck", "scripts/actionlint.sh", ".ci/run", "make e2e"} {
		if !strings.Contains(all, want) {
			t.Errorf("ci.yml: no step runs %q", want)
		}
	}
}

func TestReleaseWorkflowShape(t *testing.T) {
	w := loadWorkflow(t, "release.yml")
	on := triggers(t, w.On)
	if len(on) != 1 || on["push"] == nil {
		t.Fatalf("release.yml: want only `on: push: tags`, got %v", on)
	}
	var push struct {
		Tags     []string `yaml:"tags"`
		Branches []string `yaml:"branches"`
	}
	if err := on["push"].Decode(&push); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(push.Tags, []string{"v*"}) || len(push.Branches) != 0 {
		t.Errorf("release.yml: push filter tags=%v branches=%v, want tags [v*] only", push.Tags, push.Branches)
	}

	// The tests: CI's own jobs, and publish only after them.
	var ciJob string
	for jn, j := range w.Jobs {
		if j.Uses == "./.github/workflows/ci.yml" {
			ciJob = jn
		}
	}
	if ciJob == "" {
		t.Fatal("release.yml: no job calls ./.github/workflows/ci.yml (the tests)")
	}
	p := w.Jobs["publish"]
	if p == nil {
		t.Fatal("release.yml: no publish job")
	}
	var needs []string
	switch p.Needs.Kind {
	case yaml.ScalarNode:
		needs = []string{p.Needs.Value}
	case yaml.SequenceNode:
		for _, c := range p.Needs.Content {
			needs = append(needs, c.Value)
		}
	}
	if !slices.Contains(needs, ciJob) {
		t.Errorf("release.yml: publish needs %v, want it to wait for %s", needs, ciJob)
	}

	// Step order: buildkitd and the registry login before the pins check
	// and the push; signing after the push; the GitHub release last.
	pos := map[string]int{}
	for i, s := range p.Steps {
		if s.ID != "" {
			pos[s.ID] = i
		}
		if strings.HasPrefix(s.Uses, "sigstore/cosign-installer@") {
			pos["cosign-installer"] = i
		}
		if strings.Contains(s.Run, "${{") {
			t.Errorf("release.yml: step %q expands ${{ }} inside its script: pass values through env:", s.Name)
		}
	}
	for _, order := range [][2]string{
		{"buildkitd", "images"}, {"login", "pins"}, {"pins", "images"}, {"images", "sign"},
		{"cosign-installer", "sign"}, {"images", "notes"}, {"sign", "release"}, {"binaries", "release"}, {"notes", "release"},
	} {
		a, okA := pos[order[0]]
		b, okB := pos[order[1]]
		if !okA || !okB {
			t.Errorf("release.yml: publish lacks step %q or %q", order[0], order[1])
			continue
		}
		if a >= b {
			t.Errorf("release.yml: step %q must come before %q", order[0], order[1])
		}
	}
	step := func(id string) step {
		if i, ok := pos[id]; ok {
			return p.Steps[i]
		}
		return step{}
	}
	if l := step("login"); !strings.HasPrefix(l.Uses, "docker/login-action@") ||
		l.With["username"] != "${{ secrets.DOCKERHUB_USERNAME }}" || l.With["password"] != "${{ secrets.DOCKERHUB_TOKEN }}" {
		t.Errorf("release.yml: login step %+v: want docker/login-action with secrets DOCKERHUB_USERNAME and DOCKERHUB_TOKEN", l)
	}
	for _, s := range p.Steps {
		for k, v := range s.Env {
			if strings.Contains(v, "secrets.") {
				t.Errorf("release.yml: step %q puts a secret in env %s: registry credentials go to docker/login-action only", s.Name, k)
			}
		}
	}
	if !strings.Contains(step("pins").Run, "fsbuild pin --check") {
		t.Errorf("release.yml: the pins step must run `fsbuild pin --check`, got %q", step("pins").Run)
	}
	if !strings.Contains(step("buildkitd").Run, "scripts/buildkitd.sh start") {
		t.Errorf("release.yml: buildkitd must come from scripts/buildkitd.sh start, got %q", step("buildkitd").Run)
	}
	if r := step("binaries").Run; !strings.Contains(r, "scripts/release.sh binaries") {
		t.Errorf("release.yml: binaries step %q", r)
	}
	if r := step("release").Run; !strings.Contains(r, "gh release create") || !strings.Contains(r, "--notes-file") || !strings.Contains(r, "/dist/*") {
		t.Errorf("release.yml: release step must create the GitHub release with the notes and every file of dist/, got %q", r)
	}
}

// stubs writes stand-ins for sudo (runs its command), fsbuild (records its
// arguments, one call a line, NUL-separated, and writes a made-up digest for
// each image it would build) and cosign (records its arguments) into a
// fresh folder, and returns it.
func stubs(t *testing.T) (dir, calls string) {
	t.Helper()
	dir = t.TempDir()
	calls = filepath.Join(dir, "calls")
	files := map[string]string{
		"sudo": `#!/usr/bin/env bash
while [[ ${1:-} == -* ]]; do shift; done
exec "$@"
`,
		"fsbuild": `#!/usr/bin/env bash
# Records the call, then acts out --print-digest like fsbuild would.
printf '%s\0' fsbuild "$@" >>"$STUB_CALLS"; echo >>"$STUB_CALLS"
repo=fedscale cuda= out= sub=$1
while [ $# -gt 0 ]; do
	case $1 in
	--repo) repo=$2; shift ;;
	--cuda) cuda=-cuda$2; shift ;;
	--print-digest) out=$2; shift ;;
	esac
	shift
done
[ -n "$out" ] || exit 0
: >"$out"
for img in fedscale-aggr fedscale-exec; do
	case $sub in aggr) [ $img = fedscale-aggr ] || continue ;; exec) [ $img = fedscale-exec ] || continue ;; esac
	d=$(printf '%s' "$repo/$img$cuda" | sha256sum | cut -d' ' -f1)
	echo "$repo/$img:v0.0.0-stub$cuda@sha256:$d" >>"$out"
done
`,
		"cosign": `#!/usr/bin/env bash
printf '%s\0' cosign "$@" >>"$STUB_CALLS"; echo >>"$STUB_CALLS"
`,
	}
	for n, body := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, calls
}

// readCalls returns the recorded calls of one program.
func readCalls(t *testing.T, path, prog string) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out [][]string
	for _, line := range strings.Split(string(data), "\n") {
		args := strings.Split(strings.TrimSuffix(line, "\x00"), "\x00")
		if len(args) > 0 && args[0] == prog {
			out = append(out, args[1:])
		}
	}
	return out
}

// runStep runs a workflow step's script the way a GitHub-hosted runner does
// (bash --noprofile --norc -eo pipefail), in the repository root, with the
// job's and the step's env, then overrides.
func runStep(t *testing.T, root string, j *job, s step, override map[string]string) string {
	t.Helper()
	if s.Run == "" {
		t.Fatalf("step %q has no script", s.Name)
	}
	if s.Shell != "" && s.Shell != "bash" {
		t.Fatalf("step %q: shell %q; the test runs bash", s.Name, s.Shell)
	}
	script := filepath.Join(t.TempDir(), "step.sh")
	if err := os.WriteFile(script, []byte(s.Run), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
	cmd.Dir = root
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, m := range []map[string]string{j.Env, s.Env, override} {
		for k, v := range m {
			env[k] = v
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("step %q: %v\n%s", s.Name, err, out.String())
	}
	return out.String()
}

// fsbuildCall is one fsbuild invocation split into what says where the
// images go and everything else.
type fsbuildCall struct {
	rest       []string // subcommand and every other flag, in order
	repo       string
	insecure   []string
	base       string
	allowDirty bool
}

func parseCall(t *testing.T, args []string) fsbuildCall {
	t.Helper()
	var c fsbuildCall
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func() string {
			if i+1 >= len(args) {
				t.Fatalf("fsbuild %v: %s without a value", args, a)
			}
			i++
			return args[i]
		}
		switch {
		case a == "--repo":
			c.repo = val()
		case a == "--insecure-registry":
			c.insecure = append(c.insecure, val())
		case a == "--base":
			c.base = val()
		case a == "--print-digest":
			val() // a file of the caller's choosing
		case a == "--allow-dirty":
			c.allowDirty = true
		case strings.HasPrefix(a, "--repo=") || strings.HasPrefix(a, "--base=") || strings.HasPrefix(a, "--insecure-registry="):
			t.Fatalf("fsbuild %v: write %s as two words", args, a)
		default:
			c.rest = append(c.rest, a)
		}
	}
	return c
}

// flagValue returns the value of --name in args, and whether it is there.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// TestReleaseMatchesDryRun is the drift check: release.yml's images step and
// `scripts/release-dryrun.sh` (make release-dryrun) must ask fsbuild for the
// same builds, differing only in where the images go (--repo,
// --insecure-registry), the stand-in CUDA --base and, on a dirty work tree,
// --allow-dirty; and those builds must be both images, both platforms, CPU
// and CUDA, pushed. Then the sign step must sign every pushed digest by
// digest.
func TestReleaseMatchesDryRun(t *testing.T) {
	root := repoRoot(t)
	w := loadWorkflow(t, "release.yml")
	p := w.Jobs["publish"]
	if p == nil {
		t.Fatal("release.yml: no publish job")
	}
	steps := map[string]step{}
	for _, s := range p.Steps {
		steps[s.ID] = s
	}

	// The workflow's images step, then its sign and notes steps.
	stubDir, calls := stubs(t)
	out := t.TempDir()
	override := map[string]string{
		"PATH":              stubDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"FSBUILD":           filepath.Join(stubDir, "fsbuild"),
		"STUB_CALLS":        calls,
		"RELEASE_OUT":       out,
		"GITHUB_ENV":        filepath.Join(out, "github-env"),
		"GITHUB_WORKSPACE":  root,
		"GITHUB_REF_NAME":   "v0.0.0-stub",
		"GITHUB_REPOSITORY": "fedscale/fedscale-go",
		"RELEASE_CUDA_BASE": "", // never set in a release
	}
	runStep(t, root, p, steps["images"], override)
	release := readCalls(t, calls, "fsbuild")
	digests, err := os.ReadFile(filepath.Join(out, "digests.txt"))
	if err != nil {
		t.Fatalf("the images step left no $RELEASE_OUT/digests.txt: %v", err)
	}
	refs, _ := ReadDigests(bytes.NewReader(digests))

	runStep(t, root, p, steps["sign"], override)
	var signed []string
	for _, c := range readCalls(t, calls, "cosign") {
		if len(c) != 3 || c[0] != "sign" || c[1] != "--yes" {
			t.Errorf("cosign %v: want cosign sign --yes NAME@DIGEST", c)
			continue
		}
		signed = append(signed, c[2])
	}
	var want []string
	for _, r := range refs {
		at := strings.LastIndex(r, "@")
		name := r[:at]
		if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
			name = name[:i]
		}
		want = append(want, name+r[at:])
	}
	if len(want) == 0 || !slices.Equal(signed, want) {
		t.Errorf("signed %v, want every pushed digest by digest: %v", signed, want)
	}

	runStep(t, root, p, steps["notes"], override)
	notes, err := os.ReadFile(filepath.Join(out, "notes.md"))
	if err != nil {
		t.Fatalf("the notes step left no $RELEASE_OUT/notes.md: %v", err)
	}
	for _, r := range refs {
		if !strings.Contains(string(notes), r[strings.LastIndex(r, "@")+1:]) {
			t.Errorf("release notes lack the digest of %s", r)
		}
	}

	// The dry-run's plan: the same fsbuild stand-in, no registry, no buildkitd.
	if err := os.Remove(calls); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "release-dryrun.sh"), "--plan")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+override["PATH"], "FSBUILD="+override["FSBUILD"], "STUB_CALLS="+calls)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release-dryrun.sh --plan: %v\n%s", err, b)
	}
	dry := readCalls(t, calls, "fsbuild")

	// Same calls but for where the images go.
	if len(release) != len(dry) {
		t.Fatalf("release.yml makes %d fsbuild calls, the dry-run %d:\n%q\n%q", len(release), len(dry), release, dry)
	}
	repoRE := regexp.MustCompile(`^127\.0\.0\.1:[0-9]+/fedscale$`)
	for i := range release {
		r, d := parseCall(t, release[i]), parseCall(t, dry[i])
		if !slices.Equal(r.rest, d.rest) {
			t.Errorf("fsbuild call %d differs beyond where the images go:\n release.yml: %q\n dry-run:     %q", i, r.rest, d.rest)
		}
		if r.repo != "docker.io/fedscale" || len(r.insecure) != 0 || r.base != "" || r.allowDirty {
			t.Errorf("release.yml's fsbuild call %d: --repo %q, --insecure-registry %v, --base %q, --allow-dirty %v; want docker.io/fedscale and none of the others", i, r.repo, r.insecure, r.base, r.allowDirty)
		}
		if !repoRE.MatchString(d.repo) || !slices.Equal(d.insecure, []string{strings.TrimSuffix(d.repo, "/fedscale")}) {
			t.Errorf("dry-run fsbuild call %d: --repo %q --insecure-registry %v, want a loopback registry", i, d.repo, d.insecure)
		}
		_, cuda := flagValue(d.rest, "--cuda")
		if cuda != (d.base != "") {
			t.Errorf("dry-run fsbuild call %d: --base %q; want the stand-in exactly on the CUDA calls", i, d.base)
		}
	}

	// What the release builds: both images, both platforms, CPU and CUDA.
	pinned, err := pins.Load(filepath.Join(root, pins.File))
	if err != nil {
		t.Fatal(err)
	}
	type variant struct{ image, cuda string }
	built := map[variant]int{}
	for _, args := range release {
		c := parseCall(t, args)
		if len(c.rest) == 0 {
			t.Fatalf("fsbuild %v: no subcommand", args)
		}
		var images []string
		switch c.rest[0] {
		case "all":
			for _, comp := range build.Components {
				images = append(images, comp.Name)
			}
		case "aggr", "exec":
			images = []string{c.rest[0]}
		default:
			t.Fatalf("fsbuild %v: subcommand %q does not build images", args, c.rest[0])
		}
		if !slices.Contains(c.rest, "--push") {
			if o, _ := flagValue(c.rest, "--output"); o != "registry" {
				t.Errorf("fsbuild %v: does not push", args)
			}
		}
		pl, _ := flagValue(c.rest, "--platform")
		got := strings.Split(pl, ",")
		slices.Sort(got)
		if !slices.Equal(got, ReleasePlatforms) {
			t.Errorf("fsbuild %v: --platform %q, want %s", args, pl, strings.Join(ReleasePlatforms, ","))
		}
		if _, ok := flagValue(c.rest, "--tag"); ok {
			t.Errorf("fsbuild %v: --tag: a release is tagged by git describe (the v* tag) and the commit", args)
		}
		cuda, _ := flagValue(c.rest, "--cuda")
		if cuda != "" {
			if _, err := pinned.Lookup(cuda); err != nil {
				t.Errorf("fsbuild %v: %v", args, err)
			}
		}
		for _, img := range images {
			built[variant{img, cuda}]++
		}
	}
	cudas := map[string]bool{}
	for v, n := range built {
		if n != 1 {
			t.Errorf("%s (cuda %q) built %d times", v.image, v.cuda, n)
		}
		if v.cuda != "" {
			cudas[v.cuda] = true
		}
	}
	if len(cudas) == 0 {
		t.Error("the release builds no CUDA variant")
	}
	for _, comp := range build.Components {
		for _, cuda := range append([]string{""}, slices.Sorted(func(yield func(string) bool) {
			for c := range cudas {
				if !yield(c) {
					return
				}
			}
		})...) {
			if built[variant{comp.Name, cuda}] == 0 {
				t.Errorf("the release does not build %s (cuda %q)", comp.Image, cuda)
			}
		}
	}
	if len(refs) != len(built) {
		t.Errorf("digests.txt has %d lines, want one per image built (%d): %q", len(refs), len(built), refs)
	}
	t.Logf("release.yml and the dry-run agree on %d fsbuild calls, %d images:\n%s", len(release), len(built), fmt.Sprint(release))
}
