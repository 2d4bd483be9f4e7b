// Package results is what `launcher results` shows of a job: its
// per-round metrics, read from the aggregator's job document
// (runtime/jobapi) while it runs and from its metrics.jsonl files once it
// has ended, written as a table, CSV or JSON, and drawn as a plot
// (plot.go). The backends find the document or the files (each its own
// way); everything else is here, the same for all of them.
package results

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/inputfile"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

// Formats are the values of -o.
var Formats = []string{"table", "csv", "json"}

// Bounds on what is read from metrics.jsonl files: a line (a record is a
// few hundred bytes), a file and the records kept.
const (
	maxLine    = fedlog.MaxMetricsLine
	maxFile    = 512 << 20
	MaxRecords = 1 << 20
)

// Results are a job's per-round metrics.
type Results struct {
	Job string `json:"job"`
	// Source is where they come from: "aggregator" (its job document,
	// while it runs), "metrics.jsonl" or "aggregator log" (FromLog).
	Source string `json:"source"`
	// State is the job document's state (jobapi.State*); "ended" when
	// read from the files.
	State string `json:"state"`
	// Rounds is job_conf.rounds, 0 when unknown (read from the files).
	Rounds int `json:"rounds,omitempty"`
	// Dropped counts the earliest rounds the job document no longer holds
	// (jobapi.MaxHistory), or an aggregator log resumed from a checkpoint
	// does not; metrics.jsonl has them.
	Dropped int             `json:"dropped,omitempty"`
	Records []fedlog.Record `json:"records"`
	// Files are the metrics.jsonl files read, oldest run first (none when
	// read from the job document alone).
	Files []string `json:"-"`
}

// ErrNoRounds is the error for a job that has recorded no round yet.
var ErrNoRounds = errors.New("no round recorded yet")

// Sources.
const (
	SourceAggregator = "aggregator"
	SourceFiles      = "metrics.jsonl"
	SourceLog        = "aggregator log"
	StateEnded       = "ended"
)

// FromDocument are the results in a job document.
func FromDocument(d *jobapi.Job) Results {
	return Results{Job: d.Job, Source: SourceAggregator, State: d.State, Rounds: d.Rounds, Dropped: d.HistoryDropped, Records: d.History}
}

// FromLogs reads every run's metrics.jsonl under jobLogDir
// ({log_path}/logs/{job_name}: one folder per aggregator start, named by
// its time stamp) in time order. A resumed run trains again from its
// checkpoint, so each run's records replace an earlier run's from their
// first round on: the result is the job's history as it stands. An
// absent folder, or one with no file, is ErrNoRounds (the job has not
// started to write).
func FromLogs(job, jobLogDir string) (Results, error) {
	files, err := metricsFiles(jobLogDir)
	if err != nil {
		return Results{}, err
	}
	res := Results{Job: job, Source: SourceFiles, State: StateEnded, Records: []fedlog.Record{}}
	for _, f := range files {
		recs, err := ReadFile(f)
		if err != nil {
			return Results{}, err
		}
		if len(recs) == 0 {
			continue
		}
		res.Files = append(res.Files, f)
		first := recs[0].Round
		keep := sort.Search(len(res.Records), func(i int) bool { return res.Records[i].Round >= first })
		res.Records = append(res.Records[:keep], recs...)
		if len(res.Records) > MaxRecords {
			return Results{}, fmt.Errorf("%s: over %d records", jobLogDir, MaxRecords)
		}
	}
	return res, nil
}

// FromLog reads the per-round metrics from an aggregator's output (name
// for errors): its round lines (wall clock in whole seconds, participants,
// training loss) and FL Testing lines (virtual clock, top-1, top-5, test
// loss), where neither its job document nor its metrics.jsonl can be read
// (a Kubernetes job whose aggregator has ended: its files are on its
// node). The learning rate is not in the log, nor the virtual clock of a
// round that was not evaluated. A round at or below the last one starts a
// new run (the output of a container restarted in place follows its
// predecessor's); its records replace the earlier run's from there on. A
// log that starts after round 0 (a run resumed from a checkpoint) leaves
// the earlier rounds out: Dropped counts them. Lines over maxLine bytes
// are skipped (they are not these).
func FromLog(job string, r io.Reader, name string) (Results, error) {
	res := Results{Job: job, Source: SourceLog, State: StateEnded, Records: []fedlog.Record{}}
	br := bufio.NewReaderSize(r, maxLine)
	// at is the record of round, appended (and the later ones dropped) if
	// the last one is not it.
	at := func(round int) *fedlog.Record {
		recs := res.Records
		if n := len(recs); n > 0 && recs[n-1].Round == round {
			return &recs[n-1]
		}
		keep := sort.Search(len(recs), func(i int) bool { return recs[i].Round >= round })
		res.Records = append(recs[:keep], fedlog.Record{Round: round})
		return &res.Records[keep]
	}
	long := false
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = true
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return Results{}, fmt.Errorf("%s: %w", name, err)
		}
		if !long {
			if v, ok := fedlog.ParseRoundLine(string(line)); ok {
				// A round line comes before its round's test line: a
				// record of this round already there is an earlier run's.
				if n := len(res.Records); n > 0 && res.Records[n-1].Round >= v.Round {
					res.Records = res.Records[:sort.Search(n, func(i int) bool { return res.Records[i].Round >= v.Round })]
				}
				rec := at(v.Round)
				rec.WallClock, rec.Participants, rec.Planned = float64(v.WallSeconds), v.Succeeded, v.Planned
				rec.Loss = rec.Value("loss", v.Loss)
			} else if v, ok := fedlog.ParseTestLine(string(line)); ok {
				rec := at(v.Round)
				rec.VirtualClock, rec.Top1, rec.Top5 = v.Clock, &v.Top1, &v.Top5
				rec.TestLoss = rec.Value("test_loss", v.Loss)
			}
		}
		long = false
		if len(res.Records) > MaxRecords {
			return Results{}, fmt.Errorf("%s: over %d records", name, MaxRecords)
		}
		if err != nil {
			break
		}
	}
	if len(res.Records) > 0 {
		res.Dropped = res.Records[0].Round
	}
	return res, nil
}

// metricsFiles are the metrics.jsonl files of the runs under jobLogDir,
// oldest run first: by when each was last written, since FedScale's
// time stamps (MMDD_HHMMSS) carry no year and a January run's name sorts
// before December's.
func metricsFiles(jobLogDir string) ([]string, error) {
	type run struct {
		path string
		mod  time.Time
	}
	var runs []run
	for _, pat := range []string{"*/metrics.jsonl", "*/aggregator/metrics.jsonl"} {
		m, err := filepath.Glob(filepath.Join(jobLogDir, pat))
		if err != nil {
			return nil, err
		}
		for _, p := range m {
			fi, err := os.Stat(p)
			if err != nil {
				return nil, err
			}
			runs = append(runs, run{p, fi.ModTime()})
		}
	}
	sort.Slice(runs, func(i, j int) bool {
		if !runs[i].mod.Equal(runs[j].mod) {
			return runs[i].mod.Before(runs[j].mod)
		}
		return runs[i].path < runs[j].path
	})
	files := make([]string, len(runs))
	for i, r := range runs {
		files[i] = r.path
	}
	return files, nil
}

// ReadFile reads one metrics.jsonl, bounded. A last line without its
// newline is being written: it is left out.
func ReadFile(path string) ([]fedlog.Record, error) {
	f, size, err := inputfile.Open(path, maxFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(io.NewSectionReader(f, 0, size), path)
}

// Read reads metrics.jsonl records from r (name for errors), in round
// order as the aggregator writes them.
func Read(r io.Reader, name string) ([]fedlog.Record, error) {
	var out []fedlog.Record
	err := fedlog.ScanMetrics(r, name, func(rec fedlog.Record) error {
		if len(out) == MaxRecords {
			return fmt.Errorf("%s: over %d records", name, MaxRecords)
		}
		out = append(out, rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// columns are the table's and the CSV's, in order.
var columns = []string{"round", "virtual_clock", "wall_clock", "participants", "planned", "learning_rate", "loss", "top_1", "top_5", "test_loss"}

// row is r's values as text, "" for what it lacks.
func row(r fedlog.Record) []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	opt := func(key string, v *float64) string {
		if v != nil {
			return f(*v)
		}
		return r.NonFinite[key] // "NaN", "+Inf" or ""
	}
	return []string{strconv.Itoa(r.Round), f(r.VirtualClock), f(math.Round(r.WallClock*1000) / 1000), strconv.Itoa(r.Participants),
		strconv.Itoa(r.Planned), f(r.LearningRate), opt("loss", r.Loss), opt("top_1", r.Top1), opt("top_5", r.Top5), opt("test_loss", r.TestLoss)}
}

// Write writes res to w as format (one of Formats).
func Write(w io.Writer, format string, res Results) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write(columns)
		for _, r := range res.Records {
			_ = cw.Write(row(r))
		}
		cw.Flush()
		return cw.Error()
	case "table":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for i, c := range columns {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, upper(c))
		}
		fmt.Fprintln(tw)
		for _, r := range res.Records {
			for i, v := range row(r) {
				if i > 0 {
					fmt.Fprint(tw, "\t")
				}
				if v == "" {
					v = "-"
				}
				fmt.Fprint(tw, v)
			}
			fmt.Fprintln(tw)
		}
		return tw.Flush()
	}
	return fmt.Errorf("output format %q: want table, csv or json", format)
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c == '_':
			b[i] = ' '
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
