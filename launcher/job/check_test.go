package job

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// localJob is a job file for local processes; %s are data_path's line and
// data_dir.
const localJob = `%s
job_conf:
    - job_name: checks
    - log_path: %s
    - data_dir: %s
    - model: %s
`

func writeJob(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "conf.yml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestParseChecks: an unknown model, an unset variable in a path and a
// missing data_path are one error each, naming the key (and variable).
func TestParseChecks(t *testing.T) {
	home := withHome(t)
	t.Setenv("FEDSCALE_TEST_UNSET", "") // restored after the test
	os.Unsetenv("FEDSCALE_TEST_UNSET")
	data := filepath.Join(home, "benchmark")
	fill := func(dataPath, logPath, dataDir, model string) string {
		return fmt.Sprintf(localJob, dataPath, logPath, dataDir, model)
	}
	for _, tc := range []struct {
		name string
		file string
		opts Options
		want string // "" means no error
	}{
		{"valid", fill("", home, data, "resnet18"), Options{}, ""},
		{"unknown model", fill("", home, data, "resnet19"), Options{}, `job_conf model: unknown model "resnet19" (supported: `},
		{"unset in data_path", fill("use_container: k8s\ndata_path: $FEDSCALE_TEST_UNSET/benchmark", home, data, "mlp"), Options{},
			`data_path "$FEDSCALE_TEST_UNSET/benchmark" uses $FEDSCALE_TEST_UNSET, which is not set`},
		{"braced, unset in log_path", fill("", "${FEDSCALE_TEST_UNSET}/logs", data, "mlp"), Options{},
			`job_conf log_path "${FEDSCALE_TEST_UNSET}/logs" uses $FEDSCALE_TEST_UNSET`},
		{"set variable", fill("", "$FEDSCALE_HOME/logs", data, "mlp"), Options{}, ""},
		{"missing data_path, local", fill("data_path: "+filepath.Join(home, "nope"), home, data, "mlp"), Options{}, "data_path " + filepath.Join(home, "nope")},
		{"data_path not a folder", fill("data_path: "+filepath.Join(home, "file"), home, data, "mlp"), Options{}, "data_path " + filepath.Join(home, "file") + ": not a folder"},
		{"missing data_path, remote engine", fill("use_container: docker\nports: [1, 2]\ndata_path: "+filepath.Join(home, "nope"), home, data, "mlp"), Options{RemoteEngine: true}, ""},
		{"missing data_path, k8s", fill("use_container: k8s\ndata_path: /on/the/nodes", home, data, "mlp"), Options{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(home, "file"), nil, 0o644)
			_, err := Load(writeJob(t, tc.file), tc.opts)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestFedScaleHomeInContainers: a container has $FEDSCALE_HOME, so the
// job_conf paths may use it when this machine does not set it; data_path,
// which this machine reads, may not; nor may a local job's paths.
func TestFedScaleHomeInContainers(t *testing.T) {
	t.Setenv(EnvHome, "") // restored after the test
	os.Unsetenv(EnvHome)
	for _, tc := range []struct {
		backend, dataPath, want string
	}{
		{"k8s", "/data", ""},
		{"docker", "", ""},
		{"local", "", `job_conf log_path "$FEDSCALE_HOME/benchmark" uses $FEDSCALE_HOME`},
		{"k8s", "$FEDSCALE_HOME/benchmark", `data_path "$FEDSCALE_HOME/benchmark" uses $FEDSCALE_HOME`},
	} {
		body := "num_executors: 1\njob_conf:\n    - job_name: c\n    - log_path: $FEDSCALE_HOME/benchmark\n    - data_dir: $FEDSCALE_HOME/benchmark/data\n"
		if tc.dataPath != "" {
			body = "data_path: " + tc.dataPath + "\n" + body
		}
		_, err := Parse([]byte(body), "c.yml", Options{Backend: tc.backend})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s, data_path %q: error %v, want %q", tc.backend, tc.dataPath, err, tc.want)
		}
	}
}

func TestUnsetVars(t *testing.T) {
	t.Setenv("FS_SET", "x")
	for in, want := range map[string][]string{
		"/plain/path":                 nil,
		"$FS_SET/a":                   nil,
		"$FS_NOPE/a/${FS_NOPE}/$FS_2": {"FS_NOPE", "FS_2"},
		"${FS_NOPE":                   nil, // unclosed: not a reference
		"a$/b$":                       nil,
		"${}":                         nil,
	} {
		if got := unsetVars(in); !slices.Equal(got, want) {
			t.Errorf("unsetVars(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPreflight: a local job's data_dir must be a folder here; a Docker
// job's data_dir in data_path's mount is looked for there (a warning);
// nothing is looked for on Kubernetes or a remote engine.
func TestPreflight(t *testing.T) {
	home := withHome(t)
	data := filepath.Join(home, "benchmark")
	os.MkdirAll(filepath.Join(data, "femnist"), 0o755)
	for _, tc := range []struct {
		name, backend, dataPath, dataDir string
		remote                           bool
		err, warning                     string
	}{
		{"local, present", BackendLocal, "", filepath.Join(data, "femnist"), false, "", ""},
		{"local, missing", BackendLocal, "", filepath.Join(data, "cifar"), false, "job_conf data_dir " + filepath.Join(data, "cifar") + ": stat", ""},
		{"docker, container path present", BackendDocker, data, "/FedScale/benchmark/femnist", false, "", ""},
		{"docker, container path missing", BackendDocker, data, "/FedScale/benchmark/cifar", false, "", "job_conf data_dir /FedScale/benchmark/cifar is " + filepath.Join(data, "cifar") + " through data_path's mount"},
		{"docker, host path missing", BackendDocker, data, filepath.Join(data, "cifar"), false, "", "through data_path's mount"},
		{"docker, outside the mount", BackendDocker, data, "/elsewhere", false, "", ""},
		{"docker, remote engine", BackendDocker, data, "/FedScale/benchmark/cifar", true, "", ""},
		{"k8s", BackendK8s, "/nodes", "/FedScale/benchmark/cifar", false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := "num_executors: 1\nports: [1, 2]\njob_conf:\n    - job_name: c\n    - log_path: /tmp\n    - data_dir: " + tc.dataDir + "\n"
			if tc.dataPath != "" {
				body = "data_path: " + tc.dataPath + "\n" + body
			}
			s, err := Parse([]byte(body), "c.yml", Options{Backend: tc.backend, RemoteEngine: tc.remote})
			if err != nil {
				t.Fatal(err)
			}
			warnings, err := s.Preflight(tc.remote)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
			if got := strings.Join(warnings, "\n"); tc.warning == "" && got != "" || !strings.Contains(got, tc.warning) {
				t.Errorf("warnings %q, want %q", got, tc.warning)
			}
		})
	}
}

// TestHostPath: $FEDSCALE_HOME left unexpanded here is the container's.
func TestHostPath(t *testing.T) {
	s := &Spec{DataPath: "/srv/bench"}
	for in, want := range map[string]string{
		"$FEDSCALE_HOME/benchmark/d":   "/srv/bench/d",
		"${FEDSCALE_HOME}/benchmark/d": "/srv/bench/d",
		"/FedScale/benchmark":          "/srv/bench",
		"/srv/bench/x/../y":            "/srv/bench/y",
		"/FedScale/benchmarks/d":       "",
		"/srv/other":                   "",
	} {
		got, ok := s.hostPath(in)
		if got != want || ok != (want != "") {
			t.Errorf("hostPath(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
