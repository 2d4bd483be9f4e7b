package aggregator

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

// earlierHistory merges the earlier runs' files as the job lived them: a
// later run's rounds replace an earlier one's from its first round on,
// nothing past the checkpoint, this run's own file left out, the latest
// MaxHistory kept.
func TestEarlierHistory(t *testing.T) {
	rounds := func(from, to int) string { // metrics.jsonl lines of rounds from..to
		var b strings.Builder
		for r := from; r <= to; r++ {
			line, _ := json.Marshal(fedlog.Record{Round: r, WallClock: float64(r)})
			b.Write(append(line, '\n'))
		}
		return b.String()
	}
	type run struct{ stamp, lines string }
	for _, tc := range []struct {
		name        string
		runs        []run // oldest first (their files' modification times)
		upTo        int
		want        string // first..last round kept, "" for none
		wantDropped int
		wantErr     string
	}{
		{"one earlier run", []run{{"1201_100000", rounds(0, 9)}}, 6, "0..6", 0, ""},
		{"a chain of resumes", []run{{"1201_100000", rounds(0, 9)}, {"1201_110000", rounds(5, 20)}, {"1201_120000", rounds(15, 22)}}, 18, "0..18", 0, ""},
		{"by time, not by name (no year in the stamp)", []run{{"1231_235900", rounds(0, 9)}, {"0101_000100", rounds(4, 12)}}, 12, "0..12", 0, ""},
		{"a run that recorded nothing", []run{{"1201_100000", rounds(0, 5)}, {"1201_110000", ""}}, 5, "0..5", 0, ""},
		{"the latest MaxHistory", []run{{"1201_100000", rounds(0, 2600)}}, 2500, "1501..2500", 1501, ""},
		{"this run's own file is not read", []run{{"1201_100000", rounds(0, 5)}, {"own", "garbage\n"}}, 5, "0..5", 0, ""},
		{"a broken file", []run{{"1201_100000", rounds(0, 5) + "{\n"}}, 9, "", 0, "1201_100000/metrics.jsonl:7"},
		{"rounds out of order", []run{{"1201_100000", rounds(3, 5) + rounds(1, 1)}}, 9, "", 0, "round 1 after round 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t0 := time.Now().Add(-time.Hour)
			for i, r := range tc.runs {
				p := filepath.Join(dir, r.stamp, "metrics.jsonl")
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(r.lines), 0o644); err != nil {
					t.Fatal(err)
				}
				at := t0.Add(time.Duration(i) * time.Minute)
				if err := os.Chtimes(p, at, at); err != nil {
					t.Fatal(err)
				}
			}
			recs, dropped, err := earlierHistory(dir, filepath.Join(dir, "own", "metrics.jsonl"), tc.upTo)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if len(recs) > 0 {
				got = fmt.Sprintf("%d..%d", recs[0].Round, recs[len(recs)-1].Round)
			}
			for i := 1; i < len(recs); i++ {
				if recs[i].Round != recs[i-1].Round+1 {
					t.Fatalf("round %d after round %d", recs[i].Round, recs[i-1].Round)
				}
			}
			if got != tc.want || dropped != tc.wantDropped || len(recs) > jobapi.MaxHistory {
				t.Errorf("rounds %s (%d records), %d dropped; want %s, %d dropped", got, len(recs), dropped, tc.want, tc.wantDropped)
			}
		})
	}
}
