package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/jobapi"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
)

// buildBinaries compiles the aggregator and executor commands, and the
// other commands named (e.g. "fsdata"), into a temporary folder.
func buildBinaries(t testing.TB, more ...string) string {
	t.Helper()
	bin := t.TempDir()
	args := []string{"build", "-trimpath", "-o", bin + "/"}
	for _, name := range append([]string{"aggregator", "executor"}, more...) {
		args = append(args, "github.com/fedscale/fedscale-go/runtime/cmd/"+name)
	}
	cmd := exec.Command("go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// synthHome makes $FEDSCALE_HOME a temporary folder holding a synthetic
// data set (data/) and returns it with a job file of the given rounds
// (jobFile) in another temporary folder.
func synthHome(t *testing.T, o jobtest.SynthOptions, rounds int) (home, conf string) {
	t.Helper()
	home = t.TempDir()
	t.Setenv("FEDSCALE_HOME", home)
	if err := jobtest.WriteSynthetic(filepath.Join(home, "data"), o); err != nil {
		t.Fatal(err)
	}
	conf = filepath.Join(t.TempDir(), "conf.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(jobFile, rounds)), 0o644); err != nil {
		t.Fatal(err)
	}
	return home, conf
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A job file written the way FedScale users write them: top-level keys,
// worker_ips, $FEDSCALE_HOME in paths, empty setup_commands and a job_conf
// list of single-key maps.
const jobFile = `# FedScale job, as in benchmark/configs
ps_ip: 127.0.0.1
worker_ips:
    - 127.0.0.1:[2]
exp_path: $FEDSCALE_HOME/fedscale/cloud
executor_entry: execution/executor.py
aggregator_entry: aggregation/aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
job_conf:
    - job_name: processes            # logs under log_path/logs/job_name/time_stamp
    - log_path: $FEDSCALE_HOME/benchmark
    - num_participants: 6
    - data_set: synthetic
    - grey_input: True                  # our key: the images as stored, 1 grey channel
    - data_dir: $FEDSCALE_HOME/data
    - model: logistic
    - eval_interval: 2
    - rounds: %d
    - filter_less: 10
    - num_loaders: 2
    - local_steps: 5
    - learning_rate: 0.05
    - batch_size: 10
    - test_bsz: 20
    - use_cuda: False
`

// Three processes started by hand from a job file run the whole job; the
// aggregator exits 0 and the executors exit on their own, even when one
// executor is killed mid-job.
func TestThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	bin := buildBinaries(t)
	home := t.TempDir()
	t.Setenv("FEDSCALE_HOME", home)
	if err := jobtest.WriteSynthetic(filepath.Join(home, "data"), jobtest.SynthOptions{Clients: 20, PerClient: 30, Test: 100, Classes: 4, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		kill   bool
		rounds int
	}{{"clean", false, 4}, {"executor-killed", true, 30}} {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "conf.yml")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf(jobFile, tc.rounds)), 0o644); err != nil {
				t.Fatal(err)
			}
			port := fmt.Sprint(freePort(t))
			aggHTTP, execHTTP := freePort(t), freePort(t)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			var aggOut bytes.Buffer
			agg := exec.CommandContext(ctx, filepath.Join(bin, "aggregator"), "--config", conf, "--ps-port", port, "--http-port", fmt.Sprint(aggHTTP), "--insecure",
				"--time-stamp", tc.name, "--executor-timeout", "3s")
			agg.Stderr = &aggOut
			if err := agg.Start(); err != nil {
				t.Fatal(err)
			}
			var execs []*exec.Cmd
			for rank := 1; rank <= 2; rank++ {
				httpPort := "0"
				if rank == 1 {
					httpPort = fmt.Sprint(execHTTP)
				}
				e := exec.CommandContext(ctx, filepath.Join(bin, "executor"), "--config", conf, "--rank", fmt.Sprint(rank), "--ps-port", port, "--http-port", httpPort, "--insecure")
				e.Stderr = &bytes.Buffer{}
				if err := e.Start(); err != nil {
					t.Fatal(err)
				}
				execs = append(execs, e)
				if rank == 1 {
					// The job cannot start before executor 2 registers, so
					// executor 1 is ready and waiting here: what launchers
					// and probes watch is checked without racing the job.
					waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", aggHTTP), "ready")
					waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", execHTTP), "ready")
					waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", aggHTTP), "fedscale_executors_connected 1")
					waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d%s", aggHTTP, jobapi.Path), `{"rank":1,"state":"connected"`)
					waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", aggHTTP), `<script src="static/dashboard.js">`)
				}
			}
			logFile := filepath.Join(home, "benchmark", "logs", "processes", tc.name, "aggregator", "log")
			if tc.kill {
				// Kill executor 2 once training is under way.
				deadline := time.Now().Add(2 * time.Minute)
				for {
					b, _ := os.ReadFile(logFile)
					if strings.Contains(string(b), "round: 2,") {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("training never reached round 2:\n%s", aggOut.String())
					}
					time.Sleep(20 * time.Millisecond)
				}
				if err := execs[1].Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			if err := agg.Wait(); err != nil {
				t.Fatalf("aggregator: %v\n%s", err, aggOut.String())
			}
			for i, e := range execs {
				err := e.Wait()
				if tc.kill && i == 1 {
					continue
				}
				if err != nil {
					t.Errorf("executor %d: %v\n%s", i+1, err, e.Stderr)
				}
			}
			b, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatal(err)
			}
			log := string(b)
			if !strings.Contains(log, fmt.Sprintf("FL Testing in round: %d,", tc.rounds)) {
				t.Errorf("no final test line in %s:\n%s", logFile, log)
			}
			if tc.kill && !strings.Contains(log, "Executor 2 lost") {
				t.Errorf("the kill was not noticed:\n%s", log)
			}
		})
	}
}

// waitHTTP polls url until it answers 200 with a body containing want.
func waitHTTP(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(b), want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200 with %q (last error %v)", url, want, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
