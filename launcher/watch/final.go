package watch

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/results"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

// lastEval is d's latest record with a test accuracy.
func lastEval(d *jobapi.Job) (fedlog.Record, bool) {
	return lastTop1(d.History)
}

func lastTop1(recs []fedlog.Record) (fedlog.Record, bool) {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Top1 != nil {
			return recs[i], true
		}
	}
	return fedlog.Record{}, false
}

// Final are a finished job's figures and where its results are.
type Final struct {
	Job     string
	Phase   backend.Phase
	Elapsed time.Duration
	// Records are the job's rounds (none: no figures).
	Records []fedlog.Record
	// File is the newest run's metrics.jsonl when it is on this machine.
	File string
	// Unreadable says why the results cannot be read from here ("": they
	// can, with launcher results).
	Unreadable string
}

// Figures reads job name's results through b (results.Load: the files
// once the aggregator has ended), falling back to last, the last job
// document the watcher read, where they cannot be read from here (on
// Kubernetes metrics.jsonl stays on the aggregator's node).
func Figures(ctx context.Context, b backend.Backend, name string, st backend.Status, elapsed time.Duration, last *jobapi.Job) Final {
	f := Final{Job: name, Phase: st.Phase, Elapsed: elapsed}
	res, err := results.Load(ctx, b, name)
	if err == nil {
		f.Records = res.Records
		if n := len(res.Files); n > 0 {
			f.File = res.Files[n-1]
		}
		return f
	}
	f.Unreadable = err.Error()
	if last != nil {
		f.Records = last.History
	}
	return f
}

// Write writes f: one line of figures, one of where the results are.
func (f Final) Write(w io.Writer) {
	fmt.Fprintf(w, "job %s: %s after %s", f.Job, f.Phase, dur(f.Elapsed))
	if n := len(f.Records); n > 0 {
		last := f.Records[n-1]
		fmt.Fprintf(w, ", %d rounds", last.Round)
		var figs []string
		if r, ok := lastTop1(f.Records); ok {
			figs = append(figs, "top-1 "+pct(*r.Top1))
			if r.Top5 != nil {
				figs = append(figs, "top-5 "+pct(*r.Top5))
			}
			if r.TestLoss != nil {
				figs = append(figs, "test loss "+strconv.FormatFloat(*r.TestLoss, 'g', 4, 64))
			}
			if r.Round != last.Round {
				figs[len(figs)-1] += fmt.Sprintf(" (round %d)", r.Round)
			}
		}
		if last.Loss != nil {
			figs = append(figs, "training loss "+strconv.FormatFloat(*last.Loss, 'g', 4, 64))
		}
		if len(figs) > 0 {
			fmt.Fprint(w, ": "+strings.Join(figs, ", "))
		}
	}
	fmt.Fprintln(w)
	switch {
	case f.Unreadable == "" && f.File != "":
		fmt.Fprintf(w, "results: %s (launcher results %s)\n", f.File, f.Job)
	case f.Unreadable == "":
		fmt.Fprintf(w, "results: launcher results %s\n", f.Job)
	default:
		fmt.Fprintf(w, "results: %s\n", f.Unreadable)
	}
}
