package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/jobtest"
)

// A finished job says so, on the real binaries: the aggregator started
// again on it reports the final results and exits 0 without training,
// the executors started with it are told the job is over and exit 0, an
// aggregator alone exits 0 after --finished-grace, and --no-resume runs
// the job again (here: waits for executors, which never come).
func TestFinishedJobRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	bin := buildBinaries(t)
	_, conf := synthHome(t, jobtest.SynthOptions{Clients: 8, PerClient: 20, Test: 40, Classes: 3, Seed: 5}, 2)
	port := fmt.Sprint(freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// run starts the aggregator (with args) and the executors named, waits
	// for all and returns the aggregator's error and every stderr.
	run := func(executors int, args ...string) (string, []string, error) {
		t.Helper()
		agg := exec.CommandContext(ctx, filepath.Join(bin, "aggregator"), append([]string{"--config", conf, "--ps-port", port, "--http-port", "0", "--insecure",
			"--set", "save_checkpoint=True"}, args...)...)
		var aggOut bytes.Buffer
		agg.Stderr = &aggOut
		if err := agg.Start(); err != nil {
			t.Fatal(err)
		}
		var execs []*exec.Cmd
		for rank := 1; rank <= executors; rank++ {
			e := exec.CommandContext(ctx, filepath.Join(bin, "executor"), "--config", conf, "--rank", fmt.Sprint(rank), "--ps-port", port, "--http-port", "0", "--insecure")
			e.Stderr = &bytes.Buffer{}
			if err := e.Start(); err != nil {
				t.Fatal(err)
			}
			execs = append(execs, e)
		}
		aggErr := agg.Wait()
		var outs []string
		for i, e := range execs {
			if err := e.Wait(); err != nil {
				t.Errorf("executor %d: %v, want exit 0\n%s", i+1, err, e.Stderr)
			}
			outs = append(outs, fmt.Sprint(e.Stderr))
		}
		if ctx.Err() != nil {
			t.Fatalf("timed out; aggregator:\n%s", aggOut.String())
		}
		return aggOut.String(), outs, aggErr
	}

	first, _, err := run(2, "--time-stamp", "first")
	if err != nil {
		t.Fatalf("first run: %v\n%s", err, first)
	}
	// The final line less its time: accuracy and metrics file.
	final := func(out string) string {
		l := lastLine(out)
		return l[strings.Index(l, "]")+1:]
	}
	want := final(first)
	if !strings.HasPrefix(want, " Final test accuracy: top_1 ") {
		t.Fatalf("first run ended with %q", want)
	}

	start := time.Now()
	again, execOuts, err := run(2, "--time-stamp", "again", "--finished-grace", "2m")
	if err != nil {
		t.Fatalf("aggregator on the finished job: %v, want exit 0\n%s", err, again)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("took %s: waited out --finished-grace although both executors were told", d)
	}
	if !strings.Contains(again, "Job processes already finished (run first): round 2,") || strings.Contains(again, "FL Testing in round") {
		t.Errorf("the aggregator did not report the finished job, or trained:\n%s", again)
	}
	if got := final(again); got != want {
		t.Errorf("final line %q, want the first run's %q", got, want)
	}
	for i, out := range execOuts {
		if !strings.Contains(out, "Aggregator finished the job: job processes had already finished at round 2") {
			t.Errorf("executor %d was not told the job is over:\n%s", i+1, out)
		}
	}

	start = time.Now()
	if alone, _, err := run(0, "--time-stamp", "alone", "--finished-grace", "1s"); err != nil || final(alone) != want {
		t.Errorf("aggregator alone on the finished job: %v, last line %q; want exit 0 and %q\n%s", err, final(alone), want, alone)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("aggregator alone took %s with --finished-grace 1s", d)
	}

	fresh, _, err := run(0, "--time-stamp", "fresh", "--no-resume", "--executor-wait", "2s")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(fresh, "no executor connected for 2s") || strings.Contains(fresh, "already finished") {
		t.Errorf("--no-resume: %v, want the job run again (waiting for executors, none came)\n%s", err, fresh)
	}
}
