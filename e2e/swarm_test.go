package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/internal/devinfra"
	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// The hosts of the swarm's jobs, as ps_ip and worker_ips name them: keys
// of docker_engines, never dialled themselves.
const (
	hostA = "host-a"
	hostB = "host-b"
)

// swarmEngines are the test swarm's engines with the suite's images in
// them (loaded once from the main engine, as `docker save | docker load`:
// no registry).
type swarmEngines struct {
	addr [2]string
	cli  [2]*client.Client
}

var (
	swarmOnce sync.Once
	swarmEnv  swarmEngines
	swarmErr  error
)

// needSwarm returns the prepared suite and the swarm, or skips (or under
// CI fails) without them.
func needSwarm(t *testing.T) (*suite, *swarmEngines) {
	t.Helper()
	s := need(t)
	addrs := infratest.Swarm(t)
	swarmOnce.Do(func() { swarmErr = swarmEnv.load(s, addrs) })
	if swarmErr != nil {
		t.Fatalf("loading the images into the swarm's engines: %v", swarmErr)
	}
	return s, &swarmEnv
}

func (w *swarmEngines) load(s *suite, addrs [2]string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	w.addr = addrs
	for i, a := range addrs {
		c, err := client.New(client.WithHost(a))
		if err != nil {
			return err
		}
		w.cli[i] = c
		t0 := time.Now()
		saved, err := s.docker.ImageSave(ctx, []string{s.aggImage, s.execImage})
		if err != nil {
			return fmt.Errorf("saving the images: %w", err)
		}
		res, err := c.ImageLoad(ctx, saved, client.ImageLoadWithQuiet(true))
		if err == nil {
			_, err = io.Copy(io.Discard, res)
			res.Close()
		}
		saved.Close()
		if err != nil {
			return fmt.Errorf("loading the images into %s: %w", a, err)
		}
		logf("images loaded into %s in %.1f s", a, time.Since(t0).Seconds())
	}
	return nil
}

// teardownSwarm removes the images from the swarm's engines.
func teardownSwarm(s *suite) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range swarmEnv.cli {
		if c == nil {
			continue
		}
		for _, ref := range []string{s.aggImage, s.execImage} {
			if _, err := c.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
				logf("removing image %s from the swarm: %v", ref, err)
			}
		}
		c.Close()
	}
}

// swarmFile is c's job file with its aggregator on host A's engine and its
// executors on host B's, joined by network.
func (w *swarmEngines) swarmFile(t *testing.T, s *suite, c jobConf, network, engineB string) string {
	t.Helper()
	top := fmt.Sprintf(`ps_ip: %s
worker_ips:
    - %s:[%d]
container_network: %s
docker_engines:
    %s: %s
    %s: %s
`, hostA, hostB, c.executors, network, hostA, w.addr[0], hostB, engineB)
	path := filepath.Join(t.TempDir(), c.name+".yml")
	if err := os.WriteFile(path, append([]byte(top), c.file(s)...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cleanupSwarm removes whatever is left of job name on both engines, and
// fails the test if anything was.
func (w *swarmEngines) cleanupSwarm(t *testing.T, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i, c := range w.cli {
			if n, _ := countLabelled(t, c, job.LabelJob+"="+name); n > 0 {
				t.Errorf("job %s: %d containers left on %s", name, n, w.addr[i])
			}
			if err := removeLabelled(ctx, c, job.LabelJob+"="+name); err != nil {
				t.Errorf("cleanup of job %s on %s: %v", name, w.addr[i], err)
			}
		}
	})
}

// TestLauncherSwarm runs a whole job as FedScale's Docker tutorial deploys
// it: the aggregator on host A's engine, the executors on host B's, on the
// swarm's attachable overlay network, the executors reaching the aggregator
// by its container name. Submitted, watched, looked at, logged and
// stopped through the launcher binary; status, logs and stop are given
// only the job name and one engine (the others come from the labels).
func TestLauncherSwarm(t *testing.T) {
	s, w := needSwarm(t)
	ctx := ctxFor(t, 5*time.Minute)
	c := smallJob(s.jobName("swarm"))
	file := w.swarmFile(t, s, c, devinfra.SwarmNetwork, w.addr[1])
	w.cleanupSwarm(t, c.name)

	t0 := time.Now()
	out, errOut, err := s.launcherCmd(ctx, "submit", "--backend", "docker", "--wait=done", "--timeout", "4m", file)
	if err != nil {
		t.Fatalf("launcher submit: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	t.Logf("launcher submit --wait=done across two engines: %.2f s", time.Since(t0).Seconds())
	if !strings.Contains(errOut, "job "+c.name+": Succeeded") {
		t.Errorf("submit's stderr lacks the final phase: %s", errOut)
	}
	// Where the containers are: the aggregator on A, the executors on B.
	for i, want := range []int{1, c.executors} {
		f := make(client.Filters).Add("label", job.LabelJob+"="+c.name)
		cs, err := w.cli[i].ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs.Items) != want {
			t.Errorf("engine %s holds %d containers of the job, want %d", w.addr[i], len(cs.Items), want)
		}
		for _, it := range cs.Items {
			if comp := it.Labels[job.LabelComponent]; (i == 0) != (comp == "aggregator") {
				t.Errorf("%s container on %s", comp, w.addr[i])
			}
		}
	}

	// status from B's engine alone: A's comes from the labels.
	out, errOut, err = s.launcherEnv(ctx, []string{"DOCKER_HOST=" + w.addr[1]}, "status", "--backend", "docker", "-o", "json", c.name)
	if err != nil {
		t.Fatalf("launcher status: %v\n%s%s", err, out, errOut)
	}
	var st backend.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if st.Phase != backend.Succeeded || len(st.Processes) != 1+c.executors {
		t.Errorf("status %+v, want Succeeded with %d processes", st, 1+c.executors)
	}
	for _, p := range st.Processes {
		if p.Phase != backend.Succeeded || p.ExitCode == nil || *p.ExitCode != 0 {
			t.Errorf("process %+v, want Succeeded with exit code 0", p)
		}
	}
	// A's engine is a unix socket here: the mounted log gives progress.
	if st.Round == nil || *st.Round != c.rounds || st.Accuracy == nil || *st.Accuracy < smallJobTop1 {
		t.Errorf("status round %v accuracy %v, want round %d and top-1 at least %.2f", st.Round, st.Accuracy, c.rounds, smallJobTop1)
	}

	// logs and list from the main engine plus A's, named by flag.
	flagA := "--docker-engine=" + hostA + "=" + w.addr[0]
	out, errOut, err = s.launcherCmd(ctx, "logs", "--backend", "docker", flagA, c.name)
	if err != nil {
		t.Fatalf("launcher logs: %v\n%s", err, errOut)
	}
	for _, p := range []string{"aggregator", "executor-1", "executor-2"} {
		if !strings.Contains(out, "["+p+"] ") {
			t.Errorf("logs lack lines of %s:\n%.2000s", p, out)
		}
	}
	out, errOut, err = s.launcherCmd(ctx, "list", "--backend", "docker", flagA)
	if err != nil || !strings.Contains(out, c.name) {
		t.Errorf("launcher list: %v, output lacks %s:\n%s%s", err, c.name, out, errOut)
	}

	out, errOut, err = s.launcherCmd(ctx, "stop", "--backend", "docker", flagA, c.name)
	if err != nil {
		t.Fatalf("launcher stop: %v\n%s%s", err, out, errOut)
	}
	for i, cli := range w.cli {
		if n, _ := countLabelled(t, cli, job.LabelJob+"="+c.name); n != 0 {
			t.Errorf("after stop, %d containers of the job on %s", n, w.addr[i])
		}
	}
	// The network is the swarm's: stop leaves it.
	if _, err := w.cli[0].NetworkInspect(ctx, devinfra.SwarmNetwork, client.NetworkInspectOptions{}); err != nil {
		t.Errorf("network %s after stop: %v", devinfra.SwarmNetwork, err)
	}
	_, errOut, err = s.launcherCmd(ctx, "stop", "--backend", "docker", flagA, c.name)
	if err == nil || !strings.Contains(errOut, "no such job") {
		t.Errorf("second stop: %v, stderr %q, want a failure saying there is no such job", err, errOut)
	}
}

// TestLauncherSwarmBadInput: a job across engines that cannot run fails
// at submit with one error naming the host or key, and leaves nothing on
// either engine (what Create made on one engine is removed when another
// refuses).
func TestLauncherSwarmBadInput(t *testing.T) {
	s, w := needSwarm(t)
	ctx := ctxFor(t, 3*time.Minute)
	// A bridge network on A: not one containers on B can join.
	bridge := "fedscale-e2e-bridge-" + s.runID
	if _, err := w.cli[0].NetworkCreate(ctx, bridge, client.NetworkCreateOptions{Driver: "bridge", Labels: map[string]string{labelRun: s.runID}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.cli[0].NetworkRemove(context.Background(), bridge, client.NetworkRemoveOptions{}) })
	for _, tc := range []struct {
		name, network, engineB string
		blockB                 bool // a container not of the job holds executor-2's name on B
		code                   int
		want                   string
	}{
		{"missing network", "fedscale-e2e-no-such-net", "", false, 1, "container_network fedscale-e2e-no-such-net: no such network on the job's Docker engines"},
		{"bridge network", bridge, "", false, 1, "container_network " + bridge + " on the Docker engine at " + w.addr[0] + " is a bridge network"},
		{"unreachable engine", devinfra.SwarmNetwork, "unix:///nonexistent/fedscale-b.sock", false, 3, "cannot reach the Docker engine of worker_ips host " + hostB + " at unix:///nonexistent/fedscale-b.sock"},
		{"name taken on B", devinfra.SwarmNetwork, "", true, 1, "is taken on the Docker engine at " + w.addr[1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := smallJob(s.jobName("swarmbad"))
			engineB := tc.engineB
			if engineB == "" {
				engineB = w.addr[1]
			}
			file := w.swarmFile(t, s, c, tc.network, engineB)
			w.cleanupSwarm(t, c.name)
			if tc.blockB {
				blocker := c.name + "-executor-2"
				res, err := w.cli[1].ContainerCreate(ctx, client.ContainerCreateOptions{Name: blocker, Image: s.execImage})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					w.cli[1].ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
				})
			}
			_, errOut, err := s.launcherCmd(ctx, "submit", "--backend", "docker", file)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tc.code {
				t.Errorf("submit: %v, want exit code %d", err, tc.code)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("submit's error:\n%s\nwant it to contain %q", errOut, tc.want)
			}
			for i, cli := range w.cli {
				if n, _ := countLabelled(t, cli, job.LabelJob+"="+c.name); n != 0 {
					t.Errorf("after the failed submit, %d containers of the job on %s", n, w.addr[i])
				}
			}
		})
	}
}
