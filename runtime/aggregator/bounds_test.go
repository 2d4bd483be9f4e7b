package aggregator_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/fedscale/fedscale-go/runtime/aggregator"
	"github.com/fedscale/fedscale-go/runtime/config"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

// Ranks travel as int32: an executor count past config.MaxExecutors is
// refused, not wrapped (2^32+1 executors made agree's int32 loop count 1).
func TestExecutorCountBounds(t *testing.T) {
	c := config.Default()
	c.JobName = "bounds"
	c.Model = "logistic"
	for _, tc := range []struct {
		executors int
		want      string // error substring; "" for success
	}{
		{0, "executors: expected 1..65536, got 0"},
		{config.MaxExecutors + 1, "executors: expected 1..65536, got 65537"},
		{1<<32 + 1, "executors: expected 1..65536, got 4294967297"},
		{config.MaxExecutors, ""},
	} {
		_, err := aggregator.New(aggregator.Options{Conf: c, Executors: tc.executors})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%d executors: %v", tc.executors, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d executors: %v, want an error containing %q", tc.executors, err, tc.want)
		}
	}
}

// A checkpoint's round is read from a file: a negative one is not resumed
// from (the job would have run extra rounds numbered below zero); the job
// starts over instead.
func TestCheckpointRoundOutOfRange(t *testing.T) {
	c := baseConf(t)
	c.SaveCheckpoint = true
	c.Rounds = 2
	if first := runJob(t, c, 1, 1); first.RoundsTrained != 2 {
		t.Fatalf("first run trained %d rounds", first.RoundsTrained)
	}
	path := filepath.Join(c.LogPath, "logs", c.JobName, "checkpoint", "aggregator.ckpt")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ck := &pb.Checkpoint{}
	if err := proto.Unmarshal(b, ck); err != nil {
		t.Fatal(err)
	}
	ck.Round = -3
	if b, err = proto.Marshal(ck); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c.Rounds = 3
	c.TimeStamp = "run2"
	second := runJob(t, c, 1, 1)
	if second.ResumedAt != 0 || second.RoundsTrained != 3 {
		t.Errorf("resumed at %d and trained %d rounds, want a fresh start of 3", second.ResumedAt, second.RoundsTrained)
	}
}
