package results

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/fedscale/fedscale-go/launcher/backend"
)

// Load reads job name's results through b: the running aggregator's job
// document, completed by the log folder's files where the document lacks
// the earliest rounds (a resumed job, or one past jobapi.MaxHistory); the
// files alone once the aggregator has ended, or, where they are not here,
// the aggregator's output (FromLog). A job that has recorded no
// round yet is ErrNoRounds, wrapped with what was read.
func Load(ctx context.Context, b backend.Backend, name string) (Results, error) {
	mr, ok := b.(backend.MetricsReader)
	if !ok {
		return Results{}, fmt.Errorf("job %q: the %s backend cannot read results yet (use launcher logs)", name, b.Name())
	}
	src, err := mr.MetricsSource(ctx, name)
	if err != nil {
		return Results{}, err
	}
	var res Results
	switch {
	case src.Document != nil:
		res = FromDocument(src.Document)
		if src.LogDir != "" && (res.Dropped > 0 || src.Document.ResumedAt > 0) {
			if files, err := FromLogs(name, src.LogDir); err == nil {
				res = merge(files, res)
			}
		}
	case src.LogDir != "":
		if res, err = FromLogs(name, src.LogDir); err != nil {
			return Results{}, fmt.Errorf("job %q: %w", name, err)
		}
	case src.OpenLogs != nil:
		if res, err = fromLogs(ctx, name, src.OpenLogs); err != nil {
			return Results{}, fmt.Errorf("job %q: %w", name, err)
		}
	default:
		why := src.Why
		if why == "" {
			why = "the aggregator is not running and its log folder is not on this machine"
		}
		return Results{}, fmt.Errorf("job %q: no metrics can be read from here: %s", name, why)
	}
	if len(res.Records) == 0 {
		where := "the aggregator is " + res.State
		switch res.Source {
		case SourceFiles:
			where = "no record in a metrics.jsonl under " + src.LogDir
		case SourceLog:
			where = "no round or FL Testing line in the aggregator's log"
		}
		return res, fmt.Errorf("job %q: %w (%s)", name, ErrNoRounds, where)
	}
	return res, nil
}

// merge puts files' records before the live ones' first round.
func merge(files, live Results) Results {
	if len(live.Records) == 0 {
		return live
	}
	first := live.Records[0].Round
	keep := sort.Search(len(files.Records), func(i int) bool { return files.Records[i].Round >= first })
	live.Records = append(files.Records[:keep:keep], live.Records...)
	live.Dropped = 0
	live.Files = files.Files
	return live
}

// fromLogs reads the aggregator's output that open gives. Each container's
// output continues its predecessor's: FromLog reads them as one, a restart
// starting a new run.
func fromLogs(ctx context.Context, name string, open func(context.Context) ([]io.ReadCloser, error)) (Results, error) {
	logs, err := open(ctx)
	if err != nil {
		return Results{}, err
	}
	readers := make([]io.Reader, len(logs))
	for i, rc := range logs {
		defer rc.Close()
		readers[i] = rc
	}
	return FromLog(name, io.MultiReader(readers...), "the aggregator's log")
}
