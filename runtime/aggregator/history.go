package aggregator

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/inputfile"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

// Bounds on reading the job's earlier runs: the runs looked at (the
// latest) and one metrics file's size.
const (
	maxEarlierRuns    = 1000
	maxEarlierMetrics = 512 << 20
)

// errStopScan ends a file's scan once past the rounds it contributes.
var errStopScan = errors.New("past the rounds wanted")

// earlierHistory is the job's history up to round upTo as its earlier
// runs recorded it, for a run resumed after upTo: every
// {jobDir}/*/metrics.jsonl but own, oldest run first (by when each was
// last written: FedScale's MMDD_HHMMSS stamps carry no year), each run's
// records replacing an earlier run's from its first round on, as they
// retrained from there. It returns the latest jobapi.MaxHistory records
// and how many earlier ones it left out, reading one record at a time.
func earlierHistory(jobDir, own string, upTo int) ([]fedlog.Record, int, error) {
	paths, err := filepath.Glob(filepath.Join(jobDir, "*", "metrics.jsonl"))
	if err != nil {
		return nil, 0, err
	}
	type run struct {
		path  string
		mod   time.Time
		first int // its first round; -1 when it has none
	}
	var runs []run
	for _, p := range paths {
		if p == own {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, 0, err
		}
		runs = append(runs, run{path: p, mod: fi.ModTime(), first: -1})
	}
	sort.Slice(runs, func(i, j int) bool {
		if !runs[i].mod.Equal(runs[j].mod) {
			return runs[i].mod.Before(runs[j].mod)
		}
		return runs[i].path < runs[j].path
	})
	if len(runs) > maxEarlierRuns {
		runs = runs[len(runs)-maxEarlierRuns:]
	}
	scan := func(path string, each func(fedlog.Record) error) error {
		f, size, err := inputfile.Open(path, maxEarlierMetrics)
		if err != nil {
			return err
		}
		defer f.Close()
		err = fedlog.ScanMetrics(io.NewSectionReader(f, 0, size), path, each)
		if errors.Is(err, errStopScan) {
			return nil
		}
		return err
	}
	for i := range runs {
		if err := scan(runs[i].path, func(r fedlog.Record) error { runs[i].first = r.Round; return errStopScan }); err != nil {
			return nil, 0, err
		}
	}
	// Run i contributes its rounds from its first up to (not including)
	// the first round of any later run, and up to upTo.
	var kept []fedlog.Record
	total := 0
	for i, r := range runs {
		if r.first < 0 {
			continue
		}
		end := upTo + 1
		for _, later := range runs[i+1:] {
			if later.first >= 0 && later.first < end {
				end = later.first
			}
		}
		err := scan(r.path, func(rec fedlog.Record) error {
			if rec.Round >= end {
				return errStopScan
			}
			if n := len(kept); n > 0 && rec.Round <= kept[n-1].Round {
				return fmt.Errorf("%s: round %d after round %d of an earlier run", r.path, rec.Round, kept[n-1].Round)
			}
			total++
			if len(kept) == 2*jobapi.MaxHistory {
				kept = append(kept[:0], kept[jobapi.MaxHistory:]...)
			}
			kept = append(kept, rec)
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	if len(kept) > jobapi.MaxHistory {
		kept = append([]fedlog.Record(nil), kept[len(kept)-jobapi.MaxHistory:]...)
	}
	return kept, total - len(kept), nil
}
