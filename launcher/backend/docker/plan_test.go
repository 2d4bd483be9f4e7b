package docker_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fedscale/fedscale-go/launcher/backend/docker"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// A job file as the original's docker users write it: ports, a network,
// GPUs from worker_ips.
const planJob = `use_container: docker
data_path: %s
ports: [8000, 8001, 8002, 8003]
container_network: fedscale-net
worker_ips:
    - 10.0.0.2:[2,1]
job_conf:
    - job_name: femnist_plan
    - ps_port: 30000
    - use_cuda: True
    - log_path: /FedScale/benchmark
`

// Plan prints every container Submit would make, and needs no engine.
func TestPlanNeedsNoEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	data := t.TempDir()
	file := filepath.Join(t.TempDir(), "conf.yml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(planJob, data)), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := job.Load(file, job.Options{AggregatorImage: "reg.example/aggr:v1", ExecutorImage: "reg.example/exec:v1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := b.Plan(&out, spec); err != nil {
		t.Fatal(err)
	}
	plan := out.String()
	t.Logf("plan:\n%s", plan)
	for _, want := range []string{
		"engine: unix:///nonexistent/docker.sock (DOCKER_HOST)",
		"name: fedscale-net",
		"name: femnist-plan-aggregator",
		"name: femnist-plan-executor-1",
		"name: femnist-plan-executor-3",
		"image: reg.example/aggr:v1",
		"image: reg.example/exec:v1",
		"args: [--config, /etc/fedscale/job.yml, --job-name, femnist_plan, --tls-dir, /etc/fedscale-tls, --ps-port, \"30000\"]",
		"/etc/fedscale-tls/{ca.crt,executor-2.crt,executor-2.key} (the job's CA certificate and this process's certificate and key, mode 0400, made at submit)",
		"--ps-ip, femnist-plan-aggregator",
		"FEDSCALE_HOME=/FedScale",
		"fedscale.dev/job: femnist-plan",
		"fedscale.dev/component: executor",
		`fedscale.dev/rank: "3"`,
		"app.kubernetes.io/managed-by: fedscale-launcher",
		"fedscale.dev/job-file: " + file,
		"aliases: [aggregator]",
		data + ":/FedScale/benchmark (bind, read-write)",
		"/etc/fedscale/job.yml (",
		"127.0.0.1:<ephemeral>->30001/tcp (health",
		"127.0.0.1:8000->30000/tcp (gRPC)",
		"127.0.0.1:8001->30002/tcp (health)",
		"127.0.0.1:8003->30004/tcp (health)",
		"gpus: gpu 0",
		"gpus: gpu 1",
		`restart: "no"`,
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	var doc struct {
		Containers []struct {
			Name string
			GPUs string `yaml:"gpus"`
		}
	}
	if err := yaml.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("plan is not YAML: %v", err)
	}
	var gpus []string
	for _, c := range doc.Containers {
		gpus = append(gpus, c.Name+"="+c.GPUs)
	}
	if got, want := strings.Join(gpus, " "), "femnist-plan-aggregator= femnist-plan-executor-1=gpu 0 femnist-plan-executor-2=gpu 0 femnist-plan-executor-3=gpu 1"; got != want {
		t.Errorf("GPUs %s, want %s", got, want)
	}
}

// The plan shows each container's restart policy: executors restart on
// failure as executor_restarts (or --executor-restarts) says, the
// aggregator never.
func TestPlanRestartPolicy(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	two := 2
	for _, tc := range []struct {
		name string
		key  string // prepended to the job file
		flag *int
		want string // the executors' policy
	}{
		{"default", "", nil, "no"},
		{"job file", "executor_restarts: 3\n", nil, "on-failure:3"},
		{"flag", "executor_restarts: 3\n", &two, "on-failure:2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "conf.yml")
			if err := os.WriteFile(file, []byte(tc.key+fmt.Sprintf(planJob, t.TempDir())), 0o644); err != nil {
				t.Fatal(err)
			}
			spec, err := job.Load(file, job.Options{ExecutorRestarts: tc.flag})
			if err != nil {
				t.Fatal(err)
			}
			b, err := docker.New(docker.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := b.Plan(&out, spec); err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Containers []struct{ Name, Restart string }
			}
			if err := yaml.Unmarshal(out.Bytes(), &doc); err != nil {
				t.Fatalf("plan is not YAML: %v", err)
			}
			if len(doc.Containers) != 4 {
				t.Fatalf("%d containers, want 4:\n%s", len(doc.Containers), out.String())
			}
			for i, c := range doc.Containers {
				want := tc.want
				if i == 0 {
					want = "no"
				}
				if c.Restart != want {
					t.Errorf("%s: restart %q, want %q", c.Name, c.Restart, want)
				}
			}
		})
	}
}

// Without an engine, calls that need it fail with one error naming the
// address tried and where it came from.
func TestNoEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	b, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := timeout(t, 10*time.Second)
	_, err = b.Status(ctx, "some-job")
	var ee *docker.EngineError
	if !errors.As(err, &ee) {
		t.Fatalf("Status: %v (%T), want an EngineError", err, err)
	}
	for _, want := range []string{"unix:///nonexistent/docker.sock", "DOCKER_HOST"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	t.Logf("error: %v", err)
	if err := b.Stop(ctx, "some-job"); !errors.As(err, &ee) {
		t.Errorf("Stop: %v, want an EngineError", err)
	}
}

// A bad HostIP is refused at New.
func TestBadHostIP(t *testing.T) {
	if _, err := docker.New(docker.Options{HostIP: "not-an-ip"}); err == nil {
		t.Error("HostIP not-an-ip accepted")
	}
}
