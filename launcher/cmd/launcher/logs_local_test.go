package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/jobtest"
)

// TestLocalLogsAndCompletion runs a short local job with the real
// binaries, then reads its logs merged, tailed and stamped, and completes
// its name and processes as a shell would.
func TestLocalLogsAndCompletion(t *testing.T) {
	bin := buildAll(t)
	state, home := t.TempDir(), t.TempDir()
	file := writeLocalJob(t, home, jobtest.SynthOptions{Clients: 8, PerClient: 20, Test: 40, Classes: 4, Seed: 3}, 2, "num_executors: 2\n", `    - job_name: cli_logs
    - num_participants: 4
    - rounds: 2
    - eval_interval: 1
    - local_steps: 2
`)
	start := time.Now()
	if out, err := launcher(t, bin, state, "submit", "--wait=done", "--timeout", "2m", file); err != nil {
		t.Fatalf("submit: %v\n%s", err, out)
	}
	t.Cleanup(func() { launcher(t, bin, state, "stop", "cli-logs") })

	out, err := launcher(t, bin, state, "logs", "cli-logs", "--timestamps")
	if err != nil {
		t.Fatalf("logs: %v\n%s", err, out)
	}
	var last time.Time
	procs := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		proc, rest, ok := strings.Cut(l, "] ")
		stamp, _, _ := strings.Cut(rest, " ")
		ts, err := time.Parse(time.RFC3339, stamp)
		if !ok || err != nil {
			t.Fatalf("line without process or time: %q", l)
		}
		if ts.Before(last) {
			t.Errorf("not merged by time: %q after %v", l, last)
		}
		if ts.Before(start.Truncate(time.Second)) || ts.After(time.Now()) {
			t.Errorf("time %v outside the job's run", ts)
		}
		last = ts
		procs[strings.TrimPrefix(proc, "[")] = true
	}
	if !procs["aggregator"] || !procs["executor-1"] || !procs["executor-2"] {
		t.Errorf("processes %v in\n%s", procs, out)
	}
	out, err = launcher(t, bin, state, "logs", "cli-logs", "--tail", "1")
	if n := strings.Count(out, "\n"); err != nil || n != 3 {
		t.Errorf("--tail 1 gave %d lines, want one per process: %v\n%s", n, err, out)
	}
	// Output over the local backend's 64 KiB tail window: a follow after
	// the tail starts where the tail ended, repeating and skipping nothing.
	agg := filepath.Join(home, "logs", "cli_logs", "launcher", "aggregator.log")
	f, err := os.OpenFile(agg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		fmt.Fprintf(f, "filler line %04d of a long output, long enough to pass 64 KiB\n", i)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--tail", "2", "-f"}, {"--tail", "2", "-f", "--component", "aggregator"}} {
		out, err = launcher(t, bin, state, append([]string{"logs", "cli-logs"}, args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		want := 6
		if len(args) > 3 {
			want = 2
		}
		if err != nil || len(lines) != want || strings.Count(out, "filler line 2998") != 1 || strings.Count(out, "filler line 2999") != 1 || strings.Contains(out, "filler line 2997") {
			t.Errorf("logs %s: %v: want %d lines ending with filler lines 2998 and 2999 once each:\n%s", strings.Join(args, " "), err, want, out)
		}
	}
	if out, err = launcher(t, bin, state, "logs", "cli-logs", "--since", time.Now().Add(time.Hour).Format(time.RFC3339)); err != nil || out != "" {
		t.Errorf("--since in an hour: %v\n%q", err, out)
	}

	out, err = launcher(t, bin, state, "__complete", "stop", "")
	if err != nil || !strings.Contains(out, "cli-logs\tlocal, Succeeded") {
		t.Errorf("job names: %v\n%s", err, out)
	}
	out, err = launcher(t, bin, state, "__complete", "logs", "cli-logs", "--component", "")
	for _, p := range []string{"aggregator\t", "executor-1\t", "executor-2\t"} {
		if err != nil || !strings.Contains(out, p) {
			t.Errorf("processes lack %q: %v\n%s", p, err, out)
		}
	}
}
