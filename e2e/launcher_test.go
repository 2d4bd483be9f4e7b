package e2e

import (
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

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// launcher runs the launcher binary built from this tree and returns its
// stdout and stderr.
func (s *suite) launcherCmd(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	return s.launcherEnv(ctx, nil, args...)
}

// launcherEnv is launcherCmd with env added to the environment.
func (s *suite) launcherEnv(ctx context.Context, env []string, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, s.launcher, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// cleanupLaunched removes whatever the launcher left of job name, so a
// failed test leaves nothing behind either.
func cleanupLaunched(tb testing.TB, s *suite, name string) {
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := removeLabelled(ctx, s.docker, job.LabelJob+"="+name); err != nil {
			tb.Errorf("cleanup of job %s: %v", name, err)
		}
	})
}

// TestLauncherDocker is what users run: `launcher submit --backend docker
// --wait=done` on a job file naming the built images, then status (finished,
// every exit code 0) and stop (nothing left; a second stop knows no job).
func TestLauncherDocker(t *testing.T) {
	s := need(t)
	ctx := ctxFor(t, 4*time.Minute)
	c := smallJob(s.jobName("launch"))
	file := c.write(t, s)
	cleanupLaunched(t, s, c.name)

	t0 := time.Now()
	out, errOut, err := s.launcherCmd(ctx, "submit", "--backend", "docker", "--wait=done", "--timeout", "3m", file)
	if err != nil {
		t.Fatalf("launcher submit: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	t.Logf("launcher submit --wait=done: %.2f s", time.Since(t0).Seconds())
	if strings.TrimSpace(out) != c.name {
		t.Errorf("submit printed %q, want the job name %s", out, c.name)
	}
	if !strings.Contains(errOut, "job "+c.name+": Succeeded") {
		t.Errorf("submit's stderr lacks the final phase: %s", errOut)
	}

	out, errOut, err = s.launcherCmd(ctx, "status", "--backend", "docker", "-o", "json", c.name)
	if err != nil {
		t.Fatalf("launcher status: %v\n%s%s", err, out, errOut)
	}
	var st backend.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if st.Job != c.name || st.Backend != "docker" || st.Phase != backend.Succeeded {
		t.Errorf("status %+v, want job %s on docker Succeeded", st, c.name)
	}
	if len(st.Processes) != 1+c.executors {
		t.Errorf("status lists %d processes, want %d: %+v", len(st.Processes), 1+c.executors, st.Processes)
	}
	for _, p := range st.Processes {
		if p.Phase != backend.Succeeded || p.ExitCode == nil || *p.ExitCode != 0 {
			code := "none"
			if p.ExitCode != nil {
				code = fmt.Sprint(*p.ExitCode)
			}
			t.Errorf("process %s: phase %s exit code %s, want Succeeded with 0", p.Name, p.Phase, code)
		}
	}
	if st.Round == nil || *st.Round != c.rounds {
		t.Errorf("status round %v, want %d", st.Round, c.rounds)
	}
	if st.Accuracy == nil || *st.Accuracy < smallJobTop1 {
		t.Errorf("status accuracy %v, want at least %.2f", st.Accuracy, smallJobTop1)
	} else {
		t.Logf("status: %s, round %d, top-1 %.4f", st.Phase, *st.Round, *st.Accuracy)
	}
	log, err := os.ReadFile(filepath.Join(s.data, "logs", c.name, timeStamp, "aggregator", "log"))
	if err != nil || !testLineRE.Match(log) {
		t.Errorf("no FedScale test line in the mounted aggregator log (%v)", err)
	}

	t0 = time.Now()
	out, errOut, err = s.launcherCmd(ctx, "stop", "--backend", "docker", c.name)
	if err != nil {
		t.Fatalf("launcher stop: %v\n%s%s", err, out, errOut)
	}
	t.Logf("launcher stop: %.2f s", time.Since(t0).Seconds())
	if cs, ns := countLabelled(t, s.docker, job.LabelJob+"="+c.name); cs != 0 || ns != 0 {
		t.Errorf("after stop: %d containers and %d networks of the job", cs, ns)
	}
	_, errOut, err = s.launcherCmd(ctx, "stop", "--backend", "docker", c.name)
	if err == nil || !strings.Contains(errOut, "no such job") {
		t.Errorf("second stop: %v, stderr %q, want a failure saying there is no such job", err, errOut)
	}
}

// TestLauncherSubmitStopCycles submits a long job and stops it 20 times:
// nothing of any cycle stays behind.
func TestLauncherSubmitStopCycles(t *testing.T) {
	s := need(t)
	const cycles = 20
	ctx := ctxFor(t, 6*time.Minute)
	var submit, stop time.Duration
	for i := range cycles {
		c := smallJob(s.jobName(fmt.Sprintf("cycle%02d", i)))
		c.rounds = 100000 // runs until stopped
		file := c.write(t, s)
		cleanupLaunched(t, s, c.name)
		t0 := time.Now()
		if out, errOut, err := s.launcherCmd(ctx, "submit", "--backend", "docker", "--wait", "--timeout", "2m", file); err != nil {
			t.Fatalf("cycle %d: launcher submit --wait: %v\n%s%s", i, err, out, errOut)
		}
		t1 := time.Now()
		if out, errOut, err := s.launcherCmd(ctx, "stop", "--backend", "docker", c.name); err != nil {
			t.Fatalf("cycle %d: launcher stop: %v\n%s%s", i, err, out, errOut)
		}
		submit += t1.Sub(t0)
		stop += time.Since(t1)
		if cs, ns := countLabelled(t, s.docker, job.LabelJob+"="+c.name); cs != 0 || ns != 0 {
			t.Errorf("cycle %d: after stop, %d containers and %d networks of the job", i, cs, ns)
		}
	}
	t.Logf("%d cycles: submit --wait (running) %.2f s, stop %.2f s on average", cycles,
		submit.Seconds()/cycles, stop.Seconds()/cycles)
	// Nothing of any cycle, by the launcher's job label.
	cs, ns, err := s.leaked(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs)+len(ns) != 0 {
		t.Errorf("after %d cycles, %d containers and %d networks of this run remain", cycles, len(cs), len(ns))
	}
}
