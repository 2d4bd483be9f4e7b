package aggregator_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/aggregator"
)

// A job that finished says so: started again (resuming, same settings) the
// aggregator returns the recorded results without training, at once when
// every executor has been told the job is over (and each exits cleanly),
// or after the grace window when none comes; without resuming it trains
// again.
func TestFinishedJobSaysSo(t *testing.T) {
	c := baseConf(t)
	c.SaveCheckpoint = true
	c.Rounds = 2
	first := runJob(t, c, 1, 1)
	record := filepath.Join(c.LogPath, "logs", c.JobName, "checkpoint", "finished.json")
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("no completion record: %v", err)
	}
	var rec struct {
		Round       int     `json:"round"`
		Top1        float64 `json:"top_1"`
		MetricsFile string  `json:"metrics_file"`
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.Round != 2 || rec.Top1 != first.Top1 || rec.MetricsFile != first.MetricsFile {
		t.Fatalf("completion record %s = %+v (%v), want round 2, top_1 %v, metrics %s", b, rec, err, first.Top1, first.MetricsFile)
	}
	same := func(t *testing.T, res aggregator.Result) {
		t.Helper()
		if res.Rounds != 2 || res.RoundsTrained != 0 || res.Top1 != first.Top1 || res.Top5 != first.Top5 || res.MetricsFile != first.MetricsFile {
			t.Errorf("result %+v, want the first run's (round 2, top_1 %v, metrics %s) and nothing trained", res, first.Top1, first.MetricsFile)
		}
	}

	t.Run("executors told", func(t *testing.T) {
		c := c
		c.TimeStamp = "told"
		start := time.Now()
		j := startAggregator(t, c, 2, func(o *aggregator.Options) { o.FinishedGrace = time.Minute })
		e1 := startExecutor(t, context.Background(), j, 1, 1, nil)
		e2 := startExecutor(t, context.Background(), j, 2, 1, nil)
		for r, e := range []<-chan error{e1, e2} {
			if err := <-e; err != nil {
				t.Errorf("executor %d: %v, want a clean exit", r+1, err)
			}
		}
		same(t, j.wait(t))
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("took %s: the aggregator waited out the grace window although every executor was told", d)
		}
		log, _ := os.ReadFile(filepath.Join(c.LogDir(), "aggregator", "log"))
		if !strings.Contains(string(log), "Job synthetic already finished (run run1): round 2") {
			t.Errorf("log does not report the finished job:\n%s", log)
		}
	})
	t.Run("nobody comes", func(t *testing.T) {
		c := c
		c.TimeStamp = "alone"
		j := startAggregator(t, c, 2, func(o *aggregator.Options) { o.FinishedGrace = 100 * time.Millisecond })
		same(t, j.wait(t))
	})
	t.Run("no resume", func(t *testing.T) {
		c := c
		c.TimeStamp = "again"
		j := startAggregator(t, c, 1, func(o *aggregator.Options) { o.Resume = false; o.FinishedGrace = 100 * time.Millisecond })
		// The record goes as the run starts (before Ready), since the run
		// overwrites the checkpoint; no executor has connected yet.
		select {
		case <-j.agg.Ready():
		case <-time.After(time.Minute):
			t.Fatal("aggregator never became ready")
		}
		if _, err := os.Stat(record); !os.IsNotExist(err) {
			t.Errorf("completion record still there once a run that overwrites the checkpoint started: %v", err)
		}
		if err := <-startExecutor(t, context.Background(), j, 1, 1, nil); err != nil {
			t.Fatalf("executor: %v", err)
		}
		if res := j.wait(t); res.RoundsTrained != 2 {
			t.Errorf("trained %d rounds, want the job run again (2)", res.RoundsTrained)
		}
		if _, err := os.Stat(record); err != nil {
			t.Errorf("the run again did not mark the job finished: %v", err)
		}
	})
}
