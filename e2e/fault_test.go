package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The aggregator's message when it loses an executor that held tasks
// (runtime/aggregator, dropSession).
var reissueRE = regexp.MustCompile(`Executor (\d+) lost \(([^)]*)\) in round (\d+); re-issuing (\d+) task\(s\): (.*)`)

// Bounds on the fault jobs once the fault is injected (each trains in
// about 6-8 s when undisturbed on this machine).
const (
	afterKillBound    = 2 * time.Minute
	afterRestartBound = 2 * time.Minute
)

// TestExecutorKilledMidRound kills executor 2's container (SIGKILL) while
// round 2 trains: its tasks go to executor 1, and the job still finishes
// every round, within a bound, with the same learning.
func TestExecutorKilledMidRound(t *testing.T) {
	s := need(t)
	ctx := ctxFor(t, 5*time.Minute)
	c := slowJob(s.jobName("kill"), 6)
	c.evalInterval = 3 // round 2 trains right after round 1's line
	j := newJob(t, s, c)
	t0 := time.Now()
	if err := j.start(ctx); err != nil {
		t.Fatal(err)
	}
	// Round 1 aggregated: round 2 is training (a round takes about a
	// second; the gaps between an executor's tasks are microseconds), so
	// executor 2 holds a client's task when it dies.
	if _, err := j.waitLog(ctx, roundLine(1)); err != nil {
		t.Fatal(err)
	}
	if err := j.kill(ctx, "executor-2"); err != nil {
		t.Fatal(err)
	}
	killed := time.Since(t0)
	bounded := ctxFor(t, afterKillBound)
	codes, err := j.waitAll(bounded)
	if err != nil {
		t.Fatalf("the job did not finish within %s of the kill: %v", afterKillBound, err)
	}
	done := time.Since(t0)
	t.Logf("executor-2 killed %.2f s after start; job done %.2f s after start (%.2f s after the kill)",
		killed.Seconds(), done.Seconds(), (done - killed).Seconds())
	for name, want := range map[string]int{"aggregator": 0, "executor-1": 0, "executor-2": 137} {
		if codes[name] != want {
			t.Errorf("%s exited with code %d, want %d", name, codes[name], want)
		}
	}
	j.checkRounds(t, 1, c.rounds)

	log := j.aggLog()
	m := reissueRE.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("the aggregator's log does not record re-issued tasks of executor 2:\n%s", tail(log, 40))
	}
	t.Logf("aggregator: %s", m[0])
	if m[1] != "2" {
		t.Errorf("re-issue line names executor %s, want 2", m[1])
	}
	if n, _ := strconv.Atoi(m[4]); n < 1 {
		t.Errorf("re-issued %d tasks", n)
	}
	if m[3] != "2" || !strings.HasPrefix(m[5], "client ") {
		t.Errorf("re-issued %q in round %s, want a client of round 2 (the round the kill interrupted)", m[5], m[3])
	}
	recs, err := j.metrics()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || recs[len(recs)-1].ReissuedTasks < 1 {
		t.Errorf("metrics.jsonl does not count the re-issued tasks: %+v", recs)
	}
	round, top1, _ := finalTop1(recs)
	t.Logf("final top_1 %.4f in round %d (bar %.2f)", top1, round, slowJobTop1)
	if round != c.rounds || top1 < slowJobTop1 {
		t.Errorf("final evaluation round %d top_1 %.4f, want round %d and at least %.2f", round, top1, c.rounds, slowJobTop1)
	}
	if strings.Contains(log, "Job failed") {
		t.Errorf("the aggregator logged a failure:\n%s", tail(log, 40))
	}
}

// TestAggregatorRestartResumes stops the aggregator's container (SIGTERM)
// after its checkpoint of round 3 and starts it again: it resumes from the
// checkpoint, the executors rejoin, and the rounds continue past the
// restart round instead of starting over.
func TestAggregatorRestartResumes(t *testing.T) {
	s := need(t)
	ctx := ctxFor(t, 5*time.Minute)
	c := slowJob(s.jobName("restart"), 8)
	c.checkpoint = true
	j := newJob(t, s, c)
	t0 := time.Now()
	if err := j.start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := j.waitLog(ctx, regexp.MustCompile(`Saved checkpoint of round 3 to `)); err != nil {
		t.Fatal(err)
	}
	agg := j.ctr("aggregator")
	grace := 10 * time.Second
	if err := agg.Stop(ctx, &grace); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(t0)
	st, err := agg.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// SIGTERM ends the aggregator with "stopped by signal" (exit 1), not
	// by the engine's SIGKILL after the grace period (137).
	if st.Running || st.ExitCode != 1 {
		t.Errorf("stopped aggregator: running %v, exit code %d, want exit 1 (stopped by signal)", st.Running, st.ExitCode)
	}
	before := j.aggLog()
	if err := agg.Start(ctx); err != nil { // waits for /readyz again
		t.Fatal(err)
	}
	restarted := time.Since(t0)
	m, err := j.waitLog(ctx, regexp.MustCompile(`Resumed job `+regexp.QuoteMeta(c.name)+` from checkpoint after round (\d+) `))
	if err != nil {
		t.Fatal(err)
	}
	resumedAt, _ := strconv.Atoi(m[1])
	if _, err := j.waitLog(ctx, roundLine(resumedAt+1)); err != nil {
		t.Fatal(err)
	}
	nextRound := time.Since(t0)
	bounded := ctxFor(t, afterRestartBound)
	codes, err := j.waitAll(bounded)
	if err != nil {
		t.Fatalf("the job did not finish within %s of the restart: %v", afterRestartBound, err)
	}
	done := time.Since(t0)
	t.Logf("aggregator stopped %.2f s after start, ready again at %.2f s, resumed after round %d; round %d done at %.2f s; job done at %.2f s",
		stopped.Seconds(), restarted.Seconds(), resumedAt, resumedAt+1, nextRound.Seconds(), done.Seconds())
	for _, p := range j.procs {
		if codes[p.Name] != 0 {
			t.Errorf("%s exited with code %d, want 0", p.Name, codes[p.Name])
		}
	}
	if resumedAt < 3 {
		t.Errorf("resumed after round %d, want at least 3 (the checkpoint seen before the stop)", resumedAt)
	}
	j.checkRounds(t, 1, c.rounds)

	log := j.aggLog()
	after := log[len(before):]
	if n := strings.Count(log, "] FL Testing in round: 0,"); n != 1 {
		t.Errorf("round 0 evaluated %d times, want once (a restart from scratch evaluates it again)", n)
	}
	// The first round the restarted aggregator trains is the one after
	// the checkpoint.
	if rm := roundLineRE.FindStringSubmatch(after); rm == nil || rm[1] != strconv.Itoa(resumedAt+1) {
		t.Errorf("first round after the restart: %v, want %d:\n%s", rm, resumedAt+1, tail(after, 40))
	}
	for r := 1; r <= resumedAt; r++ {
		if roundLine(r).MatchString(after) {
			t.Errorf("round %d trained again after the restart", r)
		}
	}
	recs, err := j.metrics()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for _, r := range recs {
		seen[r.Round]++
	}
	for r := 0; r <= c.rounds; r++ {
		if seen[r] != 1 {
			t.Errorf("metrics.jsonl has %d records of round %d, want 1", seen[r], r)
		}
	}
	round, top1, _ := finalTop1(recs)
	t.Logf("final top_1 %.4f in round %d (bar %.2f)", top1, round, slowJobTop1)
	if round != c.rounds || top1 < slowJobTop1 {
		t.Errorf("final evaluation round %d top_1 %.4f, want round %d and at least %.2f", round, top1, c.rounds, slowJobTop1)
	}
}
