package aggregator_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/tfevents"
)

// checkEventFile reads the one event file of a finished run and checks it
// against the run's metrics.jsonl: FedScale's tags, stepped by round and
// by the virtual clock's minutes, with the records' values as float32,
// at the job's start plus each record's wall_clock.
func checkEventFile(t *testing.T, logDir string, recs []fedlog.Record) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(logDir, "aggregator", "events.out.tfevents.*.aggregator"))
	if err != nil || len(files) != 1 {
		t.Fatalf("event files %v (%v), want one", files, err)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	evs, err := tfevents.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || evs[0].FileVersion != tfevents.FileVersion {
		t.Fatalf("the file does not open with the file version: %+v", evs)
	}
	start := evs[0].WallTime
	// Each tag's points in file order: several rounds may share a
	// minute of virtual time, as in FedScale's files.
	type point struct {
		step  int64
		value float64
	}
	got := map[string][]point{}
	walls := map[float64]bool{}
	for _, e := range evs[1:] {
		walls[e.WallTime] = true
		if e.WallTime < start {
			t.Errorf("event at %v, before the job's start %v", e.WallTime, start)
		}
		for _, s := range e.Scalars {
			got[s.Tag] = append(got[s.Tag], point{e.Step, s.Value})
		}
	}
	want := map[string][]point{}
	add := func(tag string, step int64, v *float64) {
		want[tag] = append(want[tag], point{step, float64(float32(*v))})
	}
	for _, r := range recs {
		round, minute := int64(r.Round), int64(r.VirtualClock/60)
		if !walls[start+r.WallClock] {
			t.Errorf("round %d: no event at the job's start + wall_clock %v", r.Round, r.WallClock)
		}
		if r.Loss != nil {
			add("Train/round_to_loss", round, r.Loss)
			add("FAR/time_to_train_loss (min)", minute, r.Loss)
		}
		if r.Top1 != nil {
			add("Test/round_to_accuracy", round, r.Top1)
			add("FAR/time_to_test_accuracy (min)", minute, r.Top1)
			add("Test/round_to_loss", round, r.TestLoss)
			add("FAR/time_to_test_loss (min)", minute, r.TestLoss)
		}
	}
	for tag, w := range want {
		if !slices.Equal(got[tag], w) {
			t.Errorf("%s: %v, want %v", tag, got[tag], w)
		}
	}
	if len(got["FAR/round_duration (min)"]) != len(want["Train/round_to_loss"]) {
		t.Errorf("round durations %v, want one per trained round", got["FAR/round_duration (min)"])
	}
}
