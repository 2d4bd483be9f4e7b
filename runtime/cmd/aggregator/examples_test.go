package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fashionMNIST is where Debian's dataset-fashion-mnist puts the IDX files.
const fashionMNIST = "/usr/share/datasets/fashion-mnist"

// examplesFullEnv set to 1 runs the example jobs for all their rounds
// (make examples); otherwise each runs the few rounds its table entry
// gives (the --rounds flag: the job file stays as it is), enough for
// top-1 to rise from round 0.
const examplesFullEnv = "FEDSCALE_EXAMPLES_FULL"

// TestFedScaleExamples runs FedScale's own container example jobs
// (runtime/jobtest/testdata/fedscale), unchanged except for their paths, as
// one aggregator and two executor processes on real data: Fashion-MNIST in
// the FEMNIST layout for the femnist jobs, and a CIFAR-10 folder that
// fsdata writes from it for the cifar10 ones. Each must finish and its
// top-1 after the last round must beat the round-0 evaluation.
func TestFedScaleExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and trains ResNet-18 and ShuffleNetV2")
	}
	if _, err := os.Stat(fashionMNIST); err != nil {
		t.Fatalf("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): %v", err)
	}
	bin := buildBinaries(t, "fsdata")
	home := t.TempDir()
	t.Setenv("FEDSCALE_HOME", home)
	bench := filepath.Join(home, "benchmark")
	dataDir := filepath.Join(bench, "dataset", "data")
	fsdata := func(args ...string) {
		t.Helper()
		args = append([]string{"--idx-dir", fashionMNIST, "--label-names", "fashion", "--train-samples", "4000", "--test-samples", "500"}, args...)
		if out, err := exec.Command(filepath.Join(bin, "fsdata"), args...).CombinedOutput(); err != nil {
			t.Fatalf("fsdata %v: %v\n%s", args, err, out)
		}
	}
	fsdata("--out", filepath.Join(dataDir, "femnist"), "--clients", "80", "--min-samples", "21")
	fsdata("--out", dataDir, "--cifar10")
	writeTraces(t, filepath.Join(dataDir, "device_info"))

	full := os.Getenv(examplesFullEnv) == "1"
	for _, tc := range []struct {
		name   string
		rounds int // in the short run
	}{
		{"femnist_k8s", 5},    // resnet18, 5 participants x 5 steps of 20
		{"femnist_docker", 1}, // resnet18, 50 participants x 5 steps; ps_ip on another host
		{"cifar_cpu_k8s", 5},  // shufflenet_v2_x2_0, 4 x 20 steps of 32, FedScale's uniform partition
		{"dry_run_k8s", 2},    // resnet18 on cifar10, lr 0.001
	} {
		name, rounds := tc.name, tc.rounds
		if full {
			rounds = 0
		}
		t.Run(name, func(t *testing.T) {
			orig, err := os.ReadFile(filepath.Join("..", "..", "jobtest", "testdata", "fedscale", name+".yml"))
			if err != nil {
				t.Fatal(err)
			}
			conf := filepath.Join(t.TempDir(), name+".yml")
			if err := os.WriteFile(conf, bytes.ReplaceAll(orig, []byte("/FedScale/benchmark"), []byte(bench)), 0o644); err != nil {
				t.Fatal(err)
			}
			first, last, wall := runExample(t, bin, conf, rounds)
			t.Logf("%s: top-1 %.3f at round %d -> %.3f at round %d in %.1f s", name, first.Top1, first.Round, last.Top1, last.Round, wall.Seconds())
			if first.Round != 0 || last.Round <= first.Round {
				t.Fatalf("evaluations at rounds %d and %d, want round 0 and the last", first.Round, last.Round)
			}
			if last.Top1 <= first.Top1 {
				t.Errorf("top-1 did not rise: %.3f at round 0, %.3f at round %d", first.Top1, last.Top1, last.Round)
			}
		})
	}
}

// evalRecord is the part of a metrics.jsonl line the test reads.
type evalRecord struct {
	Round int      `json:"round"`
	Top1  *float64 `json:"top_1"`
}

type evalPoint struct {
	Round int
	Top1  float64
}

// runExample runs conf with an aggregator and its executors on loopback
// (the Docker example names other hosts in ps_ip) and returns the first
// and the last evaluation.
func runExample(t *testing.T, bin, conf string, rounds int) (first, last evalPoint, wall time.Duration) {
	t.Helper()
	port := fmt.Sprint(freePort(t))
	common := []string{"--config", conf, "--ps-ip", "127.0.0.1", "--ps-port", port, "--http-port", "0", "--insecure"}
	logs := t.TempDir()
	agg := append(append([]string(nil), common...), "--time-stamp", "example", "--log-path", logs, "--no-resume")
	if rounds > 0 {
		agg = append(agg, "--rounds", fmt.Sprint(rounds))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	aggCmd := exec.CommandContext(ctx, filepath.Join(bin, "aggregator"), agg...)
	var aggOut bytes.Buffer
	aggCmd.Stderr = &aggOut
	if err := aggCmd.Start(); err != nil {
		t.Fatal(err)
	}
	var execs []*exec.Cmd
	for rank := 1; rank <= 2; rank++ {
		e := exec.CommandContext(ctx, filepath.Join(bin, "executor"), append(common, "--rank", fmt.Sprint(rank), "--log-path", logs)...)
		e.Stderr = &bytes.Buffer{}
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		execs = append(execs, e)
	}
	if err := aggCmd.Wait(); err != nil {
		t.Fatalf("aggregator: %v\n%s", err, aggOut.String())
	}
	for i, e := range execs {
		if err := e.Wait(); err != nil {
			t.Errorf("executor %d: %v\n%s", i+1, err, e.Stderr)
		}
	}
	wall = time.Since(start)
	matches, _ := filepath.Glob(filepath.Join(logs, "logs", "*", "example", "metrics.jsonl"))
	if len(matches) != 1 {
		t.Fatalf("want one metrics.jsonl under %s, found %v", logs, matches)
	}
	f, err := os.Open(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evals []evalPoint
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r evalRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", matches[0], err)
		}
		if r.Top1 != nil {
			evals = append(evals, evalPoint{r.Round, *r.Top1})
		}
	}
	if len(evals) < 2 {
		t.Fatalf("%d evaluations in %s, want at least 2:\n%s", len(evals), matches[0], aggOut.String())
	}
	return evals[0], evals[len(evals)-1], wall
}

// writeTraces writes small device traces in FedScale's shape (JSON; the
// runtime also reads the original pickles): clients wrap around them.
func writeTraces(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"client_device_capacity": `{"1": {"computation": 20, "communication": 10000}, "2": {"computation": 35, "communication": 5000}, "3": {"computation": 12, "communication": 20000}}`,
		"client_behave_trace":    `{"1": {"duration": 1000000, "inactive": [1000000], "finish_time": 1000000, "active": [0], "model": "x"}}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.TrimSpace(body)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
