package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// Final top-1 accuracy bars. The runtime is deterministic (the same data
// and job file give the same model on any executor layout), so each job
// reaches the same accuracy on every run; the bars leave a margin below
// the measured value (README, "End-to-end tests").
const (
	smallJobTop1 = 0.75 // measured 0.813 after 5 rounds
	slowJobTop1  = 0.75 // measured 0.829 after 6 rounds, 0.859 after 8
	scaleJobTop1 = 0.75 // measured 0.835 after 3 rounds of 100 clients
)

// TestFullJob runs the images as the launcher would: a network, one
// aggregator and two executors, the job file copied in, data_path mounted.
// Every round completes, the FedScale logs land in the mounted folder, the
// model learns, and every container exits 0.
func TestFullJob(t *testing.T) {
	s := need(t)
	ctx := ctxFor(t, 4*time.Minute)
	c := smallJob(s.jobName("full"))
	j, tm, codes := runWholeJob(ctx, t, s, c)
	t.Logf("1 aggregator + 2 executors, %d rounds: %s", c.rounds, tm)
	for _, p := range j.procs {
		if code, ok := codes[p.Name]; !ok || code != 0 {
			t.Errorf("%s exited with code %d, want 0", p.Name, code)
		}
	}
	j.checkRounds(t, 1, c.rounds)
	recs, err := j.metrics()
	if err != nil {
		t.Fatal(err)
	}
	round, top1, ok := finalTop1(recs)
	if !ok || round != c.rounds {
		t.Fatalf("metrics.jsonl: last evaluation in round %d (found: %v), want %d", round, ok, c.rounds)
	}
	t.Logf("final top_1 %.4f (bar %.2f)", top1, smallJobTop1)
	if top1 < smallJobTop1 {
		t.Errorf("final top_1 %.4f, want at least %.2f", top1, smallJobTop1)
	}
	// The FedScale test line of the last round says the same.
	last := regexp.MustCompile(`FL Testing in round: ` + strconv.Itoa(c.rounds) + `, .*'top_1': ([0-9.e+-]+),`).FindStringSubmatch(j.aggLog())
	if last == nil {
		t.Errorf("no FedScale test line for round %d", c.rounds)
	} else if v, _ := strconv.ParseFloat(last[1], 64); v != top1 {
		t.Errorf("the log's final top_1 %s differs from metrics.jsonl's %v", last[1], top1)
	}
}

// TestScale (opt-in: FEDSCALE_E2E_SCALE=1) runs 1 aggregator and 8
// executors with 100 clients a round (130 planned, overcommitment 1.3) out
// of 200.
func TestScale(t *testing.T) {
	if os.Getenv(scaleEnv) == "" {
		t.Skipf("opt-in: set %s=1", scaleEnv)
	}
	s := need(t)
	ctx := ctxFor(t, 8*time.Minute)
	c := jobConf{name: s.jobName("scale"), executors: 8, rounds: 3, model: "logistic", participants: 100,
		localSteps: 20, lr: 0.1, evalInterval: 1, dataSet: "mnist-scale"}
	j, tm, codes := runWholeJob(ctx, t, s, c)
	t.Logf("1 aggregator + %d executors, %d clients a round, %d rounds: %s", c.executors, c.participants, c.rounds, tm)
	for _, p := range j.procs {
		if code, ok := codes[p.Name]; !ok || code != 0 {
			t.Errorf("%s exited with code %d, want 0", p.Name, code)
		}
	}
	j.checkRounds(t, 1, c.rounds)
	for r := 1; r <= c.rounds; r++ {
		want := fmt.Sprintf("round: %d, Planned participants: 130, Succeed participants: 100,", r)
		if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(j.aggLog()) {
			t.Errorf("the aggregator's log lacks %q", want)
		}
	}
	recs, err := j.metrics()
	if err != nil {
		t.Fatal(err)
	}
	_, top1, _ := finalTop1(recs)
	t.Logf("final top_1 %.4f (bar %.2f)", top1, scaleJobTop1)
	if top1 < scaleJobTop1 {
		t.Errorf("final top_1 %.4f, want at least %.2f", top1, scaleJobTop1)
	}
}
