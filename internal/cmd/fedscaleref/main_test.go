package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const exampleJob = "../../../runtime/jobtest/testdata/fedscale/femnist_k8s.yml"

func TestRewriteJob(t *testing.T) {
	src, err := os.ReadFile(exampleJob)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rewriteJob(src, "/d", "/runs/fedscale", "5")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"    - log_path: /runs/fedscale # Path of log files\n",
		"    - data_dir: /d/femnist    # Path of the dataset\n",
		"    - device_avail_file: /d/device_info/client_behave_trace\n",
		"    - local_steps: 20\n",
		"    - rounds: 5                          # Number of rounds",
		"    - learning_rate: 0.05\n",
		"#    - model_zoo: fedscale-torch-zoo\n",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("rewritten job lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "/FedScale/benchmark") {
		t.Errorf("a container path is left:\n%s", got)
	}
	if kept, err := rewriteJob(src, "/d", "/l", ""); err != nil || !strings.Contains(string(kept), "    - rounds: 21 ") {
		t.Errorf("without ROUNDS the job's rounds stay: %v", err)
	}
	for name, bad := range map[string]string{
		"local_steps": strings.Replace(string(src), "local_steps: 5", "local_steps: 7", 1),
		"log_path":    strings.Replace(string(src), "log_path: /FedScale/benchmark", "log_path: /elsewhere", 1),
		"rounds":      strings.Replace(string(src), "    - rounds:", "    - rounds_x:", 1),
	} {
		if _, err := rewriteJob([]byte(bad), "/d", "/l", "5"); err == nil || !strings.Contains(err.Error(), "job_conf "+name) {
			t.Errorf("a job file without the %s line: %v", name, err)
		}
	}
}

// TestFedScaleFlags compares with what PyYAML gives FedScale's driver,
// computed by Debian's python3 where it has python3-yaml.
func TestFedScaleFlags(t *testing.T) {
	src, err := os.ReadFile(exampleJob)
	if err != nil {
		t.Fatal(err)
	}
	src = append(src, "    - quoted: \"yes\"\n    - flag: on\n    - none:\n    - num_participants: 7\n"...)
	got, err := fedscaleFlags(src)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != "--time_stamp" || got[1] != "ref" || got[2] != "--ps_ip" || got[3] != "127.0.0.1" {
		t.Errorf("flags start %q", got[:4])
	}
	i := slices.Index(got, "--num_participants")
	if i < 0 || got[i+1] != "7" || slices.Index(got[i+1:], "--num_participants") >= 0 || got[i-2] != "--log_path" {
		t.Errorf("a repeated key keeps its place and takes the last value: %q", got)
	}
	for _, kv := range [][2]string{{"--use_cuda", "False"}, {"--quoted", "yes"}, {"--flag", "True"}, {"--none", "None"}, {"--learning_rate", "0.05"}} {
		if j := slices.Index(got, kv[0]); j < 0 || got[j+1] != kv[1] {
			t.Errorf("%s: %q, want %q", kv[0], got, kv[1])
		}
	}
	if _, err := exec.LookPath(python); err != nil || exec.Command(python, "-c", "import yaml").Run() != nil {
		t.Skip("no /usr/bin/python3 with python3-yaml to compare with")
	}
	job := filepath.Join(t.TempDir(), "job.yml")
	if err := os.WriteFile(job, src, 0o644); err != nil {
		t.Fatal(err)
	}
	// FedScale's docker/driver.py reads the job file so.
	out, err := exec.Command(python, "-c", `import sys, yaml
conf = yaml.safe_load(open(sys.argv[1]))
job_conf = {"time_stamp": "ref", "ps_ip": "127.0.0.1"}
for entry in conf["job_conf"]:
    job_conf.update(entry)
for k, v in job_conf.items():
    print(f"--{k}")
    print(v)
`, job).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("fedscaleFlags:\n%q\nPyYAML:\n%q", got, want)
	}
}

func TestFedScaleFlagsBad(t *testing.T) {
	for name, src := range map[string]string{
		"no job_conf":  "rounds: 3\n",
		"nested value": "job_conf:\n    - a: [1, 2]\n",
		"two keys":     "job_conf:\n    - {a: 1, b: 2}\n",
		"not yaml":     "job_conf: [\n",
	} {
		if _, err := fedscaleFlags([]byte(src)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestExtract builds a small repository like FedScale's and extracts it.
func TestExtract(t *testing.T) {
	repo := t.TempDir()
	files := map[string]string{
		"fedscale/cloud/aggregation/aggregator.py": "agg\n",
		"fedscale/edge/android.py":                 "edge\n",
		"docker/driver.py":                         "driver\n",
		"setup.py":                                 "setup\n",
		"benchmark/dataset/big":                    "not extracted\n",
	}
	for p, s := range files {
		if err := os.MkdirAll(filepath.Join(repo, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("setup.py", filepath.Join(repo, "fedscale", "link.py")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := extract(context.Background(), filepath.Join(repo, ".git"), src); err != nil {
		t.Fatal(err)
	}
	var got []string
	_ = filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(src, p)
			got = append(got, rel)
		}
		return nil
	})
	want := []string{"COMMIT", "docker/driver.py", "fedscale/cloud/aggregation/aggregator.py", "setup.py"}
	if !slices.Equal(got, want) {
		t.Errorf("extracted %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(src, "docker", "driver.py")); string(b) != "driver\n" {
		t.Errorf("driver.py = %q", b)
	}
}
