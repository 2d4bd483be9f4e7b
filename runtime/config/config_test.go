package config

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/aggregate"
)

// conf builds a job file whose job_conf is the given "key: value" items.
func conf(items ...string) string {
	var b strings.Builder
	b.WriteString("job_conf:\n")
	for _, it := range items {
		b.WriteString("    - " + it + "\n")
	}
	return b.String()
}

func TestParseFemnistExample(t *testing.T) {
	t.Setenv("FEDSCALE_HOME", "/opt/fedscale")
	t.Setenv("HOME", "/home/alice")
	j, err := Load("testdata/femnist.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.JobName = "femnist"
	want.LogPath = "/opt/fedscale/benchmark"
	want.NumParticipants = 4
	want.DataSet = "femnist"
	want.DataDir = "/opt/fedscale/benchmark/dataset/data/femnist"
	want.DataMapFile = "/opt/fedscale/benchmark/dataset/data/femnist/client_data_mapping/train.csv"
	want.DeviceConfFile = "/opt/fedscale/benchmark/dataset/data/device_info/client_device_capacity"
	want.DeviceAvailFile = "/opt/fedscale/benchmark/dataset/data/device_info/client_behave_trace"
	want.Model = "resnet18"
	want.EvalInterval = 10
	want.Rounds = 1000
	want.FilterLess = 21
	want.NumLoaders = 2
	want.LocalSteps = 20
	want.LearningRate = 0.05
	want.BatchSize = 20
	want.TestBsz = 20
	want.UseCuda = false
	want.set = j.Conf.set // compared separately below
	if !reflect.DeepEqual(j.Conf, want) {
		t.Errorf("Conf =\n%+v\nwant\n%+v", j.Conf, want)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Path", j.Path, "testdata/femnist.yml"},
		{"PsIP", j.PsIP, "127.0.0.1"},
		{"WorkerIPs", j.WorkerIPs, []WorkerHost{{Host: "127.0.0.1", Procs: []int{2}}}},
		{"ExpPath", j.ExpPath, "/opt/fedscale/fedscale/cloud"},
		{"ExecutorEntry", j.ExecutorEntry, "execution/executor.py"},
		{"AggregatorEntry", j.AggregatorEntry, "aggregation/aggregator.py"},
		{"Auth", j.Auth, Auth{SSHUser: "", SSHPrivateKey: "/home/alice/.ssh/id_rsa"}},
		{"SetupCommands", len(j.SetupCommands), 0},
		{"NumAggregators", j.NumAggregators, 1},
		{"NumExecutors", j.NumExecutors, 0},
		{"UseContainer", j.UseContainer, ""},
		{"IsSet(rounds)", j.Conf.IsSet("rounds"), true},
		{"IsSet(ps_port)", j.Conf.IsSet("ps_port"), false},
		{"LogDir", j.Conf.LogDir(), "/opt/fedscale/benchmark/logs/femnist"},
		{"Warnings", j.Warnings, []string{
			"testdata/femnist.yml:25: job_conf.num_loaders is known to FedScale but not used by this runtime; ignored",
		}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	if n, err := j.Executors(); n != 2 || err != nil {
		t.Errorf("Executors() = %d, %v; want 2, nil", n, err)
	}
}

func TestParseTestdata(t *testing.T) {
	t.Setenv("FEDSCALE_HOME", "/opt/fedscale")
	tests := []struct {
		file      string
		executors int
		check     func(t *testing.T, j *Job)
	}{
		{"docker.yml", 2, func(t *testing.T, j *Job) {
			c := j.Conf
			if j.UseContainer != "docker" || j.DataPath != "/opt/fedscale/benchmark" ||
				j.ContainerNetwork != "fedscale-net" || !slices.Equal(j.Ports, []int{30000, 32000, 32001}) ||
				j.AggregatorImage != "ghcr.io/fedscale/fedscale-go-aggr:v0.1.0" ||
				j.ExecutorImage != "ghcr.io/fedscale/fedscale-go-exec:v0.1.0" {
				t.Errorf("top level = %+v", j)
			}
			if c.DataMapFile != "" || c.DeviceConfFile != "" || c.DeviceAvailFile != "" {
				t.Errorf("none paths = %q %q %q, want all empty", c.DataMapFile, c.DeviceConfFile, c.DeviceAvailFile)
			}
			if c.GradientPolicy != aggregate.PolicyFedYogi || c.YogiEta != 5e-3 || c.FilterMore != 1e15 ||
				c.Rounds != 20 || c.UseCuda || !c.SaveCheckpoint {
				t.Errorf("conf = %+v", c)
			}
			if len(j.Warnings) != 0 {
				t.Errorf("Warnings = %q, want none", j.Warnings)
			}
		}},
		{"k8s.yml", 2, func(t *testing.T, j *Job) {
			c := j.Conf
			if j.UseContainer != "k8s" || j.NumExecutors != 2 || c.JobName != "femnist_k8s" ||
				c.ExperimentMode != "deployment" || c.GradientPolicy != aggregate.PolicyQFedAvg || c.QfedQ != 2 ||
				c.CudaDevice != 0 || c.SampleMode != "oort" {
				t.Errorf("job = %+v", j)
			}
			want := []string{
				"testdata/k8s.yml:13: job_conf.wandb_token is known to FedScale but not used by this runtime; ignored",
				"testdata/k8s.yml:9: job_conf.sample_mode oort is not implemented by this runtime; clients are sampled at random",
			}
			if !slices.Equal(j.Warnings, want) {
				t.Errorf("Warnings =\n%q\nwant\n%q", j.Warnings, want)
			}
			if !c.IsSet("wandb_token") {
				t.Error("IsSet(wandb_token) = false for a key given in the file")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			j, err := Load(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if n, err := j.Executors(); n != tt.executors || err != nil {
				t.Errorf("Executors() = %d, %v; want %d", n, err, tt.executors)
			}
			tt.check(t, j)
		})
	}
}

// TestParseGood covers accepted spellings and the merge rules.
func TestParseGood(t *testing.T) {
	t.Setenv("HOME", "/home/bob")
	t.Setenv("DATA", "/srv/data")
	os.Unsetenv("FEDSCALE_UNSET_VAR") // an unset variable stays as written
	tests := []struct {
		name  string
		in    string
		check func(c Conf) bool
	}{
		{"python False", conf("use_cuda: False"), func(c Conf) bool { return !c.UseCuda }},
		{"string False", conf(`use_cuda: "False"`), func(c Conf) bool { return !c.UseCuda }},
		{"string True", conf(`save_checkpoint: "True"`), func(c Conf) bool { return c.SaveCheckpoint }},
		{"yes", conf("save_checkpoint: yes"), func(c Conf) bool { return c.SaveCheckpoint }},
		{"no", conf("use_cuda: no"), func(c Conf) bool { return !c.UseCuda }},
		{"bool 1", conf("save_checkpoint: 1"), func(c Conf) bool { return c.SaveCheckpoint }},
		{"bool 0", conf(`use_cuda: "0"`), func(c Conf) bool { return !c.UseCuda }},
		{"int as float", conf("rounds: 1e3"), func(c Conf) bool { return c.Rounds == 1000 }},
		{"int as string", conf(`rounds: "10"`), func(c Conf) bool { return c.Rounds == 10 }},
		{"filter_more 1e15", conf("filter_more: 1e15"), func(c Conf) bool { return c.FilterMore == 1e15 }},
		{"filter_more string", conf(`filter_more: "1e15"`), func(c Conf) bool { return c.FilterMore == 1e15 }},
		{"float as int", conf("learning_rate: 1"), func(c Conf) bool { return c.LearningRate == 1 }},
		{"float as string", conf(`min_learning_rate: "5e-5"`), func(c Conf) bool { return c.MinLearningRate == 5e-5 }},
		{"sample_seed int64", conf("sample_seed: 12345678901"), func(c Conf) bool { return c.SampleSeed == 12345678901 }},
		{"later wins", conf("rounds: 10", "rounds: 20"), func(c Conf) bool { return c.Rounds == 20 }},
		{"multi-key item", conf("{rounds: 7, eval_interval: 7}"), func(c Conf) bool { return c.Rounds == 7 && c.EvalInterval == 7 }},
		{"plain map", "job_conf:\n  rounds: 8\n  model: lenet\n", func(c Conf) bool { return c.Rounds == 8 && c.Model == "lenet" }},
		{"null job_conf", "job_conf:\n", func(c Conf) bool { return reflect.DeepEqual(c, Default()) }},
		{"policy None", conf("gradient_policy: None"), func(c Conf) bool { return c.GradientPolicy == aggregate.PolicyFedAvg }},
		{"policy fed-avg", conf("gradient_policy: fed-avg"), func(c Conf) bool { return c.GradientPolicy == aggregate.PolicyFedAvg }},
		{"policy fed-prox", conf("gradient_policy: fed-prox"), func(c Conf) bool { return c.GradientPolicy == aggregate.PolicyFedProx }},
		{"cuda_device none", conf("cuda_device: None"), func(c Conf) bool { return c.CudaDevice == -1 }},
		{"cuda_device 3", conf("cuda_device: 3"), func(c Conf) bool { return c.CudaDevice == 3 }},
		{"map file None", conf("data_map_file: None"), func(c Conf) bool { return c.DataMapFile == "" }},
		{"map file null", conf("data_map_file:"), func(c Conf) bool { return c.DataMapFile == "" }},
		{"tilde", conf("data_dir: ~/femnist"), func(c Conf) bool { return c.DataDir == "/home/bob/femnist" }},
		{"braces", conf("log_path: ${DATA}/logs"), func(c Conf) bool { return c.LogPath == "/srv/data/logs" }},
		{"unset var kept", conf("data_dir: $FEDSCALE_UNSET_VAR/x"), func(c Conf) bool { return c.DataDir == "$FEDSCALE_UNSET_VAR/x" }},
		{"string from number", conf("job_name: 2024"), func(c Conf) bool { return c.JobName == "2024" }},
		{"anchors", "x_anchor: &r 5\n" + conf("rounds: *r"), nil}, // unknown top-level key: see errors
		{"alias value", "job_conf:\n  - rounds: &r 9\n  - eval_interval: *r\n", func(c Conf) bool { return c.EvalInterval == 9 }},
		{"deployment", conf("experiment_mode: deployment"), func(c Conf) bool { return c.ExperimentMode == "deployment" }},
	}
	for _, tt := range tests {
		if tt.check == nil {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			j, err := Parse([]byte(tt.in), "conf.yml")
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(j.Conf) {
				t.Errorf("unexpected Conf %+v", j.Conf)
			}
		})
	}
}

func TestParseDockerEngines(t *testing.T) {
	in := `use_container: docker
ps_ip: 10.0.0.1
worker_ips: ['10.0.0.2:[2]', '10.0.0.3:[1]']
docker_engines:
  10.0.0.1: unix:///run/docker.sock
  10.0.0.2: ssh://fed@10.0.0.2
  10.0.0.3: gpu-box
`
	j, err := Parse([]byte(in), "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"10.0.0.1": "unix:///run/docker.sock", "10.0.0.2": "ssh://fed@10.0.0.2", "10.0.0.3": "gpu-box"}
	if !maps.Equal(j.DockerEngines, want) {
		t.Errorf("DockerEngines = %v, want %v", j.DockerEngines, want)
	}
}

func TestParseTopLevel(t *testing.T) {
	t.Setenv("HOME", "/home/bob")
	in := `use_container: k8s
num_executors: 3
data_path: ~/bench
setup_commands:
  - source ~/.bashrc
  - conda activate fedscale
auth: {ssh_user: fed, ssh_private_key: ~/.ssh/key}
executor_restarts: 2
`
	j, err := Parse([]byte(in), "")
	if err != nil {
		t.Fatal(err)
	}
	if j.Path != "" || j.DataPath != "/home/bob/bench" || j.NumExecutors != 3 ||
		j.ExecutorRestarts == nil || *j.ExecutorRestarts != 2 ||
		!slices.Equal(j.SetupCommands, []string{"source ~/.bashrc", "conda activate fedscale"}) ||
		j.Auth != (Auth{"fed", "/home/bob/.ssh/key"}) {
		t.Errorf("job = %+v", j)
	}
}

// parseErrorCases pairs a bad job file with a substring of its error. The
// fuzz target seeds from it too.
var parseErrorCases = []struct {
	name string
	in   string
	want string
}{
	{"malformed yaml", "job_conf: [\n", "conf.yml: invalid YAML: yaml:"},
	{"tab indentation", "job_conf:\n\t- rounds: 1\n", "conf.yml: invalid YAML"},
	{"two documents", "ps_ip: a\n---\nps_ip: b\n", "more than one YAML document"},
	{"empty", "", "conf.yml: job file is empty"},
	{"comment only", "# nothing\n", "job file is empty"},
	{"list document", "- a\n- b\n", "conf.yml:1: a job file must be a map of keys"},
	{"scalar document", "hello\n", `must be a map of keys (use_container, job_conf, ...), got "hello"`},
	{"job_conf scalar", "job_conf: 5\n", "conf.yml:1: job_conf must be a list of single-key maps (- key: value) or a map, got 5"},
	{"job_conf item scalar", "job_conf:\n  - rounds\n", `conf.yml:2: job_conf item must be a map (- key: value), got "rounds"`},
	{"job_conf item list", "job_conf:\n  - [1, 2]\n", "job_conf item must be a map (- key: value), got a list"},
	{"int word", "job_conf:\n  - job_name: x\n  - rounds: ten\n", `conf.yml:3: job_conf.rounds: expected an integer, got "ten"`},
	{"int fraction", conf("batch_size: 1.5"), "conf.yml:2: job_conf.batch_size: expected an integer, got 1.5"},
	{"int bool", conf("rounds: true"), "job_conf.rounds: expected an integer, got true"},
	{"int null", conf("rounds:"), "job_conf.rounds: expected an integer, got null"},
	{"int list", conf("rounds: [1]"), "job_conf.rounds: expected an integer, got a list"},
	{"int huge", conf("filter_more: 1e30"), "job_conf.filter_more: expected an integer, got 1e30"},
	{"float word", conf("learning_rate: fast"), `job_conf.learning_rate: expected a number, got "fast"`},
	{"float nan", conf("yogi_eta: .nan"), "job_conf.yogi_eta: expected a finite number, got .nan"},
	{"bool word", conf("use_cuda: maybe"), `job_conf.use_cuda: expected true or false, got "maybe"`},
	{"string map", conf("model: {a: 1}"), "job_conf.model: expected a string, got a map"},
	{"unknown job_conf key", "job_conf:\n  - rounds: 5\n  - learing_rate: 0.1\n", `conf.yml:3: unknown job_conf key "learing_rate" (did you mean "learning_rate"?)`},
	{"unknown top-level key", "ps_ip: a\nworker_ip:\n  - a:[1]\n", `conf.yml:2: unknown top-level key "worker_ip" (did you mean "worker_ips"?)`},
	{"job_conf key at top", "rounds: 5\n", `conf.yml:1: "rounds" is a job_conf key; move it under job_conf`},
	{"unknown auth key", "auth:\n  ssh_usr: me\n", `conf.yml:2: unknown auth key "ssh_usr" (did you mean "ssh_user"?)`},
	{"duplicate top-level", "ps_ip: a\nps_ip: b\n", `conf.yml:2: duplicate top-level key "ps_ip" (first at line 1)`},
	{"duplicate in one item", "job_conf:\n  - {rounds: 1, rounds: 2}\n", `duplicate job_conf key "rounds" in one map`},
	{"anchor at top", "x_anchor: &r 5\n" + conf("rounds: *r"), `unknown top-level key "x_anchor"`},
	{"filter_more < filter_less", conf("filter_more: 5"), "job_conf.filter_more (5) must be at least job_conf.filter_less (32)"},
	{"eval_interval 0", conf("eval_interval: 0"), "conf.yml:2: job_conf.eval_interval must be positive, got 0"},
	{"decay_round 0", conf("decay_round: 0"), "job_conf.decay_round must be positive, got 0"},
	{"rounds -1", conf("rounds: -1"), "job_conf.rounds must be positive, got -1"},
	{"num_participants 0", conf("num_participants: 0"), "job_conf.num_participants must be positive, got 0"},
	{"batch_size 0", conf("batch_size: 0"), "job_conf.batch_size must be positive, got 0"},
	{"local_steps 0", conf("local_steps: 0"), "job_conf.local_steps must be positive, got 0"},
	{"test_bsz 0", conf("test_bsz: 0"), "job_conf.test_bsz must be positive, got 0"},
	{"num_executors 0", conf("num_executors: 0"), "job_conf.num_executors must be positive, got 0"},
	{"overcommitment < 1", conf("overcommitment: 0.5"), "job_conf.overcommitment must be at least 1, got 0.5"},
	{"learning_rate 0", conf("learning_rate: 0"), "job_conf.learning_rate must be positive, got 0"},
	{"min_learning_rate < 0", conf("min_learning_rate: -1e-3"), "job_conf.min_learning_rate must be >= 0, got -0.001"},
	{"decay_factor 0", conf("decay_factor: 0"), "job_conf.decay_factor must be in (0, 1], got 0"},
	{"decay_factor > 1", conf("decay_factor: 1.5"), "job_conf.decay_factor must be in (0, 1], got 1.5"},
	{"test_ratio 0", conf("test_ratio: 0"), "job_conf.test_ratio must be in (0, 1], got 0"},
	{"test_ratio > 1", conf("test_ratio: 2"), "job_conf.test_ratio must be in (0, 1], got 2"},
	{"experiment_mode", conf("experiment_mode: real"), `job_conf.experiment_mode must be simulation or deployment, got "real"`},
	{"sample_mode", conf("sample_mode: greedy"), `job_conf.sample_mode must be random or oort, got "greedy"`},
	{"ps_port 0", conf("ps_port: 0"), "job_conf.ps_port must be in 1..65535, got 0"},
	{"ps_port big", conf("ps_port: 70000"), "job_conf.ps_port must be in 1..65535, got 70000"},
	{"gradient_policy", conf("gradient_policy: fed-adam"), `job_conf.gradient_policy: unknown gradient policy "fed-adam"; valid: none (fed-avg), fed-yogi, fed-prox, q-fedavg`},
	{"job_name slash", conf("job_name: ../etc"), "job_conf.job_name must be a non-empty name without path separators"},
	{"executor_configs", conf("executor_configs: 10.0.0.1"), `job_conf.executor_configs: worker "10.0.0.1": expected host:[n,...]`},
	{"use_container", "use_container: podman\n", `conf.yml:1: use_container must be docker, k8s or absent, got "podman"`},
	{"num_aggregators", "num_aggregators: 2\n", "conf.yml:1: num_aggregators: only 1 aggregator is supported, got 2"},
	{"top num_executors 0", "num_executors: 0\n", "conf.yml:1: num_executors: must be positive, got 0"},
	{"ports length", "use_container: docker\nports: [30000, 32000]\nworker_ips: ['h:[1,1]']\n", "conf.yml:2: ports lists 2 ports but use_container docker with 2 executors needs 3"},
	{"port range", "ports: [0]\n", "conf.yml:1: ports: 0 is not in 1..65535"},
	{"executor_restarts negative", "executor_restarts: -1\n", "conf.yml:1: executor_restarts must be in 0..100, got -1"},
	{"executor_restarts over the bound", "executor_restarts: 101\n", "conf.yml:1: executor_restarts must be in 0..100, got 101"},
	{"executor_restarts word", "executor_restarts: twice\n", `conf.yml:1: executor_restarts: expected an integer, got "twice"`},
	{"port word", "ports: [http]\n", `conf.yml:1: ports: expected an integer, got "http"`},
	{"worker_ips no brackets", "worker_ips:\n  - 10.0.0.1\n", `conf.yml:2: worker_ips: worker "10.0.0.1": expected host:[n,...] (e.g. 10.0.0.1:[2,1])`},
	{"worker_ips bad count", "worker_ips:\n  - 10.0.0.1:[a]\n", "expected host:[n,...]"},
	{"worker_ips negative", "worker_ips:\n  - 10.0.0.1:[-1]\n", "process counts must be in 0..65536"},
	{"worker_ips no host", "worker_ips:\n  - :[1]\n", "expected host:[n,...]"},
	{"worker_ips zero", "worker_ips:\n  - h:[0]\n", "worker_ips gives 0 executors; need at least 1"},
	{"worker_ips map", "worker_ips: {a: 1}\n", "worker_ips: expected a list, got a map"},
	{"num_executors over the bound", "num_executors: 65537\n", "conf.yml:1: executor count: num_executors gives 65537 executors; at most 65536 are supported"},
	{"job_conf num_executors over the bound", conf("num_executors: 70000"), "job_conf.num_executors must be at most 65536, got 70000"},
	{"worker_ips over the bound", "worker_ips:\n  - a:[65536]\n  - b:[1]\n", "worker_ips gives 65537 executors; at most 65536 are supported"},
	{"num_classes over int32", conf("num_classes: 4294967306"), "job_conf.num_classes must be at most 2147483647, got 4294967306"},
	{"executor sources disagree", "num_executors: 3\nworker_ips: ['h:[2]']\n", "executor count: num_executors gives 3 but worker_ips gives 2"},
	{"image flag injection", "executor_image: --privileged\n", "executor_image must be a name without spaces that does not start with '-'"},
	{"docker_engines list", "docker_engines: [a]\n", "conf.yml:1: docker_engines: expected a map of host to Docker engine"},
	{"docker_engines unknown host", "ps_ip: a\nworker_ips: ['b:[1]']\ndocker_engines: {c: ssh://c}\n", `conf.yml:3: docker_engines: "c" is neither ps_ip nor a worker_ips host`},
	{"docker_engines empty engine", "ps_ip: a\ndocker_engines: {a: ''}\n", "docker_engines.a must be a Docker engine address"},
	{"docker_engines flag injection", "ps_ip: a\ndocker_engines: {a: --tls}\n", "docker_engines.a must be a Docker engine address"},
	{"docker_engines map value", "ps_ip: a\ndocker_engines: {a: {b: c}}\n", "conf.yml:2: docker_engines.a: expected a string, got a map"},
	{"docker_engines duplicate", "ps_ip: a\ndocker_engines:\n  a: unix:///x\n  a: unix:///y\n", `conf.yml:4: duplicate docker_engines host "a"`},
	{"setup_commands map", "setup_commands: {a: b}\n", "setup_commands: expected a list, got a map"},
	{"auth scalar", "auth: me\n", `auth: expected a map with ssh_user and ssh_private_key, got "me"`},
	{"non-scalar key", "? [a]\n: 1\n", "top-level keys must be names, got a list"},
	{"k8s scalar", "k8s: yes\n", `conf.yml:1: k8s: expected a map of keys (aggregator_cpu, `},
	{"k8s unknown key", "k8s:\n  executor_mem: 1Gi\n", `conf.yml:2: unknown k8s key "executor_mem" (did you mean "executor_cpu"?)`},
	{"k8s duplicate key", "k8s:\n  data_pvc: a\n  data_pvc: b\n", `conf.yml:3: duplicate k8s key "data_pvc"`},
	{"k8s node_selector list", "k8s:\n  node_selector: [a]\n", "conf.yml:2: k8s.node_selector: expected a map (name: value), got a list"},
	{"k8s node_selector value", "k8s:\n  node_selector: {pool: [a]}\n", "k8s.node_selector.pool: expected a string, got a list"},
	{"k8s toleration scalar", "k8s:\n  tolerations: [gpu]\n", `k8s.tolerations: each entry is a map (key, operator, value, effect, tolerationSeconds), got "gpu"`},
	{"k8s toleration key", "k8s:\n  tolerations:\n    - {key: a, efect: NoSchedule}\n", `conf.yml:3: unknown k8s.tolerations key "efect" (did you mean "effect"?)`},
	{"k8s toleration seconds", "k8s:\n  tolerations:\n    - {key: a, tolerationSeconds: soon}\n", `k8s.tolerations.tolerationSeconds: expected an integer, got "soon"`},
	{"k8s cpu list", "k8s:\n  executor_cpu: [1]\n", "k8s.executor_cpu: expected a string, got a list"},
	{"k8s pull secrets map", "k8s:\n  image_pull_secrets: {a: b}\n", "k8s.image_pull_secrets: expected a list, got a map"},
	{"several errors", conf("rounds: 0", "batch_size: x"), `job_conf.batch_size: expected an integer, got "x"`},
}

// The k8s section is read as written (launcher/job checks the values
// against Kubernetes' rules); numbers are kept as their text.
func TestParseK8s(t *testing.T) {
	j, err := Parse([]byte(`use_container: k8s
k8s:
  data_pvc: fedscale-data
  service_account: fl
  priority_class: low
  node_selector: {pool: fl, zone: a}
  tolerations:
    - {key: pool, operator: Equal, value: fl, effect: NoSchedule}
    - {key: spot, operator: Exists, tolerationSeconds: 60}
  image_pull_secrets: [regcred, other]
  aggregator_cpu: 0.5
  aggregator_memory: 1Gi
  executor_cpu: 2
  executor_memory: 4Gi
  executor_memory_limit: 6Gi
`), "conf.yml")
	if err != nil {
		t.Fatal(err)
	}
	sixty := int64(60)
	want := K8s{
		DataPVC: "fedscale-data", ServiceAccount: "fl", PriorityClass: "low",
		NodeSelector: map[string]string{"pool": "fl", "zone": "a"},
		Tolerations: []Toleration{
			{Key: "pool", Operator: "Equal", Value: "fl", Effect: "NoSchedule"},
			{Key: "spot", Operator: "Exists", Seconds: &sixty},
		},
		ImagePullSecrets: []string{"regcred", "other"},
		Aggregator:       Resources{CPU: "0.5", Memory: "1Gi"},
		Executor:         Resources{CPU: "2", Memory: "4Gi", MemoryLimit: "6Gi"},
	}
	if !reflect.DeepEqual(j.K8s, want) {
		t.Errorf("k8s section\n%+v\nwant\n%+v", j.K8s, want)
	}
	// Absent or empty: all zero.
	for _, in := range []string{"use_container: k8s\n", "k8s:\n"} {
		j, err := Parse([]byte(in), "conf.yml")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(j.K8s, K8s{}) {
			t.Errorf("%q: k8s %+v", in, j.K8s)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrorCases {
		t.Run(tt.name, func(t *testing.T) {
			j, err := Parse([]byte(tt.in), "conf.yml")
			if err == nil {
				t.Fatalf("Parse succeeded (%+v); want error containing %q", j, tt.want)
			}
			if j != nil {
				t.Errorf("Parse returned a job with its error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error\n%v\nwant substring\n%s", err, tt.want)
			}
		})
	}
}

func TestParseReportsAllErrors(t *testing.T) {
	_, err := Parse([]byte(conf("eval_interval: 0", "decay_round: 0")), "conf.yml")
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"conf.yml:2: job_conf.eval_interval", "conf.yml:3: job_conf.decay_round"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.yml")
	if err := os.WriteFile(huge, bytes.Repeat([]byte("# comment\n"), MaxJobFileBytes/10+1), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want string // besides the path
	}{
		{"missing", filepath.Join(dir, "nope.yml"), ""},
		{"directory", dir, "not a regular file"},
		// Neither may be read to the end: the first has none, the second
		// blocks in open(2) until a writer comes.
		{"device", "/dev/zero", "is a device, not a regular file"},
		{"fifo", fifo, "is a named pipe (FIFO), not a regular file"},
		{"over the bound", huge, fmt.Sprintf("more than the %d allowed", MaxJobFileBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%q) error = %v; want one naming the file and saying %q", tt.path, err, tt.want)
			}
		})
	}
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte(conf("rounds: ten")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.HasPrefix(err.Error(), bad+":2: ") {
		t.Errorf("Load(bad) error = %v; want prefix %s:2:", err, bad)
	}
}

func TestSet(t *testing.T) {
	t.Setenv("HOME", "/home/carol")
	tests := []struct {
		key, value string
		check      func(c Conf) bool
		wantErr    string
	}{
		{"rounds", "10", func(c Conf) bool { return c.Rounds == 10 }, ""},
		{"rounds", "1e2", func(c Conf) bool { return c.Rounds == 100 }, ""},
		{"rounds", "ten", nil, `job_conf.rounds: expected an integer, got "ten"`},
		{"filter_more", "1e15", func(c Conf) bool { return c.FilterMore == 1e15 }, ""},
		{"learning_rate", "5e-5", func(c Conf) bool { return c.LearningRate == 5e-5 }, ""},
		{"learning_rate", "NaN", nil, "expected a finite number"},
		{"use_cuda", "False", func(c Conf) bool { return !c.UseCuda }, ""},
		{"save_checkpoint", "True", func(c Conf) bool { return c.SaveCheckpoint }, ""},
		{"use_cuda", "perhaps", nil, "expected true or false"},
		{"data_dir", "~/d", func(c Conf) bool { return c.DataDir == "/home/carol/d" }, ""},
		{"device_conf_file", "None", func(c Conf) bool { return c.DeviceConfFile == "" }, ""},
		{"cuda_device", "none", func(c Conf) bool { return c.CudaDevice == -1 }, ""},
		{"gradient_policy", "fed-yogi", func(c Conf) bool { return c.GradientPolicy == aggregate.PolicyFedYogi }, ""},
		{"gradient_policy", "adam", nil, "valid: none (fed-avg), fed-yogi, fed-prox, q-fedavg"},
		{"job_name", "exp1", func(c Conf) bool { return c.JobName == "exp1" }, ""},
		{"num_loaders", "4", func(c Conf) bool { return c.NumLoaders == 4 }, ""},
		{"learing_rate", "0.1", nil, `unknown job_conf key "learing_rate" (did you mean "learning_rate"?)`},
		{"wandb_token", "x", nil, "job_conf.wandb_token is known to FedScale but not used by this runtime"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c := Default()
			err := c.Set(tt.key, tt.value)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Set error = %v; want %q", err, tt.wantErr)
				}
				if c.IsSet(tt.key) {
					t.Errorf("failed Set marked %s as set", tt.key)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected Conf %+v", c)
			}
			if !c.IsSet(tt.key) || !slices.Equal(c.SetKeys(), []string{tt.key}) {
				t.Errorf("IsSet(%s) = false or SetKeys = %v", tt.key, c.SetKeys())
			}
		})
	}
}

func TestSetThenValidate(t *testing.T) {
	j, err := Parse([]byte(conf("filter_more: 30", "filter_less: 21")), "conf.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Conf.Set("filter_less", "64"); err != nil {
		t.Fatal(err)
	}
	if err := j.Conf.Validate(); err == nil || !strings.Contains(err.Error(), "job_conf.filter_more (30) must be at least job_conf.filter_less (64)") {
		t.Errorf("Validate after Set = %v", err)
	}
	if err := j.Validate(); err == nil {
		t.Error("Job.Validate after Set = nil")
	}
}

func TestSetDoesNotAliasCopies(t *testing.T) {
	a := Default()
	if err := a.Set("rounds", "3"); err != nil {
		t.Fatal(err)
	}
	b := a
	if err := b.Set("model", "lenet"); err != nil {
		t.Fatal(err)
	}
	if a.IsSet("model") {
		t.Error("Set on a copy marked the original")
	}
	if !b.IsSet("rounds") || !b.IsSet("model") {
		t.Error("copy lost its set keys")
	}
}

func TestExecutors(t *testing.T) {
	withConf := func(kv ...string) Conf {
		c := Default()
		for i := 0; i+1 < len(kv); i += 2 {
			if err := c.Set(kv[i], kv[i+1]); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	hosts := []WorkerHost{{"a", []int{2, 1}}, {"b", []int{1}}}
	tests := []struct {
		name    string
		job     Job
		want    int
		wantErr string
	}{
		{"nothing", Job{Conf: Default()}, 1, ""},
		{"zero Conf", Job{}, 1, ""},
		{"job_conf num_executors", Job{Conf: withConf("num_executors", "5")}, 5, ""},
		{"top-level", Job{NumExecutors: 3, Conf: Default()}, 3, ""},
		{"worker_ips", Job{WorkerIPs: hosts, Conf: Default()}, 4, ""},
		{"executor_configs", Job{Conf: withConf("executor_configs", "a:[2]=b:[1,1]")}, 4, ""},
		{"agreeing sources", Job{NumExecutors: 4, WorkerIPs: hosts, Conf: withConf("num_executors", "4", "executor_configs", "x:[4]")}, 4, ""},
		{"conf vs top-level", Job{NumExecutors: 3, Conf: withConf("num_executors", "5")}, 0, "job_conf.num_executors gives 5 but num_executors gives 3"},
		{"top-level vs worker_ips", Job{NumExecutors: 3, WorkerIPs: hosts, Conf: Default()}, 0, "num_executors gives 3 but worker_ips gives 4"},
		{"worker_ips vs executor_configs", Job{WorkerIPs: hosts, Conf: withConf("executor_configs", "a:[1]")}, 0, "worker_ips gives 4 but job_conf.executor_configs gives 1"},
		{"bad executor_configs", Job{Conf: withConf("executor_configs", "a")}, 0, "job_conf.executor_configs"},
		{"zero processes", Job{WorkerIPs: []WorkerHost{{"a", []int{0}}}}, 0, "need at least 1"},
		{"over MaxExecutors", Job{NumExecutors: MaxExecutors + 1, Conf: Default()}, 0, "num_executors gives 65537 executors; at most 65536"},
		{"at MaxExecutors", Job{NumExecutors: MaxExecutors, Conf: Default()}, MaxExecutors, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.job.Executors()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Executors() = %d, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Executors() = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestNearest(t *testing.T) {
	tests := []struct {
		key, want string
	}{
		{"learing_rate", "learning_rate"},
		{"learning-rate", "learning_rate"},
		{"Rounds", "rounds"},
		{"batchsize", "batch_size"},
		{"eval_intervl", "eval_interval"},
		{"gradiant_policy", "gradient_policy"},
		{"yogi_beta3", "yogi_beta"},
		{"num_executor", "num_executors"},
	}
	for _, tt := range tests {
		if got := nearest(tt.key, knownKeys); got != tt.want {
			t.Errorf("nearest(%.20q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	if got := nearest("use_containr", topLevelKeys); got != "use_container" {
		t.Errorf("top-level nearest = %q", got)
	}
	// A huge key costs bounded work and still gets an answer.
	if got := nearest(strings.Repeat("x", 1<<20), knownKeys); got == "" {
		t.Error("nearest(huge key) = \"\"")
	}
}

func TestKnownKeys(t *testing.T) {
	keys := KnownKeys()
	if len(originalKeys) != 118 {
		t.Errorf("original key list has %d names, want 118", len(originalKeys))
	}
	if !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
		t.Error("KnownKeys not sorted and unique")
	}
	for k := range originalKeys {
		if !slices.Contains(keys, k) {
			t.Errorf("KnownKeys lacks original key %q", k)
		}
	}
	for _, f := range fields {
		if !slices.Contains(keys, f.key) {
			t.Errorf("KnownKeys lacks our key %q", f.key)
		}
	}
	keys[0] = "mutated"
	if KnownKeys()[0] == "mutated" {
		t.Error("KnownKeys returned shared storage")
	}
}

func TestParseWorkerHost(t *testing.T) {
	tests := []struct {
		in      string
		want    WorkerHost
		wantErr bool
	}{
		{"10.0.0.1:[2,1]", WorkerHost{"10.0.0.1", []int{2, 1}}, false},
		{" host.example:[ 1 , 0 ,3] ", WorkerHost{"host.example", []int{1, 0, 3}}, false},
		{"[::1]:[4]", WorkerHost{"[::1]", []int{4}}, false},
		{"10.0.0.1", WorkerHost{}, true},
		{"10.0.0.1:[]", WorkerHost{}, true},
		{"10.0.0.1:[1,]", WorkerHost{}, true},
		{"10.0.0.1:2", WorkerHost{}, true},
		{"a b:[1]", WorkerHost{}, true},
		{"h:[99999999]", WorkerHost{}, true},
	}
	for _, tt := range tests {
		got, err := ParseWorkerHost(tt.in)
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseWorkerHost(%q) = %+v, %v", tt.in, got, err)
		}
		if err == nil && got.String() != strings.ReplaceAll(strings.TrimSpace(tt.in), " ", "") {
			t.Errorf("String() = %q", got.String())
		}
	}
	if n := (WorkerHost{"a", []int{2, 1, 3}}).Processes(); n != 6 {
		t.Errorf("Processes() = %d, want 6", n)
	}
}

func TestExpandPath(t *testing.T) {
	t.Setenv("HOME", "/home/dan")
	t.Setenv("FH", "/fed")
	t.Setenv("EMPTY", "")
	os.Unsetenv("FEDSCALE_NOPE")
	tests := []struct{ in, want string }{
		{"$FH/bench", "/fed/bench"},
		{"${FH}/bench", "/fed/bench"},
		{"$FH$FH", "/fed/fed"},
		{"$FEDSCALE_NOPE/x", "$FEDSCALE_NOPE/x"},
		{"${FEDSCALE_NOPE}/x", "${FEDSCALE_NOPE}/x"},
		{"a${EMPTY}b", "ab"},
		{"cost$", "cost$"},
		{"${unclosed", "${unclosed"},
		{"${}", "${}"},
		{"~", "/home/dan"},
		{"~/x", "/home/dan/x"},
		{"~user/x", "~user/x"},
		{"a/~/b", "a/~/b"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := ExpandPath(tt.in); got != tt.want {
			t.Errorf("ExpandPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDefaultAndValidate(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if c.FilterMore != 1e15 || c.SampleSeed != 233 || c.WeightDecay != 5e-4 || c.NumClasses != 0 ||
		c.TimeStamp != "" || c.PsPort != 29500 || c.GradientPolicy != aggregate.PolicyFedAvg || !c.UseCuda {
		t.Errorf("Default() = %+v", c)
	}
	if len(c.SetKeys()) != 0 {
		t.Errorf("Default() has set keys %v", c.SetKeys())
	}
	tests := []struct {
		name   string
		mutate func(c *Conf)
		want   string
	}{
		{"nan lr", func(c *Conf) { c.LearningRate = math.NaN() }, "job_conf.learning_rate must be a finite number, got NaN"},
		{"inf tau", func(c *Conf) { c.YogiTau = math.Inf(1) }, "job_conf.yogi_tau must be a finite number"},
		{"bad policy", func(c *Conf) { c.GradientPolicy = "sgd" }, "job_conf.gradient_policy"},
		{"empty job name", func(c *Conf) { c.JobName = "" }, "job_conf.job_name must be a non-empty name"},
		{"cuda_device", func(c *Conf) { c.CudaDevice = -2 }, "job_conf.cuda_device must be a GPU index"},
		{"short fingerprint", func(c *Conf) { c.DataFingerprint = "abc" }, "job_conf.data_fingerprint must be 64 lowercase hex digits"},
		{"upper-case fingerprint", func(c *Conf) { c.DataFingerprint = strings.Repeat("A", 64) }, "job_conf.data_fingerprint must be 64 lowercase hex digits"},
		{"fingerprint in deployment", func(c *Conf) {
			c.DataFingerprint, c.ExperimentMode = strings.Repeat("a", 64), Deployment
		}, "in deployment each device's data is its own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v; want %q", err, tt.want)
			}
		})
	}
}

func TestLogDir(t *testing.T) {
	tests := []struct {
		logPath, job, stamp, want string
	}{
		{"/var/fed", "femnist", "0426_221215", "/var/fed/logs/femnist/0426_221215"},
		{"./", "demo_job", "", "logs/demo_job"},
	}
	for _, tt := range tests {
		c := Default()
		c.LogPath, c.JobName, c.TimeStamp = tt.logPath, tt.job, tt.stamp
		if got := c.LogDir(); got != tt.want {
			t.Errorf("LogDir() = %q, want %q", got, tt.want)
		}
	}
}

func TestRepeatedKeyWarns(t *testing.T) {
	j, err := Parse([]byte(conf("rounds: 10", "model: lenet", "rounds: 20")), "conf.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"conf.yml:4: job_conf.rounds is given again (first at line 2); the later value wins"}
	if j.Conf.Rounds != 20 || !slices.Equal(j.Warnings, want) {
		t.Errorf("Rounds = %d, Warnings = %q; want 20, %q", j.Conf.Rounds, j.Warnings, want)
	}
}

// TestFieldTable keeps the key table and the Conf struct in step: every
// field has a key (its json tag) and every key's coercion matches its
// field's type.
func TestFieldTable(t *testing.T) {
	sample := map[kind]string{
		kindInt: "3", kindInt64: "3", kindFloat: "0.5", kindBool: "true", kindString: "x",
		kindPath: "/p", kindOptPath: "none", kindOptInt: "2", kindPolicy: "fed-prox",
	}
	for _, f := range fields {
		c := Default()
		if err := c.Set(f.key, sample[f.kind]); err != nil {
			t.Errorf("Set(%s, %q): %v", f.key, sample[f.kind], err)
		}
	}
	typ := reflect.TypeOf(Conf{})
	var tags []string
	for i := 0; i < typ.NumField(); i++ {
		if tag := typ.Field(i).Tag.Get("json"); tag != "" {
			tags = append(tags, tag)
		}
	}
	var keys []string
	for _, f := range fields {
		keys = append(keys, f.key)
	}
	slices.Sort(tags)
	slices.Sort(keys)
	if !slices.Equal(tags, keys) {
		t.Errorf("Conf json tags %v\ndiffer from keys %v", tags, keys)
	}
}

// FedScale's own cifar10 configs set filter_less 0 with batches of 32:
// accepted, with a line saying what happens to the small clients.
func TestFilterLessBelowBatchWarns(t *testing.T) {
	j, err := Parse([]byte(conf("batch_size: 32", "filter_less: 0")), "conf.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := "conf.yml:3: job_conf.filter_less (0) is below job_conf.batch_size (32): clients with fewer samples than a batch train on batches of all their samples"
	if !slices.Contains(j.Warnings, want) {
		t.Errorf("Warnings = %q, want %q", j.Warnings, want)
	}
}

// Every key decides whether a checkpoint written under another value may
// be resumed; a key added without deciding fails here.
func TestEveryKeyHasAResumeRule(t *testing.T) {
	for _, f := range fields {
		if f.resume != mustMatch && f.resume != mayChange {
			t.Errorf("job_conf.%s: no resume rule (mustMatch or mayChange)", f.key)
		}
	}
}

func TestFingerprint(t *testing.T) {
	fp := func(c Conf) string {
		var b strings.Builder
		c.WriteFingerprint(&b)
		return b.String()
	}
	base := fp(Default())
	for _, tc := range []struct {
		key, value string
		changes    bool
	}{
		{"learning_rate", "0.01", true},
		{"gradient_policy", "fed-prox", true},
		{"local_steps", "7", true},
		{"loss_decay", "0.5", true},
		{"data_set", "femnist", true},
		{"rounds", "500", false},
		{"eval_interval", "1", false},
		{"test_bsz", "7", false},
		{"log_path", "/elsewhere", false},
		{"data_dir", "/elsewhere", false}, // the data have their own fingerprint
		{"num_executors", "9", false},
	} {
		c := Default()
		if err := c.Set(tc.key, tc.value); err != nil {
			t.Fatal(err)
		}
		if got := fp(c) != base; got != tc.changes {
			t.Errorf("%s=%s: fingerprint changed = %v, want %v", tc.key, tc.value, got, tc.changes)
		}
	}
	if !strings.Contains(base, "model=shufflenet_v2_x2_0\n") || !strings.Contains(base, "gradient_policy=\n") {
		t.Errorf("fingerprint lacks the model or the policy:\n%s", base)
	}
}

// The cases where os.Expand, with a mapping that keeps unset variables,
// would change a path that Python's os.path.expandvars leaves alone: why
// expandVars is our own.
func TestExpandVarsNotOSExpand(t *testing.T) {
	os.Unsetenv("FEDSCALE_NOPE")
	keep := func(name string) string {
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return "$" + name
	}
	for _, in := range []string{"${FEDSCALE_NOPE}/x", "${unclosed"} {
		if got := expandVars(in); got != in {
			t.Errorf("expandVars(%q) = %q, want it unchanged", in, got)
		}
		if os.Expand(in, keep) == in {
			t.Errorf("os.Expand(%q) keeps it: expandVars could be os.Expand", in)
		}
	}
}

func TestGPUOf(t *testing.T) {
	j := &Job{WorkerIPs: []WorkerHost{{"a", []int{4, 4}}, {"b", []int{0, 2}}}}
	for rank, want := range map[int]int{0: -1, 1: 0, 4: 0, 5: 1, 8: 1, 9: 1, 10: 1, 11: -1} {
		if got := j.GPUOf(rank); got != want {
			t.Errorf("GPUOf(%d) = %d, want %d", rank, got, want)
		}
	}
	if got := (&Job{}).GPUOf(1); got != -1 {
		t.Errorf("no worker_ips: GPUOf(1) = %d, want -1", got)
	}
}

// GPUPeers: the executors on a rank's GPU of its host, the rank included.
func TestGPUPeers(t *testing.T) {
	j := &Job{WorkerIPs: []WorkerHost{{"a", []int{4, 1}}, {"b", []int{0, 2}}}}
	for rank, want := range map[int]int{0: 1, 1: 4, 4: 4, 5: 1, 6: 2, 7: 2, 8: 1} {
		if got := j.GPUPeers(rank); got != want {
			t.Errorf("GPUPeers(%d) = %d, want %d", rank, got, want)
		}
	}
	if got := (&Job{}).GPUPeers(1); got != 1 {
		t.Errorf("no worker_ips: GPUPeers(1) = %d, want 1", got)
	}
}
