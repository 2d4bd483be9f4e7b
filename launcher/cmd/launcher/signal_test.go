package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
)

// TestInterruptedWait: Ctrl-C during `submit --wait=done` ends the wait
// with exit code 130 and leaves the job running; stop removes it.
func TestInterruptedWait(t *testing.T) {
	bin := buildAll(t)
	state, home := t.TempDir(), t.TempDir()
	if err := jobtest.WriteSynthetic(filepath.Join(home, "data"), jobtest.SynthOptions{Clients: 4, PerClient: 20, Test: 20, Classes: 2, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(home, "conf.yml")
	os.WriteFile(file, []byte(fmt.Sprintf(`num_executors: 1
job_conf:
    - job_name: cli_sigint
    - log_path: %s
    - ps_port: %d
    - data_set: synthetic
    - grey_input: True
    - data_dir: %s/data
    - model: logistic
    - num_participants: 2
    - rounds: 100000
    - local_steps: 1
    - batch_size: 10
    - test_bsz: 20
    - filter_less: 10
`, home, infratest.FreePorts(t, 2), home)), 0o644)
	cmd := exec.Command(filepath.Join(bin, "launcher"), "submit", "--wait=done", file)
	cmd.Env = append(os.Environ(), "FEDSCALE_LAUNCHER_STATE="+state, "DOCKER_HOST=unix:///nonexistent.sock", "KUBECONFIG=/nonexistent")
	// A file, not a buffer: the test reads it while the launcher writes.
	outFile := filepath.Join(home, "out")
	f, err := os.Create(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	output := func() string { b, _ := os.ReadFile(outFile); return string(b) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { launcher(t, bin, state, "stop", "cli-sigint") })
	// Interrupt once the job is running (its name is printed after Submit).
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(output(), "cli-sigint") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 || !strings.Contains(output(), "interrupted by interrupt") {
		t.Fatalf("submit --wait after SIGINT: %v, want exit code 130\n%s", err, output())
	}
	if st, err := launcher(t, bin, state, "status", "cli-sigint"); err != nil || !strings.Contains(st, "Running") {
		t.Errorf("the job should keep running after the wait is interrupted: %v\n%s", err, st)
	}
}
