package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/fedscale/fedscale-go/runtime/jobtest"
)

// TestSubmitWaitProgress runs real local jobs with `submit --wait=done`:
// with stderr on a pseudo-terminal it shows the live line rewritten in
// place with the job's rounds; with stderr on a pipe (a CI log) it writes
// no control character; both end with the final figures and the path of
// metrics.jsonl.
func TestSubmitWaitProgress(t *testing.T) {
	bin := buildAll(t)
	for _, tc := range []struct {
		name string
		tty  bool
	}{
		{"terminal", true},
		{"pipe", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, home := t.TempDir(), t.TempDir()
			jobName := "cli-progress-" + tc.name
			file := writeLocalJob(t, home, jobtest.SynthOptions{Clients: 8, PerClient: 20, Test: 40, Classes: 4, Seed: 3}, 2, "num_executors: 2\n",
				"    - job_name: "+jobName+"\n    - num_participants: 4\n    - rounds: 3000\n    - eval_interval: 20\n    - local_steps: 2\n")
			cmd := exec.Command(filepath.Join(bin, "launcher"), "submit", "--wait=done", "--timeout", "3m", file)
			cmd.Env = append(os.Environ(), "FEDSCALE_LAUNCHER_STATE="+state, "DOCKER_HOST=unix:///nonexistent.sock", "KUBECONFIG=/nonexistent")
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			var stderr []byte
			start := time.Now()
			if tc.tty {
				ptmx, tty, err := pty.Open()
				if err != nil {
					t.Skipf("no pseudo-terminal here: %v", err)
				}
				defer ptmx.Close()
				if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 120}); err != nil {
					t.Fatal(err)
				}
				cmd.Stderr = tty
				read := make(chan []byte)
				go func() { b, _ := io.ReadAll(ptmx); read <- b }()
				err = cmd.Run()
				tty.Close()
				stderr = <-read
				if err != nil {
					t.Fatalf("submit: %v\n%q", err, stderr)
				}
			} else {
				var b bytes.Buffer
				cmd.Stderr = &b
				if err := cmd.Run(); err != nil {
					t.Fatalf("submit: %v\n%s", err, b.String())
				}
				stderr = b.Bytes()
			}
			t.Logf("%s: %v\n%q", tc.name, time.Since(start), stderr)
			t.Cleanup(func() { launcher(t, bin, state, "stop", jobName) })
			out := string(stderr)
			if tc.tty {
				if !regexp.MustCompile(`\rjob ` + jobName + `: round [0-9]+/3000`).MatchString(out) {
					t.Errorf("no live line with the round:\n%q", out)
				}
			} else if strings.ContainsAny(out, "\r\x1b\b") {
				t.Errorf("control characters in a log:\n%q", out)
			}
			out = strings.ReplaceAll(out, "\r\n", "\n") // the terminal's output processing
			final := regexp.MustCompile(`job ` + jobName + `: Succeeded after [0-9.ms]+, 3000 rounds: top-1 [0-9.]+%, top-5 [0-9.]+%, test loss [0-9.e-]+, training loss [0-9.e-]+\n` +
				`results: (\S+/logs/` + jobName + `/[0-9_]+/(?:aggregator/)?metrics.jsonl) \(launcher results ` + jobName + `\)\n$`)
			m := final.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no final figures at the end:\n%q", out)
			}
			if _, err := os.Stat(m[1]); err != nil {
				t.Errorf("the results named: %v", err)
			}
		})
	}
}
