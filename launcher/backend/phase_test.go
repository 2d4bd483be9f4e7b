package backend

import (
	"strings"
	"testing"
)

// procs are processes from "name=Phase[/exitN][/rN]".
func procs(spec string) []ProcessStatus {
	var out []ProcessStatus
	for _, f := range strings.Fields(spec) {
		name, rest, _ := strings.Cut(f, "=")
		parts := strings.Split(rest, "/")
		p := ProcessStatus{Name: name, Phase: Phase(parts[0])}
		for _, x := range parts[1:] {
			switch {
			case strings.HasPrefix(x, "exit"):
				code := 0
				for _, c := range x[4:] {
					code = code*10 + int(c-'0')
				}
				p.ExitCode = &code
				if code != 0 {
					p.Message = ExitMessage(code, "")
				}
			case x == "r1":
				p.Restarts = 1
			case x == "ready":
				p.Ready = true
			}
		}
		out = append(out, p)
	}
	return out
}

// TestSummarize: the job's phase is the aggregator's outcome; an executor
// that died while the aggregator carries on is Degraded, not Failed.
func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		procs    string
		phase    Phase
		degraded string // in the Degraded condition's message; "" for none
	}{
		{"", Unknown, ""},
		{"aggregator=Pending executor-1=Pending", Pending, ""},
		{"aggregator=Running executor-1=Running executor-2=Pending", Pending, ""},
		{"aggregator=Running executor-1=Running executor-2=Running", Running, ""},
		{"aggregator=Failed/exit1 executor-1=Running", Failed, ""},
		{"aggregator=Succeeded/exit0 executor-1=Succeeded/exit0 executor-2=Running", Succeeded, ""},
		// An executor killed: the job goes on, then succeeds, Degraded.
		{"aggregator=Running executor-1=Running executor-2=Failed/exit137", Running, "executor-2 (exit code 137 (killed)) died"},
		{"aggregator=Succeeded/exit0 executor-1=Succeeded/exit0 executor-2=Failed/exit137", Succeeded, "executor-2 (exit code 137 (killed))"},
		// Replaced after a failure (Kubernetes' per-index retries).
		{"aggregator=Running executor-1=Running/r1 executor-2=Running", Running, "executor-1 (restarted once)"},
		{"aggregator=Running executor-1=Pending/exit3 executor-2=Running", Pending, "executor-1 (exit code 3)"},
		// The aggregator finishing: executors told to exit, one died before.
		{"aggregator=Running executor-1=Succeeded/exit0 executor-2=Failed/exit1", Running, "executor-2"},
		// No executor left: nothing can train.
		{"aggregator=Running executor-1=Failed/exit1 executor-2=Failed/exit1", Failed, ""},
		{"aggregator=Running executor-1=Failed/exit1 executor-2=Failed/exit1 executor-3=Failed/exit1 executor-4=Failed/exit1 executor-5=Running", Running, "4 executors died; the aggregator carried on without them: executor-1 (exit code 1), executor-2 (exit code 1), executor-3 (exit code 1) and 1 more"},
		{"executor-1=Running", Unknown, ""},
	} {
		st := Summarize(Status{Processes: procs(tc.procs)})
		c, _ := st.Condition(Degraded)
		degraded := c.Message
		if st.Phase != tc.phase || (tc.degraded == "") != (degraded == "") || !strings.Contains(degraded, tc.degraded) {
			t.Errorf("%s: %s, %q; want %s, %q", tc.procs, st.Phase, degraded, tc.phase, tc.degraded)
		}
	}
}

func TestErrorLine(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{"", ""},
		{"(12-01) 10:00:00 INFO     [state.go:1] round 3\n", ""},
		{"(12-01) 10:00:00 INFO     [a.go:1] x\nexecutor: rank 3 is outside 1..2\n", "executor: rank 3 is outside 1..2"},
		{"(12-01) 10:00:00 ERROR    [a.go:1] lost executor 2\n(12-01) 10:00:01 INFO     [a.go:2] going on\n", "(12-01) 10:00:00 ERROR    [a.go:1] lost executor 2"},
		{"panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n", "panic: boom"},
	} {
		if got := ErrorLine(tc.out); got != tc.want {
			t.Errorf("ErrorLine(%q) = %q, want %q", tc.out, got, tc.want)
		}
	}
}

func TestExitMessage(t *testing.T) {
	for _, tc := range []struct {
		code   int
		reason string
		want   string
	}{
		{1, "", "exit code 1"},
		{137, "", "exit code 137 (killed)"},
		{137, "OOMKilled", "exit code 137 (OOMKilled)"},
		{3, "Error", "exit code 3 (Error)"},
		{255, "", "exit code 255"},
	} {
		if got := ExitMessage(tc.code, tc.reason); got != tc.want {
			t.Errorf("ExitMessage(%d, %q) = %q, want %q", tc.code, tc.reason, got, tc.want)
		}
	}
}
