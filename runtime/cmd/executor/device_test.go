package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/jobtest"
)

// --device on a machine without a GPU (this one; skipped on one with an
// NVIDIA driver): cuda exits non-zero naming why, in the untagged build
// (no backend) and in the cuda-tagged one (no driver); auto trains on the
// CPU and says why. cuda without N is the rank's GPU of worker_ips (0).
func TestDeviceWithoutGPU(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the executor twice")
	}
	if _, err := os.Stat("/dev/nvidiactl"); err == nil {
		t.Skip("this machine has an NVIDIA driver")
	}
	dir := t.TempDir()
	bins := map[string]string{"plain": filepath.Join(dir, "executor"), "cuda": filepath.Join(dir, "executor-cuda")}
	for tags, bin := range bins {
		args := []string{"build", "-o", bin}
		if tags == "cuda" {
			args = append(args, "-tags", "cuda")
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", args, err, out)
		}
	}
	home := t.TempDir()
	dataDir := filepath.Join(home, "data")
	if err := jobtest.WriteSynthetic(dataDir, jobtest.SynthOptions{Clients: 2, PerClient: 5, Test: 5, Classes: 3, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(home, "job.yml")
	// ps_port 9 (discard): nothing answers, the executor keeps trying to
	// connect, and the test stops it once it has logged its device.
	job := strings.Replace(fmt.Sprintf(stuckJob, filepath.Join(home, "logs"), dataDir, 9), "use_cuda: False", "use_cuda: True", 1)
	if err := os.WriteFile(conf, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bin, device string
		exit        bool // exits non-zero at once
		want        string
		args        []string // more flags
	}{
		{"plain", "cuda", true, "--device cuda:0: this executor was built without the CUDA backend", nil},
		{"plain", "cuda:1", true, "built without the CUDA backend", nil},
		{"plain", "auto", false, "device auto: training on the CPU: this executor was built without the CUDA backend", nil},
		{"plain", "", false, "executor 1 trains on cpu", nil}, // use_cuda: True is auto
		{"plain", "gpu", true, `--device "gpu": want auto, cpu, cuda or cuda:N`, nil},
		{"cuda", "cuda", true, "--device cuda:0: CUDA driver: none of libcuda.so.1 could be loaded", nil},
		{"cuda", "auto", false, "device auto: training on the CPU: CUDA driver: none of libcuda.so.1", nil},
		{"cuda", "cpu", false, "executor 1 trains on cpu", nil},
		// Bounded before the GPU's share multiplies it.
		{"cuda", "auto", true, "--slots must be 1..1024, got 2000000", []string{"--slots", "2000000"}},
		{"plain", "", true, "--slots must be 1..1024, got 0", []string{"--slots", "0"}},
	} {
		t.Run(tc.bin+"/"+tc.device, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a hang guard
			defer cancel()
			args := []string{"--config", conf, "--rank", "1", "--insecure", "--http-port", "0", "--connect-timeout", "1s"}
			if tc.device != "" {
				args = append(args, "--device", tc.device)
			}
			args = append(args, tc.args...)
			out, err := exec.CommandContext(ctx, bins[tc.bin], args...).CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("the executor did not exit:\n%s", out)
			}
			if tc.exit && err == nil {
				t.Errorf("exit 0, want non-zero:\n%s", out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output does not say %q:\n%s", tc.want, out)
			}
		})
	}
}
