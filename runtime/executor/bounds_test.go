package executor

import (
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
)

// The rank and num_classes travel as int32 in Hello: a value past that is
// refused by name, never wrapped (rank 2^32+1 would have registered as
// rank 1).
func TestNewIntegerBounds(t *testing.T) {
	layout := layoutDir(t)
	for _, tc := range []struct {
		name    string
		rank    int
		classes int
		want    string // error substring; "" for success
	}{
		{"rank 0", 0, 0, "rank: executors are numbered 1..65536, got 0"},
		{"rank past MaxExecutors", config.MaxExecutors + 1, 0, "rank: executors are numbered 1..65536, got 65537"},
		{"rank wrapping int32 to 1", 1<<32 + 1, 0, "rank: executors are numbered 1..65536, got 4294967297"},
		{"rank at MaxExecutors", config.MaxExecutors, 0, ""},
		{"num_classes wrapping int32 to 10", 1, 1<<32 + 10, "job_conf.num_classes must be at most 2147483647, got 4294967306"},
		{"num_classes in range", 1, 10, ""},
	} {
		c := conf("synthetic", layout, true)
		c.NumClasses = tc.classes
		ex, err := New(Options{Conf: c, Rank: tc.rank, Backend: cpu.New})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else if tc.classes > 0 && ex.info.GetClasses() != int32(tc.classes) {
				t.Errorf("%s: registers %d classes, want %d", tc.name, ex.info.GetClasses(), tc.classes)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
