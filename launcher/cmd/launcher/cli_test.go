package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/launcher/cmd/cli"
)

// inProcess runs the launcher's command tree as main does, with no engine
// and no cluster in reach, and returns its exit code and output.
func inProcess(t *testing.T, args ...string) (int, string) {
	t.Helper()
	t.Setenv("FEDSCALE_LAUNCHER_STATE", t.TempDir())
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	t.Setenv("KUBECONFIG", "/nonexistent")
	var out bytes.Buffer
	code := cli.Run(context.Background(), newCommand(&out, &out), args, &out, nil, nil)
	return code, out.String()
}

// localJobFile writes a local job; edit changes its text.
func localJobFile(t *testing.T, edit func(string) string) string {
	t.Helper()
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "data"), 0o755)
	port := infratest.FreePorts(t, 4)
	body := fmt.Sprintf(`num_executors: 2
job_conf:
    - job_name: checks
    - log_path: %s
    - ps_port: %d
    - data_dir: %s/data
    - model: logistic
`, home, port, home)
	file := filepath.Join(home, "conf.yml")
	if err := os.WriteFile(file, []byte(edit(body)), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestSubmitChecks: submit and --dry-run stop, with a usage error naming
// the key, before anything starts.
func TestSubmitChecks(t *testing.T) {
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	same := func(s string) string { return s }
	for _, tc := range []struct {
		name string
		edit func(string) string
		args []string
		code int
		want string
	}{
		{"valid dry run", same, []string{"--dry-run"}, cli.ExitOK, "aggregator: aggregator --config"},
		{"unknown model", func(s string) string { return strings.Replace(s, "model: logistic", "model: resnet181", 1) }, []string{"--dry-run"},
			cli.ExitUsage, `job_conf model: unknown model "resnet181" (supported: `},
		{"unset variable", func(s string) string { return strings.Replace(s, "log_path: ", "log_path: $FEDSCALE_NO_SUCH_VAR", 1) }, nil,
			cli.ExitUsage, "uses $FEDSCALE_NO_SUCH_VAR, which is not set"},
		{"missing data_dir", func(s string) string { return strings.Replace(s, "/data\n", "/nodata\n", 1) }, nil,
			cli.ExitUsage, "job_conf data_dir"},
		{"port taken", func(s string) string {
			return regexp.MustCompile(`ps_port: \d+`).ReplaceAllString(s, fmt.Sprintf("ps_port: %d", busyPort))
		}, []string{"--dry-run"}, cli.ExitUsage, fmt.Sprintf("port %d (job_conf ps_port, the aggregator's gRPC port) is not free", busyPort)},
		{"docker data_path missing", func(s string) string {
			return "use_container: docker\nports: [1, 2, 3]\ndata_path: /nonexistent/bench\n" + s
		}, []string{"--dry-run"}, cli.ExitUsage, "data_path /nonexistent/bench"},
		{"unknown backend", same, []string{"--backend", "nomad"}, cli.ExitUsage, `--backend "nomad": want docker, k8s or local`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := localJobFile(t, tc.edit)
			code, out := inProcess(t, append(append([]string{"submit"}, tc.args...), file)...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("code %d, want %d; output lacks %q:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"version", "-o", "json"}, cli.ExitOK},
		{[]string{"list", "--backend", "local"}, cli.ExitOK},
		{[]string{"stop", "nosuchjob", "--backend", "local"}, cli.ExitNotFound},
		{[]string{"stop", "nosuchjob", "--backend", "local", "--timeout", "1m"}, cli.ExitNotFound},
		{[]string{"stop", "x", "--timeout", "-1s"}, cli.ExitUsage},
		{[]string{"stop", "x", "--timeout", "soon"}, cli.ExitUsage},
		{[]string{"status", "nosuchjob"}, cli.ExitNotFound},
		{[]string{"status", "x", "--backend", "docker"}, cli.ExitUnreachable},
		{[]string{"list", "--backend", "k8s"}, cli.ExitUnreachable},
		{[]string{"logs", "x", "--tail", "-2"}, cli.ExitUsage},
		{[]string{"logs", "x", "--since", "yesterday"}, cli.ExitUsage},
		{[]string{"stop"}, cli.ExitUsage},
		{[]string{"submit", "--wait=later", "conf.yml"}, cli.ExitUsage},
		{[]string{"sumbit"}, cli.ExitUsage},
		{[]string{"results", "nosuchjob"}, cli.ExitNotFound},
		{[]string{"results", "x", "-o", "xml"}, cli.ExitUsage},
		{[]string{"results", "x", "--plot", "x.pdf"}, cli.ExitUsage},
		{[]string{"results"}, cli.ExitUsage},
	} {
		if code, out := inProcess(t, tc.args...); code != tc.code {
			t.Errorf("launcher %s: code %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.code, out)
		}
	}
}

// TestCompletion: cobra's __complete, as the shell scripts call it.
func TestCompletion(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "config")
	os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c1, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {}}]
contexts:
  - {name: prod, context: {cluster: c1, user: u}}
  - {name: dev, context: {cluster: c1, user: u}}
`), 0o644)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--backend", ""}, []string{"local", "docker", "k8s"}},
		{[]string{"status", "-o", ""}, []string{"table", "json", "yaml"}},
		{[]string{"list", "-o", ""}, []string{"table", "json", "yaml"}},
		{[]string{"version", "-o", ""}, []string{"json", "yaml"}},
		{[]string{"submit", "--wait="}, []string{"running", "done"}},
		{[]string{"submit", ""}, []string{"yml", "yaml", ":8"}}, // file names filtered by extension
		{[]string{""}, []string{"submit", "stop", "status", "logs", "list", "version"}},
		{[]string{"--kubeconfig", kubeconfig, "--context", ""}, []string{"dev", "prod"}},
	} {
		code, out := inProcess(t, append([]string{"__complete"}, tc.args...)...)
		lines := map[string]bool{}
		for _, l := range strings.Split(out, "\n") {
			name, _, _ := strings.Cut(l, "\t")
			lines[name] = true
		}
		for _, w := range tc.want {
			if code != 0 || !lines[w] {
				t.Errorf("__complete %q: code %d, lacks %q:\n%s", tc.args, code, w, out)
			}
		}
	}
}

// TestHelp: every subcommand has examples; no default is printed twice;
// -v/--version still prints the version.
func TestHelp(t *testing.T) {
	for _, flag := range []string{"-v", "--version"} {
		if code, out := inProcess(t, flag); code != 0 || out != "launcher version dev\n" {
			t.Errorf("%s: code %d, %q", flag, code, out)
		}
	}
	for _, c := range []string{"submit", "stop", "status", "logs", "list", "version"} {
		code, out := inProcess(t, c, "--help")
		if code != 0 || !strings.Contains(out, "Examples:") {
			t.Errorf("%s --help: code %d, no examples:\n%s", c, code, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Count(line, "default") > 1 && strings.Contains(line, "(default \"") {
				t.Errorf("%s: a default printed twice: %s", c, line)
			}
		}
	}
}
