package job

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func withHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "benchmark"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FEDSCALE_HOME", home)
	return home
}

// The original project's job files are accepted unchanged.
func TestOriginalJobFiles(t *testing.T) {
	home := withHome(t)
	for _, tc := range []struct {
		file, backend string
		executors     int
		cuda          bool
	}{
		{"conf_k8s.yml", BackendK8s, 2, true},
		{"conf_docker.yml", BackendDocker, 2, false},
	} {
		s, err := Load(filepath.Join("testdata", tc.file), Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if s.Backend != tc.backend || s.Executors != tc.executors || s.UseCUDA != tc.cuda || s.Name != "femnist" {
			t.Errorf("%s: %+v", tc.file, s)
		}
		if s.DataPath != filepath.Join(home, "benchmark") {
			t.Errorf("%s: data_path %q not expanded", tc.file, s.DataPath)
		}
		if !strings.HasPrefix(s.AggregatorImage, DefaultAggregatorRepo+":") || !strings.HasPrefix(s.ExecutorImage, DefaultExecutorRepo+":") {
			t.Errorf("%s: images %s %s", tc.file, s.AggregatorImage, s.ExecutorImage)
		}
	}
}

func TestProcesses(t *testing.T) {
	withHome(t)
	s, err := Load(filepath.Join("testdata", "conf_docker.yml"), Options{Name: "fm", AggregatorImage: "a:1", ExecutorImage: "e:1"})
	if err != nil {
		t.Fatal(err)
	}
	ps := s.Processes("/etc/fedscale/job.yml", "fm-aggregator", "/etc/fedscale-tls")
	if len(ps) != 3 || ps[0].Name != "aggregator" || ps[2].Name != "executor-2" {
		t.Fatalf("processes %+v", ps)
	}
	if ps[0].Image != "a:1" || ps[1].Image != "e:1" || s.Name != "fm" {
		t.Errorf("images/name: %+v", ps)
	}
	got := strings.Join(ps[2].Args, " ")
	want := "--config /etc/fedscale/job.yml --job-name femnist --tls-dir /etc/fedscale-tls --rank 2 --ps-ip fm-aggregator --ps-port 29500"
	if got != want {
		t.Errorf("executor-2 args:\n got %s\nwant %s", got, want)
	}
	// worker_ips localhost:[2]: both executors on GPU 0.
	if ps[1].GPU != 0 || ps[2].GPU != 0 || ps[1].Host != "localhost" || ps[0].GPU != -1 {
		t.Errorf("GPU slots: %+v", ps)
	}
	if ps[0].HealthPort != 29501 || ps[2].HealthPort != 29503 {
		t.Errorf("health ports %d %d", ps[0].HealthPort, ps[2].HealthPort)
	}
	l := s.Labels(&ps[1])
	if l[LabelJob] != "fm" || l[LabelComponent] != "executor" || l[LabelRank] != "1" || l[LabelManagedBy] != ManagedBy {
		t.Errorf("labels %v", l)
	}
}

// TestBadInput: one clear error each, naming the key or flag.
func TestBadInput(t *testing.T) {
	home := withHome(t)
	docker := func(edit func(string) string) string {
		data, err := os.ReadFile(filepath.Join("testdata", "conf_docker.yml"))
		if err != nil {
			t.Fatal(err)
		}
		return edit(string(data))
	}
	for _, tc := range []struct {
		name string
		file string
		opts Options
		want string
	}{
		{"ports not executors+1", docker(func(s string) string { return strings.Replace(s, "[30000, 32000, 32001]", "[30000, 32000]", 1) }), Options{}, "ports lists 2 ports but use_container docker with 2 executors needs 3"},
		{"two aggregators", docker(func(s string) string {
			return strings.Replace(s, "use_container: docker", "use_container: docker\nnum_aggregators: 2", 1)
		}), Options{}, "num_aggregators: only 1 aggregator is supported, got 2"},
		{"missing data_path", docker(func(s string) string {
			return strings.Replace(s, "data_path: $FEDSCALE_HOME/benchmark", "data_path: $FEDSCALE_HOME/nope", 1)
		}), Options{}, "data_path " + filepath.Join(home, "nope")},
		{"unknown use_container", docker(func(s string) string { return strings.Replace(s, "use_container: docker", "use_container: podman", 1) }), Options{}, `use_container must be docker, k8s or absent, got "podman"`},
		{"unknown backend flag", docker(func(s string) string { return s }), Options{Backend: "nomad"}, `--backend "nomad": want docker, k8s or local`},
		{"bad --name", docker(func(s string) string { return s }), Options{Name: "Fem_Nist"}, `--name: job name "Fem_Nist"`},
		{"typo in a key", docker(func(s string) string { return strings.Replace(s, "container_network:", "container_netwrok:", 1) }), Options{}, "container_network"},
		{"--executor-restarts over the bound", docker(func(s string) string { return s }), Options{ExecutorRestarts: ptr(101)}, "--executor-restarts must be in 0..100, got 101"},
		{"executor_restarts negative", docker(func(s string) string { return "executor_restarts: -2\n" + s }), Options{}, "executor_restarts must be in 0..100, got -2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "conf.yml")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func ptr(n int) *int { return &n }

// executor_restarts: the flag over the job file over the backend's default.
func TestExecutorRestarts(t *testing.T) {
	withHome(t)
	for _, tc := range []struct {
		name    string
		file    string // prepended to conf_docker.yml
		backend string
		flag    *int
		want    int
	}{
		{"docker default", "", "", nil, 0},
		{"local default", "", BackendLocal, nil, 0},
		{"k8s default", "", BackendK8s, nil, DefaultExecutorRestarts(BackendK8s)},
		{"job file", "executor_restarts: 2\n", "", nil, 2},
		{"job file 0 on k8s", "executor_restarts: 0\n", BackendK8s, nil, 0},
		{"flag over job file", "executor_restarts: 2\n", "", ptr(5), 5},
		{"flag 0", "executor_restarts: 2\n", "", ptr(0), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "conf_docker.yml"))
			if err != nil {
				t.Fatal(err)
			}
			s, err := Parse(append([]byte(tc.file), data...), "conf.yml", Options{Backend: tc.backend, ExecutorRestarts: tc.flag, RemoteEngine: true})
			if err != nil {
				t.Fatal(err)
			}
			if s.ExecutorRestarts != tc.want {
				t.Errorf("ExecutorRestarts %d, want %d", s.ExecutorRestarts, tc.want)
			}
		})
	}
}

// The health ports (ps_port+1 on) must stay ports: ps_port+1+rank for
// local processes and Docker containers, ps_port+2 for every Kubernetes
// executor.
func TestHealthPorts(t *testing.T) {
	withHome(t)
	for _, tc := range []struct {
		backend string
		psPort  int
		want    string // "" for no error
	}{
		{BackendDocker, 65532, ""}, // executor-2 at 65535
		{BackendDocker, 65533, "job_conf ps_port 65533: the health ports of the aggregator and the 2 executors (from ps_port+1 on) would reach 65536, past 65535"},
		{BackendLocal, 65533, "would reach 65536"},
		{BackendK8s, 65533, ""}, // every executor at 65535
		{BackendK8s, 65534, "would reach 65536"},
	} {
		t.Run(fmt.Sprintf("%s %d", tc.backend, tc.psPort), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "conf_docker.yml"))
			if err != nil {
				t.Fatal(err)
			}
			file := strings.Replace(string(data), "job_conf:\n", fmt.Sprintf("job_conf:\n    - ps_port: %d\n", tc.psPort), 1)
			s, err := Parse([]byte(file), "conf.yml", Options{Backend: tc.backend, RemoteEngine: true})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				ps := s.Processes("c", "h", "t")
				if last := ps[len(ps)-1].HealthPort; last > 65535 {
					t.Errorf("last health port %d", last)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{"femnist": "femnist", "Google_Speech": "google-speech", "_x.y_": "x-y"} {
		if got := SanitizeName(in); got != want || ValidateName(got) != nil {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
	if ValidateName(strings.Repeat("a", MaxNameLen+1)) == nil {
		t.Error("over-long name accepted")
	}
}

// A job file that is not a regular file is an error at once, not a hang.
func TestLoadNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo.yml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	for _, path := range []string{fifo, "/dev/zero", t.TempDir()} {
		done := make(chan error, 1)
		go func() { _, err := Load(path, Options{}); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("Load(%s) = %v, want an error saying it is not a regular file", path, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Load(%s) hung", path)
		}
	}
}
