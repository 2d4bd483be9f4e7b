package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/launcher/backend/docker"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
)

// The runtime images the tests run: the aggregator and executor commands
// compiled here and put FROM scratch, built by the engine's legacy builder
// (nothing is pulled).
const (
	aggImage  = "fedscale-test/aggr:launcher"
	execImage = "fedscale-test/exec:launcher"
)

var (
	imagesOnce sync.Once
	imagesErr  error
)

// engine skips (or under CI fails) without a Docker engine, builds the test
// images once per test binary, and returns a backend.
func engine(t testing.TB) *docker.Backend {
	t.Helper()
	infratest.Docker(t)
	imagesOnce.Do(func() { imagesErr = buildImages() })
	if imagesErr != nil {
		t.Fatalf("building the test images: %v", imagesErr)
	}
	b, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func buildImages() error {
	dir, err := os.MkdirTemp("", "fedscale-docker-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, img := range []struct{ name, tag string }{{"aggregator", aggImage}, {"executor", execImage}} {
		ctxDir := filepath.Join(dir, img.name)
		build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(ctxDir, img.name), "github.com/fedscale/fedscale-go/runtime/cmd/"+img.name)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", img.name, err, out)
		}
		dockerfile := fmt.Sprintf("FROM scratch\nCOPY %[1]s /usr/local/bin/%[1]s\nUSER 65532\nENTRYPOINT [\"/usr/local/bin/%[1]s\"]\n", img.name)
		if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
			return err
		}
		cmd := exec.Command("docker", "build", "-q", "-t", img.tag, ctxDir)
		cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("docker build %s: %v\n%s", img.tag, err, out)
		}
	}
	return nil
}

// jobFile is a docker job: the data set and logs live in data_path, which
// the containers see at /FedScale/benchmark.
const jobFile = `# FedScale job for the docker backend's tests
use_container: docker
data_path: %s
num_executors: %d
job_conf:
    - job_name: %s
    - log_path: /FedScale/benchmark
    - time_stamp: run1
    - data_set: synthetic
    - grey_input: True                  # our key: the images as stored, 1 grey channel
    - data_dir: /FedScale/benchmark/data
    - model: logistic
    - num_participants: 6
    - eval_interval: 2
    - rounds: %d
    - filter_less: 10
    - local_steps: 5
    - learning_rate: 0.05
    - batch_size: 10
    - test_bsz: 20
    - use_cuda: False
`

// testJob writes a synthetic data set and a job file for a uniquely named
// job, and registers a cleanup that removes whatever carries its label.
type testJob struct {
	name, data, file string
	spec             *job.Spec
}

func newJob(t testing.TB, b *docker.Backend, executors, rounds int) *testJob {
	t.Helper()
	j := &testJob{name: uniqueName(t), data: t.TempDir()}
	// The images run as uid 65532; the folder is root's (so the backend
	// keeps the image's user) and must let it write the logs.
	if err := os.Chmod(j.data, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := jobtest.WriteSynthetic(filepath.Join(j.data, "data"), jobtest.SynthOptions{Clients: 20, PerClient: 30, Test: 100, Classes: 4, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	j.file = filepath.Join(t.TempDir(), "conf.yml")
	if err := os.WriteFile(j.file, []byte(fmt.Sprintf(jobFile, j.data, executors, j.name, rounds)), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if j.spec, err = job.Load(j.file, job.Options{AggregatorImage: aggImage, ExecutorImage: execImage}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeByLabel(t, b.Client(), j.name) })
	return j
}

func uniqueName(t testing.TB) string {
	var r [3]byte
	_, _ = rand.Read(r[:])
	base := job.SanitizeName(strings.TrimPrefix(t.Name(), "Test"))
	if len(base) > 20 {
		base = strings.Trim(base[:20], "-")
	}
	return base + "-" + hex.EncodeToString(r[:])
}

// removeByLabel removes every container and network of a job, whatever
// state the test left them in.
func removeByLabel(t testing.TB, c *client.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := make(client.Filters).Add("label", job.LabelJob+"="+name)
	cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, it := range cs.Items {
		if _, err := c.ContainerRemove(ctx, it.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	ns, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, n := range ns.Items {
		if _, err := c.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// leftovers counts the containers and networks labelled with the job.
func leftovers(t testing.TB, c *client.Client, name string) (containers, networks int) {
	t.Helper()
	ctx := context.Background()
	f := make(client.Filters).Add("label", job.LabelJob+"="+name)
	cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	return len(cs.Items), len(ns.Items)
}

func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A host whose engine cannot be reached fails the submit with one error
// naming the host and the engine, before anything is made on the others.
func TestHostEngineUnreachable(t *testing.T) {
	infratest.Docker(t)
	const engineB = "unix:///nonexistent/fedscale-b.sock"
	name := uniqueName(t)
	file := fmt.Sprintf(`use_container: docker
data_path: %s
ps_ip: localhost
worker_ips: ['host-b:[2]']
container_network: fedscale-net-unreachable
docker_engines: {host-b: %s}
job_conf:
    - job_name: %s
    - model: logistic
`, t.TempDir(), engineB, name)
	spec, err := job.Parse([]byte(file), "conf.yml", job.Options{AggregatorImage: aggImage, ExecutorImage: execImage})
	if err != nil {
		t.Fatal(err)
	}
	b, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t.Cleanup(func() { removeByLabel(t, b.Client(), name) })
	err = b.Submit(timeout(t, time.Minute), spec)
	var ee *docker.EngineError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "the Docker engine of worker_ips host host-b at "+engineB) {
		t.Fatalf("Submit: %v, want an EngineError naming host-b and %s", err, engineB)
	}
	if n := containerIDs(t, b.Client(), name); len(n) != 0 {
		t.Errorf("%d containers of the job left on the default engine", len(n))
	}
}
