package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/jobtest"
)

// TestInterruptedWait: Ctrl-C during `submit --wait=done` ends the wait
// with exit code 130 and leaves the job running; stop removes it.
func TestInterruptedWait(t *testing.T) {
	bin := buildAll(t)
	state, home := t.TempDir(), t.TempDir()
	file := writeLocalJob(t, home, jobtest.SynthOptions{Clients: 4, PerClient: 20, Test: 20, Classes: 2, Seed: 1}, 1, "num_executors: 1\n", `    - job_name: cli_sigint
    - num_participants: 2
    - rounds: 100000
    - local_steps: 1
`)
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
