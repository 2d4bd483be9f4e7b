package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
	"github.com/fedscale/fedscale-go/runtime/version"
)

// buildAll compiles the launcher and the runtime into one folder, as
// `make build` lays them out (the local backend finds the runtime beside it).
func buildAll(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	bin := t.TempDir()
	out, err := exec.Command("go", "build", "-o", bin+"/",
		"github.com/fedscale/fedscale-go/launcher/cmd/launcher",
		"github.com/fedscale/fedscale-go/runtime/cmd/aggregator",
		"github.com/fedscale/fedscale-go/runtime/cmd/executor").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func launcher(t *testing.T, bin, state string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "launcher"), args...)
	cmd.Env = append(os.Environ(), "FEDSCALE_LAUNCHER_STATE="+state, "DOCKER_HOST=unix:///nonexistent.sock", "KUBECONFIG=/nonexistent")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// writeLocalJob writes a synthetic data set into home/data and a job file
// home/conf.yml of a local job of executors executors on free ports: top
// holds its top-level keys, conf its own job_conf lines, beside the ones
// every such job shares (log_path, ps_port, the data, the batch sizes).
func writeLocalJob(t *testing.T, home string, o jobtest.SynthOptions, executors int, top, conf string) string {
	t.Helper()
	if err := jobtest.WriteSynthetic(filepath.Join(home, "data"), o); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(home, "conf.yml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`%sjob_conf:
%s    - log_path: %s
    - ps_port: %d
    - data_set: synthetic
    - grey_input: True                  # our key: the images as stored, 1 grey channel
    - data_dir: %s/data
    - model: logistic
    - batch_size: 10
    - test_bsz: 20
    - filter_less: 10
`, top, conf, home, infratest.FreePorts(t, executors+1), home)), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestLocalJobEndToEnd is the issue's check: `launcher submit --backend
// local --wait=done JOB.yml` runs a whole job with the runtime's binaries
// and `launcher status` shows it finished.
func TestLocalJobEndToEnd(t *testing.T) {
	bin := buildAll(t)
	state := t.TempDir()
	home := t.TempDir()
	file := writeLocalJob(t, home, jobtest.SynthOptions{Clients: 12, PerClient: 30, Test: 60, Classes: 4, Seed: 9}, 2, `ps_ip: 127.0.0.1
worker_ips:
    - 127.0.0.1:[2]
setup_commands:
`, `    - job_name: cli_e2e
    - num_participants: 4
    - rounds: 4
    - eval_interval: 2
    - local_steps: 3
`)

	out, err := launcher(t, bin, state, "submit", "--backend", "local", "--wait=done", "--timeout", "2m", file)
	if err != nil {
		t.Fatalf("submit: %v\n%s", err, out)
	}
	if !strings.Contains(out, "cli-e2e") {
		t.Errorf("submit did not print the job name:\n%s", out)
	}
	t.Cleanup(func() { launcher(t, bin, state, "stop", "cli-e2e") })

	out, err = launcher(t, bin, state, "status", "cli-e2e", "-o", "json")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	var st backend.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if st.Phase != backend.Succeeded || st.Round == nil || *st.Round != 4 || st.Processes[0].ExitCode == nil || *st.Processes[0].ExitCode != 0 {
		t.Errorf("status: %s", out)
	}
	out, err = launcher(t, bin, state, "status", "cli-e2e")
	if err != nil || !strings.Contains(out, "Succeeded") || !strings.Contains(out, "aggregator") {
		t.Errorf("status table: %v\n%s", err, out)
	}
	out, err = launcher(t, bin, state, "logs", "cli-e2e", "--component", "aggregator")
	if err != nil || !strings.Contains(out, "FL Testing in round: 4") {
		t.Errorf("logs: %v\n%s", err, out)
	}
	checkResults(t, bin, state, "cli-e2e", filepath.Join(home, "logs", "cli_e2e"), 4)
	if out, err = launcher(t, bin, state, "stop", "cli-e2e"); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	out, err = launcher(t, bin, state, "stop", "cli-e2e")
	if err == nil || !strings.Contains(out, `job "cli-e2e": no such job`) {
		t.Errorf("second stop: %v\n%s", err, out)
	}
}

func TestBadInput(t *testing.T) {
	bin := buildAll(t)
	state := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stop", "nosuchjob", "--backend", "local"}, `job "nosuchjob": no such job on this machine`},
		{[]string{"status", "x", "-o", "xml"}, `-o "xml": want table, json or yaml`},
		{[]string{"submit", "/nonexistent/conf.yml"}, "reading job file"},
		{[]string{"submit", "--wait=later", "conf.yml"}, `invalid argument "later" for "--wait"`},
		{[]string{"submit"}, "accepts 1 arg(s), received 0"},
	} {
		out, err := launcher(t, bin, state, tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("launcher %s: %v\n%s\nwant %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}

// TestDryRunNeedsNothing: the original conf_k8s.yml gives manifests, and the
// Docker plan prints, with no cluster, no kubeconfig and no engine.
func TestDryRunNeedsNothing(t *testing.T) {
	bin := buildAll(t)
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "benchmark"), 0o755)
	t.Setenv("FEDSCALE_HOME", home)
	out, err := launcher(t, bin, t.TempDir(), "submit", "--dry-run", filepath.Join("..", "..", "job", "testdata", "conf_k8s.yml"))
	if err != nil {
		t.Fatalf("k8s dry run: %v\n%s", err, out)
	}
	for _, want := range []string{"kind: ConfigMap", "kind: Service", "name: femnist-executor-2", "nvidia.com/gpu: \"1\"", "secretName: femnist-tls-executor-2", "type: Directory",
		"fedscale/fedscale-exec:" + version.Version + "-cuda" + version.CUDA, "app.kubernetes.io/instance: femnist", "memory: "} {
		if !strings.Contains(out, want) {
			t.Errorf("k8s plan lacks %q", want)
		}
	}
	if strings.Contains(out, "kind: Namespace") {
		t.Errorf("k8s plan has the Namespace without --with-namespace")
	}
	// The k8s flags reach the plan.
	out, err = launcher(t, bin, t.TempDir(), "submit", "--dry-run", "--with-namespace", "--node-selector", "pool=fl", "--toleration", "pool=fl:NoSchedule",
		"--image-pull-secret", "regcred", "--priority-class", "low", "--service-account", "fl", filepath.Join("..", "..", "job", "testdata", "conf_k8s.yml"))
	if err != nil {
		t.Fatalf("k8s dry run with flags: %v\n%s", err, out)
	}
	for _, want := range []string{"kind: Namespace", "pool: fl", "key: pool", "- name: regcred", "priorityClassName: low", "serviceAccountName: fl"} {
		if !strings.Contains(out, want) {
			t.Errorf("k8s plan with flags lacks %q", want)
		}
	}
	// A bad flag value: a usage error naming the flag.
	if out, err = launcher(t, bin, t.TempDir(), "submit", "--dry-run", "--toleration", "pool=fl:Never", filepath.Join("..", "..", "job", "testdata", "conf_k8s.yml")); err == nil || !strings.Contains(out, `--toleration "pool=fl:Never"`) {
		t.Errorf("a bad --toleration: %v\n%s", err, out)
	}
	out, err = launcher(t, bin, t.TempDir(), "submit", "--dry-run", filepath.Join("..", "..", "job", "testdata", "conf_docker.yml"))
	if err != nil || !strings.Contains(out, "femnist-executor-2") {
		t.Errorf("docker dry run: %v\n%s", err, out)
	}
}
